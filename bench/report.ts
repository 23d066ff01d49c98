/**
 * The bench's results: per-target aggregates over rounds, ratios against the
 * direct upstream of the same run, target verdicts, and their rendering as
 * bench/RESULTS.md and as a short stdout summary. A run measures one or more
 * cases (request shapes on their own route); the first is the primary GET
 * case, which the verdicts judge.
 */
import { type MaxResult, type PacedResult, percentile } from './load.ts';
import type { ProcUsage } from './procs.ts';
import { type TelemetryReport, telemetrySection, telemetrySummary } from './telemetry-report.ts';

/** Foreign CPU above this (% of one core) in any window marks the run as disturbed. */
export const FOREIGN_CPU_LIMIT_PCT = 10;

export type TargetName = 'direct' | 'baseline' | 'tollgate';

export interface Sampled<R> {
  res: R;
  /** The measured process: the proxy, or the upstream itself for `direct`. */
  proxy: ProcUsage;
  /** The upstream while a proxy is measured (null for `direct`). */
  upstream: ProcUsage | null;
  loadgenCpuPct: number;
  /** CPU used by processes outside the bench during the window, % of one core. */
  foreignCpuPct: number;
  stealPct: number;
}

export interface TargetRun {
  name: TargetName;
  pid: number;
  affinity: string | null;
  rssAfterStartMiB: number;
  rssIdleMiB: number;
  max: Sampled<MaxResult>[];
  paced: Sampled<PacedResult>[];
}

export interface Meta {
  date: string;
  cpuModel: string;
  cores: number;
  nodeVersion: string;
  agentNodeVersion: string;
  kernel: string;
  pinning: string;
  quick: boolean;
  cpuProf: boolean;
  rounds: number;
  connections: number;
  warmupS: number;
  maxS: number;
  rate: number;
  pacedS: number;
  command: string;
  jwksFetches: number;
  /** NODE_OPTIONS given to the agent only (--agent-node-options), or null. */
  agentNodeOptions: string | null;
}

/** One bench case: a request shape on its own route of bench/policy.yaml. */
export interface CaseInfo {
  id: string;
  title: string;
  /** What is sent, in Markdown. */
  request: string;
  /** What the Tollgate route does beyond the GET case's policy, in Markdown. */
  route: string;
  rounds: number;
}

export interface CaseResult {
  info: CaseInfo;
  runs: TargetRun[];
  summaries: Summary[];
  ratios: Ratios;
}

/** The global-limit case (tollgate only), judged against tollgate's `get` case (local limits) of the same run. */
export interface GlobalLimitReport {
  info: CaseInfo;
  /** Why the case was not measured, or null. */
  skipped: string | null;
  /** tollgate on the `scope: Global` route, or null when skipped. */
  global: Summary | null;
  /** tollgate on the `get` route (local limit), or null when that case did not run. */
  local: Summary | null;
  /** redis-server CPU, % of one core, mean over the windows. */
  redisCpuAtRate: number;
  redisCpuAtMax: number;
  /** The keys `KEYS tollgate:*` listed at preflight. */
  redisKeys: string[];
  /** tollgate_ratelimit_fallback_total over warm-up and measurement: calls answered locally, not by Redis. */
  fallbacks: number;
}

export const GLOBAL_P50_TARGET_MS = 0.3;

export interface GlobalComparison {
  p50: number;
  p90: number;
  p99: number;
  /** global / local max throughput. */
  rpsRatio: number;
  verdict: Verdict;
}

export function compareGlobal(g: GlobalLimitReport): GlobalComparison | null {
  const { global, local } = g;
  if (!global || !local) return null;
  const p50 = global.p50 - local.p50;
  return {
    p50,
    p90: global.p90 - local.p90,
    p99: global.p99 - local.p99,
    rpsRatio: global.rps / local.rps,
    verdict: {
      label: `global-limit: +p50 ≤ ${GLOBAL_P50_TARGET_MS} ms over local limits (get case) at 1000 req/s`,
      value: `${signed(p50, 3)} ms`,
      pass: p50 <= GLOBAL_P50_TARGET_MS,
    },
  };
}

