/**
 * `tollgate check`: the decision for one described request, offline, with the
 * route that matched, the rule or limit that decided, and why the others did not.
 */
import type { CompiledPolicy } from '../policy/compile/bundle.ts';
import { compilePolicies } from '../policy/compile/compile.ts';
import { formatDiagnostic, hasErrors } from '../policy/diagnostics.ts';
import type { Identity } from '../policy/engine/authorize.ts';
import { type Decision, decide, type RequestFacts } from '../policy/engine/decide.ts';
import { PolicyEngine } from '../policy/engine/engine.ts';
import { type CliIo, EXIT, parseFlags, UsageError } from './cli-io.ts';
import { readPolicyFiles } from './policy-files.ts';

export const CHECK_HELP = `Usage: tollgate check -f FILE "METHOD /path" [options]

Explains the decision the policy takes for one request, offline.

Options:
  -f, --file PATH      policy file or folder (repeatable)
  -H, --header 'N: v'  request header (repeatable)
      --claims JSON    claims of an already verified token (its provider: the one
                       whose issuer equals "iss", else the first declared)
      --peer ID        mTLS peer SPIFFE ID
      --ip ADDR        client address (default 127.0.0.1)
      --port N         app port, when the file holds policies for several ports
      --json           print the decision as JSON
  -h, --help

Exit status: 0 allowed, 1 denied, 2 bad usage or invalid policy.`;

export const STATUS_TEXT: Record<number, string> = {
  200: 'OK',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  410: 'Gone',
  429: 'Too Many Requests',
  503: 'Service Unavailable',
};

/** Loads and compiles policy files into an engine; null (diagnostics printed) when they are invalid. */
export function loadEngine(io: CliIo, files: string[]): PolicyEngine | null {
  const read = readPolicyFiles(io, files);
  for (const d of read.diagnostics) io.err(formatDiagnostic(d));
  if (hasErrors(read.diagnostics)) return null;
  if (read.policies.length === 0) {
    io.err('no ApiPolicy documents found');
    return null;
  }
  const compiled = compilePolicies(read.policies.map((p) => p.policy));
  for (const d of compiled.diagnostics.filter((x) => x.severity === 'warning')) io.err(formatDiagnostic(d));
  return PolicyEngine.load(compiled.bundle);
}

/** Parses `"METHOD /path"`. */
export function parseRequestLine(line: string): { method: string; target: string } {
  const m = /^([A-Za-z]+) +(\S+)$/.exec(line.trim());
  if (!m?.[1] || !m[2]) throw new UsageError(`expected "METHOD /path", got ${JSON.stringify(line)}`);
  return { method: m[1].toUpperCase(), target: m[2] };
}

/** Parses `Name: value` into a lowercase name and its value. */
export function parseHeader(text: string): [string, string] {
  const i = text.indexOf(':');
  const name = text.slice(0, i).trim().toLowerCase();
  if (i <= 0 || !/^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(name))
    throw new UsageError(`bad header ${JSON.stringify(text)}`);
  return [name, text.slice(i + 1).trim()];
}

/** The identity `--claims` stands for: the provider whose issuer is `iss`, else the first one. */
export function identityFor(policy: CompiledPolicy | undefined, claims: Record<string, unknown>): Identity {
  const providers = policy?.jwt ?? [];
  const byIssuer = providers.find((p) => p.issuer === claims.iss);
  return { provider: (byIssuer ?? providers[0])?.name ?? 'unknown', claims };
}

export function parseClaims(json: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch {
    throw new UsageError('--claims must be a JSON object');
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v))
    throw new UsageError('--claims must be a JSON object');
  return v as Record<string, unknown>;
}

/** The port to decide for: --port, else the single policy's own port. */
export function portFor(engine: PolicyEngine, port: string | undefined): number | null {
  if (port !== undefined) {
    const n = Number(port);
    if (!Number.isInteger(n) || n < 1 || n > 65535) throw new UsageError('--port must be 1-65535');
    return n;
  }
  const policies = engine.bundle.policies;
  return policies.length === 1 ? (policies[0]?.port ?? null) : null;
}

export function runCheck(args: string[], io: CliIo): number {
  const { values, positionals } = parseFlags(args, {
    file: { type: 'string', short: 'f', multiple: true },
    header: { type: 'string', short: 'H', multiple: true },
    claims: { type: 'string' },
    peer: { type: 'string' },
    ip: { type: 'string' },
    port: { type: 'string' },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    io.out(CHECK_HELP);
    return EXIT.ok;
  }
  if (!values.file?.length) throw new UsageError('check needs -f FILE');
  if (positionals.length !== 1 || positionals[0] === undefined)
    throw new UsageError('check needs one "METHOD /path"');
  const { method, target } = parseRequestLine(positionals[0]);
  const headers = Object.fromEntries((values.header ?? []).map(parseHeader));
  const claims = values.claims === undefined ? null : parseClaims(values.claims);
  const engine = loadEngine(io, values.file);
  if (!engine) return EXIT.usage;
  const port = portFor(engine, values.port);
  const facts: RequestFacts = {
    method,
    target,
    headers,
    identity: claims ? identityFor(engine.policyFor(port)?.policy, claims) : null,
    peer: values.peer ?? null,
    ip: values.ip ?? '127.0.0.1',
    port,
    now: io.now(),
  };
  const decision = decide(engine, facts);
  if (values.json) io.out(JSON.stringify(decision, null, 2));
  else for (const line of explain(decision, method)) io.out(line);
  return decision.verdict === 'allow' ? EXIT.ok : EXIT.failed;
}

/** Human-readable explanation of a decision. */
export function explain(d: Decision, method: string): string[] {
  const lines = [`${d.wouldStatus} ${STATUS_TEXT[d.wouldStatus] ?? ''} (${d.verdict}) ${d.code}`.trimEnd()];
  if (!d.enforced)
    lines.push(`  mode Audit: not enforced, the request is forwarded (client gets ${d.status})`);
  if (d.policy) lines.push(`  policy:  ${d.policy}`);
  if (d.path !== null) lines.push(`  request: ${method} ${d.path}`);
  lines.push(`  route:   ${d.route ?? '(none)'}`);
  const params = Object.entries(d.params);
  if (params.length > 0)
    lines.push(`  params:  ${params.map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(' ')}`);
  if (d.allow) lines.push(`  Allow:   ${d.allow.join(', ')}`);
  if (d.rule) lines.push(`  rule:    ${d.rule}`);
  if (d.limit) lines.push(`  limit:   ${d.limit}`);
  lines.push(`  why:     ${d.reason}`);
  for (const note of d.notes) lines.push(`    - ${note}`);
  if (d.limits.length > 0) lines.push(`  limits:  ${d.limits.join(', ')}`);
  return lines;
}
