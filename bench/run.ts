/**
 * `npm run bench`: throughput, latency and footprint of Tollgate against the
 * same upstream reached directly and through a bare Node proxy, on loopback.
 *
 * Three targets: direct (bench/upstream.ts), baseline (bench/baseline-proxy.ts)
 * and tollgate (the real `bin/tollgate agent` on bench/policy.yaml with a
 * local ES256 JWKS). Pinned like a pod where taskset exists: this process (the
 * load generator) on CPU 0, upstream and proxies on CPU 1. Every response must
 * be a 200; anything else fails the run. Rewrites bench/RESULTS.md on a full
 * run. Flags: --quick, --only direct,baseline,tollgate, --cpu-prof, --rounds N,
 * --write, --agent-node-options "V8/node flags for the agent only". Children run in their own process groups and are killed on any exit.
 */
import { execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cpus, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startIssuer } from './issuer.ts';
import { type Counts, maxThroughput, type PacedResult } from './load.ts';
import {
  affinityOf,
  BenchChild,
  canPin,
  killAllChildren,
  pinSelf,
  rssMiB,
  stopAllChildren,
  UsageSampler,
} from './procs.ts';
import { summarizeFile } from './profile-summary.ts';
import {
  type Meta,
  ratios,
  renderMarkdown,
  renderSummary,
  type Summary,
  summarize,
  type TargetName,
  type TargetRun,
} from './report.ts';

const root = new URL('..', import.meta.url).pathname;
const bench = join(root, 'bench');
const ALL: TargetName[] = ['direct', 'baseline', 'tollgate'];
const CONNECTIONS = 32;
const RATE = 1000;
const SUB = 'bench-user';
const PATH = `/v1/users/${SUB}/orders/7`;
const AUDIENCE = 'bench-api';

function parseFlags() {
  try {
    return parseArgs({
      options: {
        quick: { type: 'boolean', default: false },
        only: { type: 'string' },
        'cpu-prof': { type: 'boolean', default: false },
        rounds: { type: 'string' },
        write: { type: 'boolean', default: false },
        'agent-node-options': { type: 'string' },
      },
    }).values;
  } catch (e) {
    process.stderr.write(
      `bench: ${(e as Error).message}\n` +
        'usage: npm run bench -- [--quick] [--only direct,baseline,tollgate] [--cpu-prof] [--rounds N] [--write]\n' +
        "       [--agent-node-options='--v8-flag ...'] (a value starting with - needs the = form)\n",
    );
    process.exit(2);
  }
}
const flags = parseFlags();
const only = (flags.only ?? ALL.join(',')).split(',').map((s) => s.trim());
for (const name of only) {
  if (!ALL.includes(name as TargetName)) {
    process.stderr.write(`bench: --only takes ${ALL.join(',')}; got ${JSON.stringify(name)}\n`);
    process.exit(2);
  }
}
const selected = ALL.filter((n) => only.includes(n));
const quick = flags.quick ?? false;
const cpuProf = flags['cpu-prof'] ?? false;
const plan = {
  warmupS: quick ? 1 : 2,
  maxS: quick ? 3 : 8,
  pacedWarmS: 1,
  pacedS: quick ? 3 : 8,
  rounds: Math.max(1, Math.min(5, Number(flags.rounds ?? (quick ? 1 : 2)) || 1)),
};