function globalSection(g: GlobalLimitReport, meta: Meta): string[] {
  const out: string[] = [`## global-limit: ${g.info.title}`, ''];
  out.push(
    `Request: ${g.info.request}. Tollgate route: ${g.info.route}. The agent runs with ` +
      '`--redis-url redis://127.0.0.1:PORT` (default `--redis-timeout`); `redis-server --save "" --appendonly no` ' +
      'is started by the bench and pinned with the upstream and the agent on CPU 1 (like a Redis sharing the node). ' +
      `Tollgate only (direct and baseline enforce no limits): compared with tollgate's **get** case, the same ` +
      `request on a route with a local limit, in the same run and agent. ${g.info.rounds} round${g.info.rounds === 1 ? '' : 's'}, ` +
      'same durations and connections.',
    '',
  );
  if (g.skipped) {
    out.push(`> ⚠️ **Skipped**: ${g.skipped}.`, '');
    return out;
  }
  const c = compareGlobal(g);
  const rows = [g.local, g.global].filter((s): s is Summary => s !== null);
  const label = (s: Summary) =>
    s === g.global ? '**tollgate, Global limit (Redis)**' : '**tollgate, local limit (get)**';
  out.push(
    `### Latency at ${meta.rate} req/s`,
    '',
    table(
      [
        'limit',
        'p50 ms',
        'p90 ms',
        'p99 ms',
        'max ms',
        'achieved req/s',
        'agent CPU %',
        'CPU µs/req',
        'p50 / p99 per round',
      ],
      rows.map((s) => [
        label(s),
        f(s.p50, 3),
        f(s.p90, 3),
        f(s.p99, 3),
        f(s.pmax, 2),
        f(s.achievedRps, 0),
        f(s.cpuAtRate),
        f(s.cpuUsPerReq, 0),
        s.pacedRounds.map((x) => `${f(x.p50, 3)} / ${f(x.p99, 3)}`).join('; '),
      ]),
    ),
    '',
    '### Maximum throughput',
    '',
    table(
      ['limit', 'req/s (mean)', 'req/s per round', 'p50 ms', 'p99 ms', 'agent CPU %', 'upstream CPU %'],
      rows.map((s) => [
        label(s),
        f(s.rps, 0),
        s.rpsRounds.map((x) => x.toFixed(0)).join(', '),
        f(s.maxP50, 0),
        f(s.maxP99, 0),
        f(s.cpuAtMax),
        f(s.upstreamCpuAtMax),
      ]),
    ),
    '',
    '### Global vs local (same run)',
    '',
    table(
      ['', 'value'],
      [
        [
          `added latency at ${meta.rate} req/s`,
          c
            ? `+p50 ${signed(c.p50, 3)} ms, +p90 ${signed(c.p90, 3)} ms, +p99 ${signed(c.p99, 3)} ms`
            : 'n/a (no get case)',
        ],
        ['throughput global / local', c ? fmtRatio(c.rpsRatio) : 'n/a (no get case)'],
        [
          'redis-server CPU %',
          `${f(g.redisCpuAtRate)} at ${meta.rate} req/s, ${f(g.redisCpuAtMax)} at maximum throughput (of one core)`,
        ],
        [
          'calls that fell back to local buckets (`tollgate_ratelimit_fallback_total`, warm-up + measurement)',
          g.fallbacks === 0
            ? '0 (every request was decided by Redis)'
            : `⚠️ ${g.fallbacks}: partly local, not fully Global`,
        ],
        [
          'Redis keys at preflight (`KEYS tollgate:*`, under load: a key expires ~2 ms after its last take)',
          g.redisKeys.map((k) => `\`${k}\``).join(', ') || 'none',
        ],
      ],
    ),
    '',
    '### Target',
    '',
    c
      ? table(['target', 'measured', ''], [[c.verdict.label, c.verdict.value, mark(c.verdict)]])
      : '— (needs the get case in the same run)',
    '',
    'The added latency is one loopback round trip to Redis (EVALSHA of the token-bucket script) per request, ' +
      'on the same core as the agent and the upstream; a Redis on another node adds its network RTT.',
    '',
  );
  return out;
}

