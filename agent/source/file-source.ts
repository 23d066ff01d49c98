/**
 * The standalone policy source: ApiPolicy YAML from a file or a folder,
 * compiled for this workload (labels, upstream port), loaded into an engine and
 * swapped atomically. Changes are picked up by polling file fingerprints (robust
 * to editors' rename-on-save and to Kubernetes ConfigMap symlink swaps); a bad
 * edit keeps the last good engine and reports the diagnostics.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { compilePolicies, type Workload } from '../../policy/compile/compile.ts';
import { type Diagnostic, formatDiagnostic, hasErrors } from '../../policy/diagnostics.ts';
import { PolicyEngine } from '../../policy/engine/engine.ts';
import type { ApiPolicy } from '../../policy/schema/api-policy.ts';
import { loadPolicyText } from '../../policy/validate/validate-policy.ts';

export type LoadOutcome =
  | { ok: true; engine: PolicyEngine; diagnostics: Diagnostic[] }
  | { ok: false; diagnostics: Diagnostic[] };

function policyFiles(path: string): string[] {
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path)
    .filter((f) => /\.ya?ml$/.test(f) && !f.startsWith('.'))
    .sort()
    .map((f) => join(path, f));
}

/** Reads, validates and compiles the policies at `path` for `workload`. Never throws. */
export function loadPolicyPath(path: string, workload: Workload): LoadOutcome {
  const diagnostics: Diagnostic[] = [];
  const policies: ApiPolicy[] = [];
  let files: string[];
  try {
    files = policyFiles(path);
  } catch (e) {
    return { ok: false, diagnostics: [readError(path, e)] };
  }
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      diagnostics.push(readError(file, e));
      continue;
    }
    const r = loadPolicyText(text, file);
    diagnostics.push(...r.diagnostics);
    policies.push(...r.policies.map((p) => p.policy));
  }
  if (hasErrors(diagnostics)) return { ok: false, diagnostics };
  // An empty file (a save caught half-way, a wrong path) never replaces a policy.
  if (policies.length === 0) {
    return {
      ok: false,
      diagnostics: [
        ...diagnostics,
        { severity: 'error', path: [], message: 'no ApiPolicy documents found', file: path, line: 1, col: 1 },
      ],
    };
  }
  const compiled = compilePolicies(policies, workload);
  diagnostics.push(...compiled.diagnostics);
  try {
    return { ok: true, engine: PolicyEngine.load(compiled.bundle), diagnostics };
  } catch (e) {
    return {
      ok: false,
      diagnostics: [...diagnostics, { severity: 'error', path: [], message: (e as Error).message }],
    };
  }
}

function readError(file: string, e: unknown): Diagnostic {
  const code = (e as { code?: string }).code ?? 'EIO';
  return { severity: 'error', path: [], message: `cannot read (${code})`, file, line: 1, col: 1 };
}

function fingerprint(path: string): string {
  try {
    return policyFiles(path)
      .map((f) => {
        const s = statSync(f);
        return `${f}:${s.ino}:${s.size}:${s.mtimeMs}`;
      })
      .join('|');
  } catch (e) {
    return `error:${(e as { code?: string }).code ?? ''}`;
  }
}

export interface FileSourceOptions {
  path: string;
  workload: Workload;
  /** Poll interval (default 250 ms). */
  intervalMs?: number;
  onLoad?: (engine: PolicyEngine, diagnostics: Diagnostic[]) => void;
  onReject?: (diagnostics: Diagnostic[]) => void;
}

export class FilePolicySource {
  readonly #options: FileSourceOptions;
  #engine: PolicyEngine | null = null;
  #print = '';
  #timer: NodeJS.Timeout | undefined;

  constructor(options: FileSourceOptions) {
    this.#options = options;
  }

  /** The engine in force; null until a policy was loaded. */
  get current(): PolicyEngine | null {
    return this.#engine;
  }

  /** Loads now; returns the outcome (the engine is replaced only on success). */
  reload(): LoadOutcome {
    this.#print = fingerprint(this.#options.path);
    const outcome = loadPolicyPath(this.#options.path, this.#options.workload);
    if (outcome.ok) {
      this.#engine = outcome.engine;
      this.#options.onLoad?.(outcome.engine, outcome.diagnostics);
    } else {
      this.#options.onReject?.(outcome.diagnostics);
    }
    return outcome;
  }

  /** Loads the policy, then watches it; returns the diagnostics (and watches nothing) when the first load fails. */
  start(): Diagnostic[] | null {
    const first = this.reload();
    if (!first.ok) return first.diagnostics;
    this.watch();
    return null;
  }

  /** Starts watching for changes. */
  watch(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => {
      if (fingerprint(this.#options.path) !== this.#print) this.reload();
    }, this.#options.intervalMs ?? 250);
    this.#timer.unref();
  }

  close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

/** Diagnostics as log-friendly lines. */
export function diagnosticLines(diagnostics: readonly Diagnostic[]): string[] {
  return diagnostics.map(formatDiagnostic);
}
