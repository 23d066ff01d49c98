/** `tollgate validate FILE...`: exit 0 when every policy is valid, else 1 with one line per problem. */
import { formatDiagnostic, hasErrors } from '../policy/diagnostics.ts';
import { type CliIo, EXIT, parseFlags, UsageError } from './cli-io.ts';
import { readPolicyFiles } from './policy-files.ts';

export const VALIDATE_HELP = `Usage: tollgate validate FILE|DIR...

Validates ApiPolicy YAML files (one or more documents each; a folder means its
*.yaml and *.yml files). Prints one line per problem:

  file:line:col: spec.path: message

Exit status: 0 when every policy is valid (warnings allowed), 1 when any is not,
2 on bad usage.`;

export function runValidate(args: string[], io: CliIo): number {
  const { values, positionals } = parseFlags(args, { help: { type: 'boolean', short: 'h' } });
  if (values.help) {
    io.out(VALIDATE_HELP);
    return EXIT.ok;
  }
  if (positionals.length === 0) throw new UsageError('validate needs at least one FILE or DIR');
  const read = readPolicyFiles(io, positionals);
  const diagnostics = [...read.diagnostics].sort(
    (a, b) =>
      (a.file ?? '').localeCompare(b.file ?? '') ||
      (a.line ?? 0) - (b.line ?? 0) ||
      (a.col ?? 0) - (b.col ?? 0),
  );
  for (const d of diagnostics) io.out(formatDiagnostic(d));
  if (hasErrors(diagnostics)) return EXIT.failed;
  if (read.policies.length === 0) {
    io.err('no ApiPolicy documents found');
    return EXIT.failed;
  }
  io.out(`${read.policies.length} ${read.policies.length === 1 ? 'policy' : 'policies'} valid`);
  return EXIT.ok;
}
