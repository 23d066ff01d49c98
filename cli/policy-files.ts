/** Reads policy files and folders for the CLI into validated policies with positioned diagnostics. */
import type { Diagnostic } from '../policy/diagnostics.ts';
import { type LoadedPolicy, loadPolicyText } from '../policy/validate/validate-policy.ts';
import type { CliIo } from './cli-io.ts';

export interface PolicyFiles {
  policies: LoadedPolicy[];
  diagnostics: Diagnostic[];
  files: string[];
}

export function readPolicyFiles(io: CliIo, paths: readonly string[]): PolicyFiles {
  const out: PolicyFiles = { policies: [], diagnostics: [], files: [] };
  for (const path of paths) {
    let files: string[];
    try {
      files = io.expand(path);
    } catch (e) {
      out.diagnostics.push({
        severity: 'error',
        path: [],
        message: `cannot read: ${errnoText(e)}`,
        file: path,
        line: 1,
        col: 1,
      });
      continue;
    }
    for (const file of files) {
      let text: string;
      try {
        text = io.readFile(file);
      } catch (e) {
        out.diagnostics.push({
          severity: 'error',
          path: [],
          message: `cannot read: ${errnoText(e)}`,
          file,
          line: 1,
          col: 1,
        });
        continue;
      }
      out.files.push(file);
      const r = loadPolicyText(text, file);
      out.policies.push(...r.policies);
      out.diagnostics.push(...r.diagnostics);
    }
  }
  return out;
}

function errnoText(e: unknown): string {
  const code = (e as { code?: string }).code;
  return code === 'ENOENT'
    ? 'no such file or directory'
    : code === 'EACCES'
      ? 'permission denied'
      : String((e as Error).message);
}
