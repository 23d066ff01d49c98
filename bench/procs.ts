/**
 * Child processes of the bench: spawned pinned to a CPU (taskset, when it
 * exists) in their own process group, readiness from their stdout, /proc
 * sampling (CPU ticks, VmRSS), and guaranteed cleanup: every child is tracked
 * and its whole group killed on stop, on error and on exit.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';

function commandExists(name: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Pinning needs taskset and at least two CPUs (load generator on 0, servers on 1). */
export const canPin = commandExists('taskset') && cpus().length >= 2;

/** Pins every thread of this process to `cpu`; false when it cannot. */
export function pinSelf(cpu: number): boolean {
  if (!canPin) return false;
  try {
    execFileSync('taskset', ['-a', '-p', '-c', String(cpu), String(process.pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Pins every thread of process `pid` (one this bench started some other way) to `cpu`; false when it cannot. */
export function pinPid(pid: number, cpu: number): boolean {
  if (!canPin) return false;
  try {
    execFileSync('taskset', ['-a', '-p', '-c', String(cpu), String(pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** The CPUs a process may run on, as taskset prints them (e.g. "1"), or null. */
export function affinityOf(pid: number): string | null {
  if (!canPin) return null;
  try {
    const out = execFileSync('taskset', ['-p', '-c', String(pid)], { encoding: 'utf8' });
    return out.split(':').pop()?.trim() ?? null;
  } catch {
    return null;
  }
}

export interface ChildOptions {
  /** CPU to pin to (ignored without taskset). */
  cpu?: number;
  env?: NodeJS.ProcessEnv;
  /** Send stdout to /dev/null (a chatty child, e.g. an access log, must not load the bench process). */
  discardStdout?: boolean;
}

const live = new Set<BenchChild>();

export class BenchChild {
  readonly name: string;
  readonly proc: ChildProcess;
  readonly pid: number;
  readonly exited: Promise<number | null>;
  #stdout = '';
  #stderr = '';
  #lines: string[] = [];
  #waiters: Array<() => void> = [];
  #exitCode: number | null | undefined;

  constructor(name: string, command: string, args: string[], options: ChildOptions) {
    this.name = name;
    const [cmd, argv] =
      canPin && options.cpu !== undefined
        ? ['taskset', ['-c', String(options.cpu), command, ...args]]
        : [command, args];
    this.proc = spawn(cmd, argv, {
      detached: true,
      stdio: ['ignore', options.discardStdout ? 'ignore' : 'pipe', 'pipe'],
      env: options.env ?? process.env,
    });
    if (this.proc.pid === undefined) throw new Error(`${name}: could not spawn ${command}`);
    this.pid = this.proc.pid;
    live.add(this);
    this.proc.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      this.#stdout += chunk;
      const parts = this.#stdout.split('\n');
      this.#stdout = parts.pop() ?? '';
      // Keep a bounded tail: at warn level the agent is quiet, but never let a chatty child grow memory.
      this.#lines.push(...parts);
      if (this.#lines.length > 200) this.#lines.splice(0, this.#lines.length - 200);
      for (const w of this.#waiters.splice(0)) w();
    });
    this.proc.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      this.#stderr = (this.#stderr + chunk).slice(-8000);
    });
    this.exited = new Promise((resolve) => {
      this.proc.once('exit', (code, signal) => {
        this.#exitCode = code ?? (signal ? -1 : null);
        live.delete(this);
        for (const w of this.#waiters.splice(0)) w();
        resolve(code);
      });
    });
  }

  get running(): boolean {
    return this.#exitCode === undefined;
  }

  /** The last lines of output, for error messages. */
  tail(): string {
    return [...this.#lines.slice(-20), this.#stderr.slice(-2000)].filter(Boolean).join('\n');
  }

  /** Waits for a JSON stdout line with a string field `key`; fails when the child exits or on timeout. */
  async jsonField(key: string, timeoutMs: number): Promise<string> {
    const value = await this.waitJson(key, timeoutMs, (v) => typeof v === 'string');
    return String(value);
  }

  /** Waits for a JSON stdout line with a field `key` (accepted by `ok`); fails when the child exits or on timeout. */
  async waitJson(key: string, timeoutMs: number, ok: (v: unknown) => boolean = () => true): Promise<unknown> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (const line of this.#lines) {
        try {
          const value: unknown = (JSON.parse(line) as Record<string, unknown>)[key];
          if (value !== undefined && ok(value)) return value;
        } catch {
          // not JSON
        }
      }
      if (!this.running) throw new Error(`${this.name} exited before printing "${key}":\n${this.tail()}`);
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(`${this.name} did not print "${key}" in ${timeoutMs} ms:\n${this.tail()}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 200));
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** SIGTERM to the group, then SIGKILL after `graceMs`. Resolves once the child is gone. */
  async stop(graceMs = 3_000): Promise<void> {
    if (!this.running) return;
    signalGroup(this.pid, 'SIGTERM');
    const timer = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), graceMs));
    if ((await Promise.race([this.exited, timer])) === 'timeout') {
      signalGroup(this.pid, 'SIGKILL');
      await Promise.race([this.exited, new Promise((resolve) => setTimeout(resolve, 1_000))]);
    }
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

/** Last resort (exit handlers): SIGKILL every child group still running. Synchronous. */
export function killAllChildren(): void {
  for (const child of live) signalGroup(child.pid, 'SIGKILL');
}

/** Stops every child still running. */
export async function stopAllChildren(): Promise<void> {
  await Promise.all([...live].map((c) => c.stop()));
}

let clockTicks: number | undefined;
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** user+system CPU seconds of a whole process (all threads), from /proc/PID/stat. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may contain spaces) start at state (field 3).
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond();
}

/** Resident set size in MiB (VmRSS), or NaN when the process is gone. */
export function rssMiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m?.[1] ? Number(m[1]) / 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

export interface ProcUsage {
  /** user+sys over the window, % of one core. */
  cpuPct: number;
  /** Highest VmRSS seen (sampled every `intervalMs`), MiB. */
  peakRssMiB: number;
}

/** user+nice+system and steal seconds of the whole machine (all CPUs), from /proc/stat. */
function machineSeconds(): { busy: number; steal: number } {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    const tick = ticksPerSecond();
    return { busy: ((v[0] ?? 0) + (v[1] ?? 0) + (v[2] ?? 0)) / tick, steal: (v[7] ?? 0) / tick };
  } catch {
    return { busy: Number.NaN, steal: Number.NaN };
  }
}

export interface WindowUsage {
  procs: ProcUsage[];
  /** The bench runner itself (autocannon runs in it), % of one core. */
  loadgenCpuPct: number;
  /**
   * user+nice+sys CPU of processes that are not part of the bench (machine
   * total minus every bench process), % of one core: other work on the
   * machine disturbs the numbers. Interrupt and softirq time (loopback
   * networking) is left out of both sides.
   */
  foreignCpuPct: number;
  /** CPU stolen by the hypervisor, % of one core. */
  stealPct: number;
}

/**
 * Samples processes over a measurement window: CPU from /proc/PID/stat deltas
 * (start to stop), RSS every `intervalMs`. Also measures this process (the
 * load generator), and the machine's CPU used outside the bench (`also`
 * lists further bench processes that are not reported, e.g. a load client).
 */
export class UsageSampler {
  readonly #pids: number[];
  readonly #also: number[];
  readonly #cpu0: number[];
  readonly #also0: number[];
  readonly #peak: number[];
  readonly #t0 = performance.now();
  readonly #self0 = process.cpuUsage();
  readonly #machine0 = machineSeconds();
  readonly #timer: NodeJS.Timeout;

  constructor(pids: number[], also: number[] = [], intervalMs = 250) {
    this.#pids = pids;
    this.#also = also;
    this.#cpu0 = pids.map(cpuSeconds);
    this.#also0 = also.map(safeCpuSeconds);
    this.#peak = pids.map(rssMiB);
    this.#timer = setInterval(() => this.#sample(), intervalMs);
  }

  #sample(): void {
    this.#pids.forEach((pid, i) => {
      const rss = rssMiB(pid);
      if (rss > (this.#peak[i] ?? 0)) this.#peak[i] = rss;
    });
  }

  stop(): WindowUsage {
    clearInterval(this.#timer);
    this.#sample();
    const seconds = (performance.now() - this.#t0) / 1000;
    const self = process.cpuUsage(this.#self0);
    const selfS = (self.user + self.system) / 1e6;
    const procS = this.#pids.map((pid, i) => cpuSeconds(pid) - (this.#cpu0[i] ?? 0));
    const alsoS = this.#also.map((pid, i) => safeCpuSeconds(pid) - (this.#also0[i] ?? 0));
    const machine = machineSeconds();
    const ours = selfS + procS.reduce((a, b) => a + b, 0) + alsoS.reduce((a, b) => a + b, 0);
    return {
      procs: this.#pids.map((_, i) => ({
        cpuPct: ((procS[i] ?? 0) / seconds) * 100,
        peakRssMiB: this.#peak[i] ?? Number.NaN,
      })),
      loadgenCpuPct: (selfS / seconds) * 100,
      foreignCpuPct: Math.max(0, ((machine.busy - this.#machine0.busy - ours) / seconds) * 100),
      stealPct: ((machine.steal - this.#machine0.steal) / seconds) * 100,
    };
  }
}

/** cpuSeconds, or the last value seen once the process is gone (0 if never seen). */
const lastSeen = new Map<number, number>();
function safeCpuSeconds(pid: number): number {
  try {
    const s = cpuSeconds(pid);
    lastSeen.set(pid, s);
    return s;
  } catch {
    return lastSeen.get(pid) ?? 0;
  }
}