export interface Summary {
  name: TargetName;
  rps: number;
  rpsRounds: number[];
  maxP50: number;
  maxP99: number;
  cpuAtMax: number;
  upstreamCpuAtMax: number | null;
  loadgenCpuAtMax: number;
  cpuAtRate: number;
  /** CPU µs per request at the fixed rate (the proxy process). */
  cpuUsPerReq: number;
  p50: number;
  p90: number;
  p99: number;
  pmax: number;
  /** p50/p99 of each round, to show the spread. */
  pacedRounds: Array<{ p50: number; p99: number }>;
  achievedRps: number;
  lagP99: number;
  /** Paced sends that found all generator connections busy. */
  queued: number;
  rssAfterStart: number;
  rssIdle: number;
  rssPeak: number;
  requests: number;
  /** Highest foreign CPU and steal in any of the target's windows, % of one core. */
  foreignMax: number;
  stealMax: number;
}

const mean = (xs: number[]) => (xs.length === 0 ? Number.NaN : xs.reduce((a, b) => a + b, 0) / xs.length);

export function summarize(run: TargetRun): Summary {
  const latencies = run.paced.flatMap((p) => p.res.latencies).sort((a, b) => a - b);
  const cpuAtRate = mean(run.paced.map((p) => p.proxy.cpuPct));
  const achieved = mean(run.paced.map((p) => p.res.achievedRps));
  const upstream = run.max.map((m) => m.upstream?.cpuPct).filter((x) => x !== undefined);
  return {
    name: run.name,
    rps: mean(run.max.map((m) => m.res.rps)),
    rpsRounds: run.max.map((m) => m.res.rps),
    maxP50: mean(run.max.map((m) => m.res.p50)),
    maxP99: mean(run.max.map((m) => m.res.p99)),
    cpuAtMax: mean(run.max.map((m) => m.proxy.cpuPct)),
    upstreamCpuAtMax: upstream.length > 0 ? mean(upstream) : null,
    loadgenCpuAtMax: mean(run.max.map((m) => m.loadgenCpuPct)),
    cpuAtRate,
    cpuUsPerReq: ((cpuAtRate / 100) * 1e6) / achieved,
    p50: percentile(latencies, 0.5),
    p90: percentile(latencies, 0.9),
    p99: percentile(latencies, 0.99),
    pmax: latencies[latencies.length - 1] ?? Number.NaN,
    pacedRounds: run.paced.map((p) => {
      const l = [...p.res.latencies].sort((a, b) => a - b);
      return { p50: percentile(l, 0.5), p99: percentile(l, 0.99) };
    }),
    achievedRps: achieved,
    lagP99: Math.max(...run.paced.map((p) => p.res.lagP99)),
    queued: run.paced.reduce((a, p) => a + p.res.queued, 0),
    rssAfterStart: run.rssAfterStartMiB,
    rssIdle: run.rssIdleMiB,
    rssPeak: Math.max(...run.max.map((m) => m.proxy.peakRssMiB), ...run.paced.map((p) => p.proxy.peakRssMiB)),
    requests: run.max.reduce((a, m) => a + m.res.ok, 0) + run.paced.reduce((a, p) => a + p.res.ok, 0),
    foreignMax: Math.max(...run.max.map((m) => m.foreignCpuPct), ...run.paced.map((p) => p.foreignCpuPct)),
    stealMax: Math.max(...run.max.map((m) => m.stealPct), ...run.paced.map((p) => p.stealPct)),
  };
}

export interface Verdict {
  label: string;
  value: string;
  pass: boolean | null;
}

export interface Ratios {
  tollgateVsDirect: number | null;
  baselineVsDirect: number | null;
  tollgateVsBaseline: number | null;
  /** +p50/+p99 over direct at the fixed rate, ms. */
  overhead: Partial<Record<'baseline' | 'tollgate', { p50: number; p90: number; p99: number }>>;
}

export function ratios(s: Partial<Record<TargetName, Summary>>): Ratios {
  const { direct, baseline, tollgate } = s;
  const over = (t: Summary | undefined) =>
    t && direct ? { p50: t.p50 - direct.p50, p90: t.p90 - direct.p90, p99: t.p99 - direct.p99 } : undefined;
  const b = over(baseline);
  const t = over(tollgate);
  return {
    tollgateVsDirect: tollgate && direct ? tollgate.rps / direct.rps : null,
    baselineVsDirect: baseline && direct ? baseline.rps / direct.rps : null,
    tollgateVsBaseline: tollgate && baseline ? tollgate.rps / baseline.rps : null,
    overhead: { ...(b ? { baseline: b } : {}), ...(t ? { tollgate: t } : {}) },
  };
}

