/**
 * Two "pods" for the traffic-capture e2e: Linux network namespaces joined by a
 * veth pair, each running processes through `ip netns exec`. Everything made
 * here is recorded so `destroy()` can remove it, also after a failure.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';

const root = new URL('../..', import.meta.url).pathname;
export const NODE = process.execPath;
export const TOLLGATE = `${root}bin/tollgate`;
export const HERE = new URL('.', import.meta.url).pathname;

/** Runs a command to completion (bounded); throws with its output when it fails. */
export function run(file: string, args: readonly string[], timeoutMs = 15_000): string {
  const r = spawnSync(file, args, { encoding: 'utf8', timeout: timeoutMs });
  if (r.status !== 0)
    throw new Error(
      `${file} ${args.join(' ')}: exit ${r.status} ${r.error?.message ?? ''}\n${r.stdout}${r.stderr}`,
    );
  return r.stdout;
}

function works(file: string, args: readonly string[]): boolean {
  return spawnSync(file, args, { stdio: 'ignore', timeout: 5_000 }).status === 0;
}

/** Why the e2e cannot run here (null: it can): root, `ip netns` and iptables are needed. */
export function unavailable(): string | null {
  if (process.platform !== 'linux') return 'needs Linux network namespaces';
  if (process.getuid?.() !== 0) return 'needs root (creates network namespaces and iptables rules)';
  if (!works('ip', ['-V'])) return 'needs iproute2 (`ip`)';
  if (!['iptables-nft-save', 'iptables-legacy-save', 'iptables-save'].some((f) => works(f, [])))
    return 'needs iptables';
  const probe = `tollgate-probe-${process.pid}`;
  const added = spawnSync('ip', ['netns', 'add', probe], { encoding: 'utf8', timeout: 5_000 });
  if (added.status !== 0) return `\`ip netns add\` does not work here: ${added.stderr.trim()}`;
  spawnSync('ip', ['netns', 'del', probe], { timeout: 5_000 });
  return null;
}

export interface Pod {
  ns: string;
  ip: string;
}

/** A process in a pod whose output is collected and whose lines can be awaited. */
export interface PodProcess {
  proc: ChildProcess;
  output(): string;
  /** Resolves once the output matches; rejects when the process exits first or after `timeoutMs`. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<string>;
}

export class Pods {
  readonly #suffix = `${process.pid.toString(36)}${Date.now().toString(36).slice(-3)}`;
  readonly #namespaces: string[] = [];
  readonly #processes: ChildProcess[] = [];

  /** Two pods on 10.77.0.0/24, A at .1 and B at .2, loopback up in each. */
  create(): [Pod, Pod] {
    const a = { ns: `tollgate-e2e-a-${this.#suffix}`, ip: '10.77.0.1' };
    const b = { ns: `tollgate-e2e-b-${this.#suffix}`, ip: '10.77.0.2' };
    const veth = [`tga${this.#suffix}`.slice(0, 15), `tgb${this.#suffix}`.slice(0, 15)] as const;
    for (const pod of [a, b]) {
      run('ip', ['netns', 'add', pod.ns]);
      this.#namespaces.push(pod.ns);
    }
    run('ip', [
      'link',
      'add',
      veth[0],
      'netns',
      a.ns,
      'type',
      'veth',
      'peer',
      'name',
      veth[1],
      'netns',
      b.ns,
    ]);
    for (const [pod, dev] of [
      [a, veth[0]],
      [b, veth[1]],
    ] as const) {
      run('ip', ['-n', pod.ns, 'link', 'set', 'lo', 'up']);
      run('ip', ['-n', pod.ns, 'addr', 'add', `${pod.ip}/24`, 'dev', dev]);
      run('ip', ['-n', pod.ns, 'link', 'set', dev, 'up']);
    }
    return [a, b];
  }

  /** Runs a command inside the pod to completion (bounded); resolves with its stdout, rejects when it fails. */
  exec(pod: Pod, args: readonly string[], timeoutMs = 15_000): Promise<string> {
    const p = this.start(pod, args);
    let stdout = '';
    p.proc.stdout?.on('data', (c: string) => {
      stdout += c;
    });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => p.proc.kill('SIGKILL'), timeoutMs);
      p.proc.once('close', (code, signal) => {
        clearTimeout(timer);
        if (code === 0) resolve(stdout);
        else reject(new Error(`${args.join(' ')} in ${pod.ns}: exit ${code ?? signal}\n${p.output()}`));
      });
    });
  }

  /** Starts a long-running process inside the pod. */
  start(pod: Pod, args: readonly string[]): PodProcess {
    const proc = spawn('ip', ['netns', 'exec', pod.ns, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.#processes.push(proc);
    let out = '';
    const listeners = new Set<() => void>();
    const collect = (chunk: string) => {
      out += chunk;
      for (const l of listeners) l();
    };
    proc.stdout?.setEncoding('utf8').on('data', collect);
    proc.stderr?.setEncoding('utf8').on('data', collect);
    const waitFor = (pattern: RegExp, timeoutMs = 15_000) =>
      new Promise<string>((resolve, reject) => {
        const check = () => {
          if (pattern.test(out)) finish(() => resolve(out));
        };
        const exited = () => finish(() => reject(new Error(`exited before ${pattern}: ${out}`)));
        const timer = setTimeout(
          () => finish(() => reject(new Error(`no ${pattern} in time: ${out}`))),
          timeoutMs,
        );
        const finish = (then: () => void) => {
          clearTimeout(timer);
          listeners.delete(check);
          proc.off('exit', exited);
          then();
        };
        listeners.add(check);
        proc.once('exit', exited);
        check();
      });
    return { proc, output: () => out, waitFor };
  }

  /** Kills every process started here and deletes the namespaces (with them the veth pair). */
  async destroy(): Promise<void> {
    await Promise.all(
      this.#processes.map(
        (p) =>
          new Promise<void>((resolve) => {
            if (p.exitCode !== null || p.signalCode !== null) return resolve();
            const kill = setTimeout(() => p.kill('SIGKILL'), 3_000);
            p.once('exit', () => {
              clearTimeout(kill);
              resolve();
            });
            p.kill('SIGTERM');
          }),
      ),
    );
    for (const ns of this.#namespaces) spawnSync('ip', ['netns', 'del', ns], { timeout: 5_000 });
  }
}
