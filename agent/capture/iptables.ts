/**
 * Applying the capture rules with the iptables tools: picking the backend
 * (nf_tables where it works, else legacy, keeping whichever already holds the
 * pod's rules), reading the current rules with `*-save`, and feeding the
 * reconciled input to `*-restore --noflush` on stdin. The programs run through
 * an injected RunCommand, so all of it is testable without root.
 */
import { spawn } from 'node:child_process';
import { networkInterfaces } from 'node:os';
import { parseSave, restoreInput } from './restore.ts';
import { type CaptureConfig, captureRules, type IpFamily } from './rules.ts';

export interface CommandResult {
  /** Exit code; -1 when the program could not be started (then `stderr` says why). */
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a program with `input` on stdin (none when undefined). */
export type RunCommand = (file: string, args: readonly string[], input?: string) => Promise<CommandResult>;

/** RunCommand over child_process.spawn (no shell). */
export const runCommand: RunCommand = (file, args, input) =>
  new Promise((resolve) => {
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => {
      stdout += c;
    });
    child.stderr.setEncoding('utf8').on('data', (c: string) => {
      stderr += c;
    });
    // A program that exits before reading stdin makes the write fail with EPIPE: its exit code tells.
    child.stdin.on('error', () => {});
    child.stdin.end(input ?? '');
    child.on('error', (e) => resolve({ code: -1, stdout, stderr: e.message }));
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });

export type BackendName = 'nft' | 'legacy' | 'default';

/** The save and restore programs of a backend, per family. */
export interface Backend {
  name: BackendName;
  save: Readonly<Record<IpFamily, string>>;
  restore: Readonly<Record<IpFamily, string>>;
}

function backend(name: BackendName, suffix: string): Backend {
  return {
    name,
    save: { 4: `iptables${suffix}-save`, 6: `ip6tables${suffix}-save` },
    restore: { 4: `iptables${suffix}-restore`, 6: `ip6tables${suffix}-restore` },
  };
}

export const BACKENDS: Readonly<Record<BackendName, Backend>> = {
  nft: backend('nft', '-nft'),
  legacy: backend('legacy', '-legacy'),
  default: backend('default', ''),
};

/** What probing a backend found: whether its save program runs, and how many rules it holds. */
export interface Probe {
  works: boolean;
  rules: number;
}

/**
 * nf_tables when it works, unless only legacy holds rules in this network
 * namespace (mixing the two would leave one set unseen by the other); legacy
 * when nft does not work; the unsuffixed programs when neither is installed.
 */
export function chooseBackend(probes: Readonly<Record<BackendName, Probe>>): BackendName | null {
  const { nft, legacy } = probes;
  if (legacy.works && legacy.rules > 0 && !(nft.works && nft.rules > 0)) return 'legacy';
  if (nft.works) return 'nft';
  if (legacy.works) return 'legacy';
  return probes.default.works ? 'default' : null;
}

async function probe(run: RunCommand, b: Backend): Promise<Probe> {
  const r = await run(b.save[4], []);
  if (r.code !== 0) return { works: false, rules: 0 };
  return { works: true, rules: r.stdout.split('\n').filter((l) => l.startsWith('-A ')).length };
}

export class CaptureError extends Error {
  readonly code: 'ERR_CAPTURE_NO_IPTABLES' | 'ERR_CAPTURE_APPLY';
  constructor(code: CaptureError['code'], message: string) {
    super(message);
    this.name = 'CaptureError';
    this.code = code;
  }
}

/** Probes the backends and returns the one to use; throws ERR_CAPTURE_NO_IPTABLES when none works. */
export async function detectBackend(run: RunCommand): Promise<Backend> {
  const names: BackendName[] = ['nft', 'legacy', 'default'];
  const found = await Promise.all(names.map((n) => probe(run, BACKENDS[n])));
  const probes = Object.fromEntries(names.map((n, i) => [n, found[i]])) as Record<BackendName, Probe>;
  const name = chooseBackend(probes);
  if (name === null)
    throw new CaptureError(
      'ERR_CAPTURE_NO_IPTABLES',
      'no working iptables found (tried iptables-nft-save, iptables-legacy-save, iptables-save)',
    );
  return BACKENDS[name];
}

/** True when this network namespace has an IPv6 address besides loopback (link-local counts: it is reachable). */
export function hasIpv6(interfaces = networkInterfaces()): boolean {
  return Object.values(interfaces).some((list) =>
    (list ?? []).some((a) => a.family === 'IPv6' && !a.internal),
  );
}

export interface ApplyOptions {
  run: RunCommand;
  /** The families to apply (4: iptables, 6: ip6tables). */
  families: readonly IpFamily[];
}

/** Reads the current rules and applies the reconciled ruleset, family by family. */
export async function applyCapture(
  config: CaptureConfig,
  options: ApplyOptions,
): Promise<{ backend: BackendName }> {
  const { run } = options;
  const b = await detectBackend(run);
  for (const family of options.families) {
    const saved = await run(b.save[family], []);
    if (saved.code !== 0)
      throw new CaptureError('ERR_CAPTURE_APPLY', `${b.save[family]} failed: ${oneLine(saved.stderr)}`);
    const input = restoreInput(captureRules(config, family), { existing: parseSave(saved.stdout) });
    const applied = await run(b.restore[family], ['--noflush'], input);
    if (applied.code !== 0)
      throw new CaptureError(
        'ERR_CAPTURE_APPLY',
        `${b.restore[family]} failed (exit ${applied.code}): ${oneLine(applied.stderr)}`,
      );
  }
  return { backend: b.name };
}

function oneLine(text: string): string {
  return text.trim().replace(/\s*\n\s*/g, '; ') || 'no error output';
}