export const TARGETS = {
  throughputVsBaseline: 1.0,
  p50OverheadMs: 0.25,
  p99OverheadMs: 1,
  rssIdleMiB: 80,
  rssLoadMiB: 120,
};

export function verdicts(s: Partial<Record<TargetName, Summary>>, r: Ratios): Verdict[] {
  const t = s.tollgate;
  const o = r.overhead.tollgate;
  const fmtX = (x: number | null) => (x === null ? 'n/a' : `${x.toFixed(2)}×`);
  return [
    {
      label: `Throughput ≥ ${TARGETS.throughputVsBaseline.toFixed(1)}× the bare Node proxy`,
      value: fmtX(r.tollgateVsBaseline),
      pass: r.tollgateVsBaseline === null ? null : r.tollgateVsBaseline >= TARGETS.throughputVsBaseline,
    },
    {
      label: `+p50 ≤ ${TARGETS.p50OverheadMs} ms over direct at ${'1000'} req/s`,
      value: o ? `${signed(o.p50, 3)} ms` : 'n/a',
      pass: o ? o.p50 <= TARGETS.p50OverheadMs : null,
    },
    {
      label: `+p99 ≤ ${TARGETS.p99OverheadMs} ms over direct at 1000 req/s`,
      value: o ? `${signed(o.p99, 3)} ms` : 'n/a',
      pass: o ? o.p99 <= TARGETS.p99OverheadMs : null,
    },
    {
      label: `RSS idle ≤ ${TARGETS.rssIdleMiB} MiB (after warm-up)`,
      value: t ? `${t.rssIdle.toFixed(1)} MiB` : 'n/a',
      pass: t ? t.rssIdle <= TARGETS.rssIdleMiB : null,
    },
    {
      label: `RSS under load ≤ ${TARGETS.rssLoadMiB} MiB (peak)`,
      value: t ? `${t.rssPeak.toFixed(1)} MiB` : 'n/a',
      pass: t ? t.rssPeak <= TARGETS.rssLoadMiB : null,
    },
  ];
}

export function signed(x: number, digits: number): string {
  return `${x >= 0 ? '+' : ''}${x.toFixed(digits)}`;
}
export const f = (x: number | null, digits = 1) =>
  x === null || Number.isNaN(x) ? 'n/a' : x.toFixed(digits);
export const mark = (v: Verdict) => (v.pass === null ? '—' : v.pass ? '✅' : '❌');