const log = (msg: string) => process.stderr.write(`› ${msg}\n`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Fails the run loudly when anything but a 200 came back. */
function assertClean(label: string, c: Counts): void {
  if (c.ok > 0 && c.bad === 0 && c.errors === 0 && c.timeouts === 0) return;
  throw new Error(
    `${label}: not every response was a 200 — ok ${c.ok}, other statuses ${c.bad} ` +
      `${JSON.stringify(c.statuses)}, errors ${c.errors}${c.firstError ? ` (first: ${c.firstError})` : ''}, timeouts ${c.timeouts}. The numbers would be meaningless.`,
  );
}

async function freePorts(n: number): Promise<number[]> {
  const servers = Array.from({ length: n }, () => createServer());
  const ports = await Promise.all(
    servers.map(
      (s) =>
        new Promise<number>((resolve, reject) => {
          s.once('error', reject);
          s.listen(0, '127.0.0.1', () => resolve((s.address() as AddressInfo).port));
        }),
    ),
  );
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

async function waitReady(url: string, child: BenchChild, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!child.running) throw new Error(`${child.name} exited while starting:\n${child.tail()}`);
    try {
      const res = await fetch(url);
      await res.arrayBuffer();
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  throw new Error(`${child.name}: ${url} not ready after ${timeoutMs} ms:\n${child.tail()}`);
}

async function expectStatus(
  label: string,
  url: string,
  headers: Record<string, string>,
  status: number,
  check?: (res: Response) => string | null,
): Promise<void> {
  const res = await fetch(url, { headers });
  await res.arrayBuffer();
  if (res.status !== status) throw new Error(`preflight ${label}: expected ${status}, got ${res.status}`);
  const problem = check?.(res);
  if (problem) throw new Error(`preflight ${label}: ${problem}`);
}

interface Target {
  name: TargetName;
  url: string;
  process: BenchChild;
}

function cpuModel(): string {
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    return m?.[1]?.trim() ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

const agentNode = join(root, 'node_modules/node/bin/node');
const agentNodeOptions = flags['agent-node-options'];
/** NODE_OPTIONS for the agent only (e.g. "--max-semi-space-size=4"), to try V8 settings. */
const agentEnv: NodeJS.ProcessEnv =
  agentNodeOptions === undefined
    ? process.env
    : { ...process.env, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} ${agentNodeOptions}`.trim() };

function agentNodeVersion(): string {
  try {
    return execFileSync(existsSync(agentNode) ? agentNode : 'node', ['--version'], {
      encoding: 'utf8',
    }).trim();
  } catch {
    return 'unknown';
  }
}

let tollgateSpawnedAt = 0;

async function startTollgate(policyPath: string, upstream: string, profileName: string): Promise<Target> {
  if (!existsSync(join(root, 'dist/cli/main.js')))
    throw new Error('dist/ is missing: run `npm run build` first');
  for (let attempt = 1; ; attempt += 1) {
    const [listen, admin] = await freePorts(2);
    tollgateSpawnedAt = performance.now();
    const agentArgs = [
      'agent',
      '--policy',
      policyPath,
      '--upstream',
      upstream,
      '--listen',
      `127.0.0.1:${listen}`,
      '--admin',
      `127.0.0.1:${admin}`,
      '--log-level',
      'warn',
    ];
    const child = cpuProf
      ? new BenchChild(
          'tollgate',
          existsSync(agentNode) ? agentNode : process.execPath,
          [
            '--enable-source-maps',
            '--cpu-prof',
            '--cpu-prof-dir',
            join(bench, 'profiles'),
            '--cpu-prof-name',
            profileName,
            '--cpu-prof-interval',
            '250',
            join(root, 'dist/cli/main.js'),
            ...agentArgs,
          ],
          { cpu: 1, env: agentEnv },
        )
      : new BenchChild('tollgate', join(root, 'bin/tollgate'), agentArgs, { cpu: 1, env: agentEnv });
    try {
      await waitReady(`http://127.0.0.1:${admin}/readyz`, child, 15_000);
      return { name: 'tollgate', url: `http://127.0.0.1:${listen}${PATH}`, process: child };
    } catch (e) {
      await child.stop();
      // The ports were free a moment ago; another process may have taken one in between.
      if (attempt >= 3 || !/EADDRINUSE/.test(String(e))) throw e;
    }
  }
}