export function table(header: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

/**
 * The primary case's summaries with the whole run's worst windows: RSS peak, foreign CPU and steal
 * taken over every case (memory and disturbance are properties of the run, not of one request shape).
 */
export function overall(cases: CaseResult[]): Summary[] {
  const [primary] = cases;
  if (!primary) return [];
  return primary.summaries.map((s) => {
    const all = cases.flatMap((c) => c.summaries.filter((x) => x.name === s.name));
    return {
      ...s,
      rssPeak: Math.max(...all.map((x) => x.rssPeak)),
      foreignMax: Math.max(...all.map((x) => x.foreignMax)),
      stealMax: Math.max(...all.map((x) => x.stealMax)),
    };
  });
}

export function maxTable(summaries: Summary[]): string {
  return table(
    [
      'target',
      'req/s (mean)',
      'req/s per round',
      'p50 ms',
      'p99 ms',
      'process CPU %',
      'upstream CPU %',
      'load gen CPU %',
    ],
    summaries.map((s) => [
      `**${s.name}**`,
      f(s.rps, 0),
      s.rpsRounds.map((x) => x.toFixed(0)).join(', '),
      f(s.maxP50, 0),
      f(s.maxP99, 0),
      f(s.cpuAtMax),
      s.upstreamCpuAtMax === null ? '(is the upstream)' : f(s.upstreamCpuAtMax),
      f(s.loadgenCpuAtMax),
    ]),
  );
}

export function latencyTable(summaries: Summary[]): string {
  return table(
    [
      'target',
      'p50 ms',
      'p90 ms',
      'p99 ms',
      'max ms',
      'achieved req/s',
      'process CPU %',
      'CPU µs/req',
      'p50 / p99 per round',
      'send lag p99 ms',
      'sends queued (all conns busy)',
    ],
    summaries.map((s) => [
      `**${s.name}**`,
      f(s.p50, 3),
      f(s.p90, 3),
      f(s.p99, 3),
      f(s.pmax, 2),
      f(s.achievedRps, 0),
      f(s.cpuAtRate),
      f(s.cpuUsPerReq, 0),
      s.pacedRounds.map((x) => `${f(x.p50, 3)} / ${f(x.p99, 3)}`).join('; '),
      f(s.lagP99, 3),
      String(s.queued),
    ]),
  );
}

export const fmtRatio = (x: number | null) => (x === null ? 'n/a' : `${x.toFixed(2)}×`);

function ratioTable(r: Ratios, rate: number): string {
  const rows: string[][] = [
    ['tollgate / direct throughput', fmtRatio(r.tollgateVsDirect)],
    ['baseline / direct throughput', fmtRatio(r.baselineVsDirect)],
    ['tollgate / baseline throughput', fmtRatio(r.tollgateVsBaseline)],
  ];
  for (const name of ['baseline', 'tollgate'] as const) {
    const o = r.overhead[name];
    if (o)
      rows.push([
        `${name} latency overhead at ${rate} req/s`,
        `+p50 ${signed(o.p50, 3)} ms, +p90 ${signed(o.p90, 3)} ms, +p99 ${signed(o.p99, 3)} ms`,
      ]);
  }
  return table(['ratio', 'value'], rows);
}

/** One row per case: the ratios and per-request CPU side by side. */
function casesTable(cases: CaseResult[]): string {
  const over = (r: Ratios, name: 'baseline' | 'tollgate') => {
    const o = r.overhead[name];
    return o ? `${signed(o.p50, 3)} / ${signed(o.p99, 3)}` : 'n/a';
  };
  const cpu = (c: CaseResult, name: TargetName) => {
    const s = c.summaries.find((x) => x.name === name);
    return s ? f(s.cpuUsPerReq, 0) : 'n/a';
  };
  return table(
    [
      'case',
      'rounds',
      'tollgate / baseline req/s',
      'tollgate / direct req/s',
      'baseline / direct req/s',
      'tollgate +p50 / +p99 ms',
      'baseline +p50 / +p99 ms',
      'CPU µs/req direct / baseline / tollgate',
    ],
    cases.map((c) => [
      `**${c.info.id}**`,
      String(c.info.rounds),
      fmtRatio(c.ratios.tollgateVsBaseline),
      fmtRatio(c.ratios.tollgateVsDirect),
      fmtRatio(c.ratios.baselineVsDirect),
      over(c.ratios, 'tollgate'),
      over(c.ratios, 'baseline'),
      `${cpu(c, 'direct')} / ${cpu(c, 'baseline')} / ${cpu(c, 'tollgate')}`,
    ]),
  );
}

export function renderMarkdown(
  meta: Meta,
  cases: CaseResult[],
  global: GlobalLimitReport | null = null,
  telemetry: TelemetryReport | null = null,
): string {
  const [primary, ...others] = cases;
  if (!primary) throw new Error('no case to report');
  const runs = primary.runs;
  const summaries = primary.summaries;
  const r = primary.ratios;
  const whole = overall(cases);
  const bySummary = Object.fromEntries(whole.map((s) => [s.name, s])) as Partial<Record<TargetName, Summary>>;
  const v = verdicts(bySummary, r);
  const out: string[] = [];
  out.push('# Tollgate bench results', '');
  out.push(
    `Generated by \`${meta.command}\` (bench/run.ts) on ${meta.date}.` +
      (meta.quick ? ' **Quick run: short durations, indicative only.**' : '') +
      (meta.cpuProf ? ' **The agent ran under `--cpu-prof`: its numbers include the profiler.**' : ''),
    '',
  );
  const disturbed = whole.filter((s) => s.foreignMax > FOREIGN_CPU_LIMIT_PCT);
  if (disturbed.length > 0)
    out.push(
      `> ⚠️ Other processes used up to ${Math.max(...disturbed.map((s) => s.foreignMax)).toFixed(0)} % of a core ` +
        `while ${disturbed.map((s) => s.name).join(', ')} ran: this run was disturbed, its numbers are noisy.`,
      '',
    );
  out.push('## Setup', '');
  out.push(
    table(
      ['', ''],
      [
        ['machine', `${meta.cpuModel}, ${meta.cores} cores, Linux ${meta.kernel}`],
        ['node', `${meta.nodeVersion} (load generator and baseline), ${meta.agentNodeVersion} (agent)`],
        ['pinning', meta.pinning],
        [
          'targets',
          '**direct**: bench/upstream.ts (node:http, keep-alive; small JSON body, 201 to a POST after reading its body, ~1 KB JSON for `…/details`); ' +
            '**baseline**: bench/baseline-proxy.ts (node:http + undici `Pool.stream`, keep-alive, streaming, hop-by-hop headers stripped, no policy); ' +
            '**tollgate**: `bin/tollgate agent --log-level warn` with bench/policy.yaml ' +
            '(ES256 JWT via a local JWKS, route template, CEL `params.userId == claims.sub`, ' +
            'per-user rate limit on claim `sub`, claim header `x-user-id`)',
        ],
        [
          'cases',
          cases
            .map(
              (c) =>
                `**${c.info.id}** (${c.info.rounds} round${c.info.rounds === 1 ? '' : 's'}): ${c.info.request}`,
            )
            .join('; ') +
            '. The same request, with the same valid Bearer token, goes to every target; every response must ' +
            'have the expected status (any other status, error or timeout fails the run)',
        ],
        [
          'max throughput',
          `autocannon, ${meta.connections} connections, pipelining 1, ${meta.warmupS} s warm-up, ` +
            `${meta.maxS} s × the case's rounds, targets interleaved; the warm-up runs every case`,
        ],
        [
          'fixed rate',
          `open-loop paced generator in its own process (bench/paced-client.ts: 32 raw keep-alive sockets, ` +
            'µs timing from the write, or from when it was due if every connection was busy), ' +
            `${meta.rate} req/s, ` +
            `1 s warm-up + ${meta.pacedS} s × the case's rounds; every case's latency is measured before any ` +
            'maximum-throughput window',
        ],
        [
          'process stats',
          'CPU = user+sys from /proc/PID/stat over the window, % of one core; ' +
            'RSS = VmRSS (MiB), sampled every 250 ms',
        ],
        ['JWKS fetches by the agent', String(meta.jwksFetches)],
        ['agent NODE_OPTIONS', meta.agentNodeOptions === null ? '(none)' : `\`${meta.agentNodeOptions}\``],
      ],
    ),
    '',
  );

  out.push(`## Maximum throughput (${primary.info.id} case)`, '');
  out.push(
    maxTable(summaries),
    '',
    'autocannon latencies are whole milliseconds. A load generator CPU near 100 % means the generator, ' +
      'not the target, may be the limit (most likely for **direct**).',
    '',
  );

  out.push(`## Latency at ${meta.rate} req/s (${primary.info.id} case)`, '');
  out.push(latencyTable(summaries), '');

  out.push('## Disturbance', '');
  out.push(
    table(
      ['target', 'foreign CPU % (max window)', 'steal % (max window)'],
      whole.map((s) => [`**${s.name}**`, f(s.foreignMax), f(s.stealMax)]),
    ),
    '',
    'Foreign CPU = machine user+nice+sys minus every bench process, % of one core (interrupts and softirq ' +
      `excluded), over every case's windows. Above ${FOREIGN_CPU_LIMIT_PCT} % the run is marked disturbed.`,
    '',
  );

  out.push('## Memory (measured process)', '');
  out.push(
    table(
      ['target', 'RSS after start MiB', 'RSS idle after warm-up MiB', 'RSS peak under load MiB'],
      whole.map((s) => [`**${s.name}**`, f(s.rssAfterStart), f(s.rssIdle), f(s.rssPeak)]),
    ),
    '',
    'The peak is over every case (the processes serve all of them).',
    '',
  );

  out.push(`## Ratios (same run, ${primary.info.id} case)`, '');
  out.push(ratioTable(r, meta.rate), '');

  if (others.length > 0) {
    out.push('## All cases', '');
    out.push(
      casesTable(cases),
      '',
      `Throughput ratios from the maximum-throughput windows; latency overheads over **direct** at ${meta.rate} ` +
        'req/s; CPU µs/req of the measured process (the proxy, or the upstream for **direct**) at that rate.',
      '',
    );
  }
  for (const c of others) {
    out.push(`## Case ${c.info.id}: ${c.info.title}`, '');
    out.push(
      `Request: ${c.info.request}. Tollgate route: ${c.info.route}. ` +
        `${c.info.rounds} round${c.info.rounds === 1 ? '' : 's'} (the ${primary.info.id} case has ${primary.info.rounds}), ` +
        `same durations and connections.`,
      '',
    );
    out.push('### Maximum throughput', '', maxTable(c.summaries), '');
    out.push(`### Latency at ${meta.rate} req/s`, '', latencyTable(c.summaries), '');
    out.push('### Ratios (same run)', '', ratioTable(c.ratios, meta.rate), '');
  }

  if (global) out.push(...globalSection(global, meta));
  if (telemetry) out.push(...telemetrySection(telemetry, meta));

  out.push(`## Targets (${primary.info.id} case)`, '');
  out.push(
    table(
      ['target', 'measured', ''],
      v.map((x) => [x.label, x.value, mark(x)]),
    ),
    '',
  );

  out.push('## Reading these numbers', '');
  out.push(
    '- **direct** is bounded by the load generator (autocannon on one core; see its CPU above), so the ' +
      '`/direct` throughput ratios understate what the upstream alone could do; `tollgate / baseline` is ' +
      'the like-for-like comparison.',
    '- The proxy and the upstream share CPU 1, like a one-core pod running app and sidecar: at maximum ' +
      'throughput the two together use the whole core, so req/s reflects CPU per request of both.',
    '- Latency is measured before the saturation phase (steady 1000 req/s, heaps not yet grown). On this ' +
      'kind of VM p99 and max move between runs (the Tollgate p99 by up to a few ms, from rare stalls of ' +
      '10–40 ms): compare the per-round values, and rerun before reading a verdict that is close.',
    '- **body-schema**: Tollgate reads the whole body (bounded by `maxBodyBytes`), parses it with its safe ' +
      "JSON parser and validates it with the route's compiled JSON Schema before forwarding it; the baseline " +
      "streams it through. **omit-fields**: Tollgate buffers the upstream's ~1 KB JSON answer, parses it, " +
      'removes the listed fields and serializes it again (new Content-Length); the baseline streams it. The ' +
      'gap to the GET case is the price of that work per request. These cases run fewer rounds than the GET ' +
      'case to keep the full run near 4–5 minutes: read their p99 with that in mind.',
    '- CPU profile (`--cpu-prof`): V8 samples wall time, so the self time of the socket write bindings ' +
      '(`writeLatin1String`, `writev`) also holds the kernel loopback path and, on a shared CPU, the time ' +
      'the woken upstream runs. Use `bench/profile-summary.ts` with `--from-ms` to leave out startup.',
    '',
  );

  const pinned = runs.map((x) => `${x.name}: pid ${x.pid}, CPUs ${x.affinity ?? 'unpinned'}`).join('; ');
  out.push('## Reproduce', '');
  out.push(
    '```sh',
    'npm run build        # the agent runs from dist/',
    'npm run bench        # full run (~4–5 min), rewrites bench/RESULTS.md',
    'npm run bench -- --quick                          # smoke check (short durations)',
    'npm run bench -- --only tollgate,baseline         # a subset (direct is always started as the upstream)',
    'npm run bench -- --cases body-schema,omit-fields  # a subset of the cases (get, body-schema, omit-fields, global-limit, telemetry, mtls, rotation)',
    'npm run bench -- --only tollgate --cases get,global-limit   # Global (Redis) vs local limits only',
    'npm run bench -- --only direct,baseline,tollgate --cases get,telemetry   # telemetry on vs off only',
    'npm run bench -- --only tollgate --cases mtls     # keep-alive mTLS vs plaintext only (writes its section)',
    'npm run bench -- --cases rotation                 # 1000 req/s × 30 s across certificate renewals (writes its section)',
    '  # ... --write-telemetry: and rewrite only the telemetry section of this file',
    'npm run bench -- --cpu-prof --only tollgate --quick   # profile the agent (and the telemetry-on agent with the telemetry case)',
    "npm run bench -- --agent-node-options='--max-semi-space-size=4'   # try V8 flags on the agent only",
    'node bench/profile-summary.ts bench/profiles/<file>.cpuprofile   # top self-time functions',
    '```',
    '',
    `Affinity seen during this run: ${pinned}.`,
    'Only a full run (all targets and cases, no `--quick`, `--cpu-prof` or `--agent-node-options`) rewrites this file; ' +
      'other runs print their summary (pass `--write` to write anyway). The mtls and rotation cases keep their own ' +
      'sections (below), which any run of them without those flags rewrites.',
    '',
  );
  return out.join('\n');
}

function summaryBlock(c: CaseResult, lines: string[]): void {
  const { summaries, ratios: r } = c;
  lines.push(
    `[${c.info.id}] ${c.info.title}`,
    'target     req/s   max p50/p99 ms | @rate p50    p90    p99    max ms | CPU% max / @rate | CPU µs/req | RSS MiB start/idle/peak',
  );
  for (const s of summaries) {
    lines.push(
      `${s.name.padEnd(9)} ${f(s.rps, 0).padStart(6)}   ${f(s.maxP50, 0).padStart(3)} / ${f(s.maxP99, 0).padEnd(4)}  | ` +
        `${f(s.p50, 3)}  ${f(s.p90, 3)}  ${f(s.p99, 3)}  ${f(s.pmax, 2).padStart(6)} | ` +
        `${f(s.cpuAtMax).padStart(5)} / ${f(s.cpuAtRate).padEnd(5)}    | ${f(s.cpuUsPerReq, 0).padStart(10)} | ` +
        `${f(s.rssAfterStart)} / ${f(s.rssIdle)} / ${f(s.rssPeak)}`,
    );
  }
  lines.push('');
  if (r.tollgateVsDirect !== null) lines.push(`tollgate/direct   ${r.tollgateVsDirect.toFixed(2)}×`);
  if (r.baselineVsDirect !== null) lines.push(`baseline/direct   ${r.baselineVsDirect.toFixed(2)}×`);
  if (r.tollgateVsBaseline !== null) lines.push(`tollgate/baseline ${r.tollgateVsBaseline.toFixed(2)}×`);
  for (const name of ['baseline', 'tollgate'] as const) {
    const o = r.overhead[name];
    if (o) lines.push(`${name.padEnd(9)} overhead: +p50 ${signed(o.p50, 3)} ms, +p99 ${signed(o.p99, 3)} ms`);
  }
  lines.push('');
}

export function renderSummary(
  cases: CaseResult[],
  global: GlobalLimitReport | null = null,
  telemetry: TelemetryReport | null = null,
): string {
  const [primary] = cases;
  if (!primary && !global) return '(no case)';
  const whole = overall(cases);
  const by = Object.fromEntries(whole.map((s) => [s.name, s])) as Partial<Record<TargetName, Summary>>;
  const lines: string[] = [];
  for (const c of cases) summaryBlock(c, lines);
  if (global?.skipped) lines.push(`[global-limit] SKIPPED: ${global.skipped}`, '');
  else if (global?.global) {
    const g = global.global;
    const c = compareGlobal(global);
    lines.push(
      `[global-limit] ${global.info.title}`,
      `tollgate  ${f(g.rps, 0)} req/s | @rate p50 ${f(g.p50, 3)}  p90 ${f(g.p90, 3)}  p99 ${f(g.p99, 3)} ms | ` +
        `CPU µs/req ${f(g.cpuUsPerReq, 0)} | redis CPU% ${f(global.redisCpuAtRate)} @rate / ${f(global.redisCpuAtMax)} max`,
      c
        ? `vs local (get): +p50 ${signed(c.p50, 3)} ms, +p90 ${signed(c.p90, 3)} ms, +p99 ${signed(c.p99, 3)} ms, throughput ${fmtRatio(c.rpsRatio)}`
        : 'vs local: n/a (no get case in this run)',
      `fallbacks to local buckets: ${global.fallbacks}`,
      '',
    );
  }
  if (telemetry) lines.push(...telemetrySummary(telemetry));
  if (primary) for (const v of verdicts(by, primary.ratios)) lines.push(`${mark(v)} ${v.label}: ${v.value}`);
  const gv = global ? compareGlobal(global) : null;
  if (gv) lines.push(`${mark(gv.verdict)} ${gv.verdict.label}: ${gv.verdict.value}`);
  const foreign = Math.max(0, ...whole.map((s) => s.foreignMax), global?.global?.foreignMax ?? 0);
  lines.push(
    foreign > FOREIGN_CPU_LIMIT_PCT
      ? `⚠️  other processes used up to ${foreign.toFixed(0)} % of a core during measurement: noisy run`
      : `machine quiet (foreign CPU ≤ ${foreign.toFixed(1)} % of a core)`,
  );
  return lines.join('\n');
}