async function main(): Promise<void> {
  const started = Date.now();
  const cores = cpus().length;
  const selfPinned = pinSelf(0);
  const pinning = selfPinned
    ? 'taskset: load generators (autocannon in the runner, bench/paced-client.ts) on CPU 0; upstream and proxies on CPU 1'
    : canPin
      ? 'taskset present but pinning this process failed: unpinned'
      : `taskset unavailable (or < 2 CPUs: ${cores}): nothing pinned, all processes share the CPUs`;
  log(pinning);

  const issuer = await startIssuer(AUDIENCE);
  const tmp = mkdtempSync(join(tmpdir(), 'tollgate-bench-'));
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const profileName = `tollgate-${stamp}.cpuprofile`;
  if (cpuProf) mkdirSync(join(bench, 'profiles'), { recursive: true });
  const runs: TargetRun[] = [];
  try {
    const token = await issuer.sign({ sub: SUB, scope: 'orders:read' }, 3000);
    const auth = { authorization: `Bearer ${token}` };
    const policyPath = join(tmp, 'policy.yaml');
    writeFileSync(
      policyPath,
      readFileSync(join(bench, 'policy.yaml'), 'utf8').replaceAll('JWKS_ORIGIN', issuer.origin),
    );

    const upstream = new BenchChild('upstream', process.execPath, [join(bench, 'upstream.ts')], { cpu: 1 });
    const upstreamAddr = await upstream.jsonField('listen', 10_000);
    const upstreamOrigin = `http://${upstreamAddr}`;
    const targets: Target[] = [];
    for (const name of selected) {
      if (name === 'direct') targets.push({ name, url: `${upstreamOrigin}${PATH}`, process: upstream });
      if (name === 'baseline') {
        const child = new BenchChild(
          'baseline',
          process.execPath,
          [join(bench, 'baseline-proxy.ts'), '--upstream', upstreamOrigin],
          { cpu: 1 },
        );
        targets.push({
          name,
          url: `http://${await child.jsonField('listen', 10_000)}${PATH}`,
          process: child,
        });
      }
      if (name === 'tollgate') targets.push(await startTollgate(policyPath, upstreamOrigin, profileName));
    }
    log(
      `started: ${targets.map((t) => `${t.name} ${new URL(t.url).host} (pid ${t.process.pid})`).join(', ')}`,
    );

    // Preflight: the same request succeeds everywhere, and Tollgate really enforces the policy.
    for (const t of targets) {
      await expectStatus(`${t.name} with token`, t.url, auth, 200, (res) =>
        t.name === 'tollgate' && res.headers.get('x-seen-user-id') !== SUB
          ? `the upstream did not receive x-user-id: ${SUB} (got ${res.headers.get('x-seen-user-id')})`
          : null,
      );
      if (t.name === 'tollgate') {
        await expectStatus('tollgate without token', t.url, {}, 401);
        await expectStatus('tollgate, another user (BOLA)', t.url.replace(SUB, 'someone-else'), auth, 403);
      }
    }
    log('preflight ok: 200 on every target; tollgate answers 401 without a token and 403 for another user');

    const alive = (t: Target) => {
      for (const c of [t.process, upstream])
        if (!c.running) throw new Error(`${c.name} (pid ${c.pid}) died during the bench:\n${c.tail()}`);
    };
    await sleep(1_000);
    const loadStartedAt = performance.now();
    const rssAfterStart = new Map(targets.map((t) => [t.name, rssMiB(t.process.pid)]));
    for (const t of targets) {
      alive(t);
      log(`warm-up ${t.name} (${plan.warmupS} s)`);
      assertClean(
        `${t.name} warm-up`,
        await maxThroughput(t.url, auth, { connections: CONNECTIONS, durationS: plan.warmupS }),
      );
    }
    await sleep(1_500);
    for (const t of targets) {
      alive(t);
      runs.push({
        name: t.name,
        pid: t.process.pid,
        affinity: affinityOf(t.process.pid),
        rssAfterStartMiB: rssAfterStart.get(t.name) ?? Number.NaN,
        rssIdleMiB: rssMiB(t.process.pid),
        max: [],
        paced: [],
      });
    }
    const runOf = (t: Target) => {
      const run = runs.find((r) => r.name === t.name);
      if (!run) throw new Error(`no run for ${t.name}`);
      return run;
    };
    const pidsOf = (t: Target) => (t.name === 'direct' ? [t.process.pid] : [t.process.pid, upstream.pid]);
    // Rounds interleave the targets (reversed every other round) so a drift of the machine hits all alike.
    const order = (round: number) => (round % 2 === 0 ? targets : [...targets].reverse());

    // Latency first: the steady 1000 req/s state, before saturation grows the heaps (whose later
    // major GCs would otherwise land in the latency windows).
    for (let round = 0; round < plan.rounds; round += 1) {
      for (const t of order(round)) {
        alive(t);
        log(
          `round ${round + 1}/${plan.rounds}: ${RATE} req/s ${t.name} (${plan.pacedWarmS} s + ${plan.pacedS} s)`,
        );
        const client = new BenchChild(
          'paced-client',
          process.execPath,
          [
            join(bench, 'paced-client.ts'),
            '--url',
            t.url,
            '--rate',
            String(RATE),
            '--warmup',
            String(plan.pacedWarmS),
            '--duration',
            String(plan.pacedS),
            ...Object.entries(auth).flatMap(([k, v]) => ['--header', `${k}: ${v}`]),
          ],
          { cpu: 0 },
        );
        try {
          const warmup = await client.waitJson('warmup', 30_000);
          assertClean(`${t.name} paced warm-up`, warmup as Counts);
          const sampler = new UsageSampler(pidsOf(t), [client.pid]);
          const result = await client.waitJson('result', (plan.pacedS + 15) * 1000);
          const usage = sampler.stop();
          const res = result as PacedResult;
          assertClean(`${t.name} at ${RATE} req/s`, res);
          const [proxy, up] = usage.procs;
          if (!proxy) throw new Error('no process usage');
          runOf(t).paced.push({ res, proxy, upstream: up ?? null, ...usage });
        } finally {
          await client.stop();
        }
        await sleep(500);
      }
    }
    for (let round = 0; round < plan.rounds; round += 1) {
      for (const t of order(round)) {
        log(
          `round ${round + 1}/${plan.rounds}: max throughput ${t.name} (${plan.maxS} s, ${CONNECTIONS} conns)`,
        );
        alive(t);
        const sampler = new UsageSampler(pidsOf(t));
        const res = await maxThroughput(t.url, auth, { connections: CONNECTIONS, durationS: plan.maxS });
        const usage = sampler.stop();
        assertClean(`${t.name} max throughput`, res);
        const [proxy, up] = usage.procs;
        if (!proxy) throw new Error('no process usage');
        runOf(t).max.push({ res, proxy, upstream: up ?? null, ...usage });
        log(
          `  ${res.rps.toFixed(0)} req/s, p50 ${res.p50} ms, p99 ${res.p99} ms, CPU ${proxy.cpuPct.toFixed(0)}%`,
        );
        await sleep(750);
      }
    }

    const tollgate = targets.find((t) => t.name === 'tollgate');
    if (cpuProf && tollgate) {
      log('stopping the agent so it writes its profile');
      await tollgate.process.stop(20_000);
    }
    const summaries: Summary[] = runs.map(summarize);
    const r = ratios(Object.fromEntries(summaries.map((s) => [s.name, s])));
    const meta: Meta = {
      date: new Date().toISOString(),
      cpuModel: cpuModel(),
      cores,
      nodeVersion: process.version,
      agentNodeVersion: agentNodeVersion(),
      kernel: release(),
      pinning,
      quick,
      cpuProf,
      rounds: plan.rounds,
      connections: CONNECTIONS,
      warmupS: plan.warmupS,
      maxS: plan.maxS,
      rate: RATE,
      pacedS: plan.pacedS,
      command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
      jwksFetches: issuer.jwksFetches(),
      agentNodeOptions: agentNodeOptions ?? null,
    };
    const full = selected.length === ALL.length && !quick && !cpuProf && agentNodeOptions === undefined;
    if (full || flags.write) {
      writeFileSync(join(bench, 'RESULTS.md'), renderMarkdown(meta, runs, summaries, r));
      log('wrote bench/RESULTS.md');
    } else {
      log('partial or quick run: bench/RESULTS.md left as it was (--write to overwrite)');
    }
    process.stdout.write(`\n${renderSummary(summaries, r)}\n`);
    if (cpuProf) {
      const file = join(bench, 'profiles', profileName);
      const found = existsSync(file) ? file : null;
      if (!found) {
        const there = existsSync(join(bench, 'profiles')) ? readdirSync(join(bench, 'profiles')) : [];
        throw new Error(`no profile at ${file} (bench/profiles has: ${there.join(', ') || 'nothing'})`);
      }
      // Skip the agent's startup (module loading, policy compile): keep the samples from the first load on.
      const fromMs = Math.max(0, loadStartedAt - tollgateSpawnedAt);
      process.stdout.write(`\nprofile: ${found}\n${summarizeFile(found, 15, fromMs)}\n`);
    }
    log(`done in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  } finally {
    await stopAllChildren();
    issuer.server.closeAllConnections();
    await new Promise((resolve) => issuer.server.close(resolve));
    rmSync(tmp, { recursive: true, force: true });
  }
}

process.on('exit', killAllChildren);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    killAllChildren();
    process.exit(130);
  });
}
main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`\nbench FAILED: ${e instanceof Error ? e.message : String(e)}\n`);
    killAllChildren();
    process.exit(1);
  },
);
