/**
 * The bench's telemetry case: a second agent with the default telemetry of
 * OTLP on (JSON access log, OTLP traces of every request, metrics and security
 * log records, to a local sink) measured on the get case's request, against the get case's
 * agent (telemetry off) of the same run: the overhead as ratios, and the
 * data-plane targets judged for both.
 */
import {
  type CaseInfo,
  f,
  fmtRatio,
  latencyTable,
  type Meta,
  mark,
  maxTable,
  ratios,
  type Summary,
  signed,
  table,
  verdicts,
} from './report.ts';

/** Exports the sink received, by signal. */
export type SinkStats = Record<string, { requests: number; bytes: number }>;

export interface TelemetryReport {
  info: CaseInfo;
  /** Why the case was not measured, or null. */
  skipped: string | null;
  /** The telemetry-on agent on the get route, or null when skipped. */
  on: Summary | null;
  /** The get case's agents of the same run (telemetry off), for ratios and verdicts. */
  off: Summary | null;
  direct: Summary | null;
  baseline: Summary | null;
  /** What the sink received over the whole run (warm-up included). */
  sink: SinkStats;
  /** The sink's CPU % of one core while the telemetry-on agent was measured (NaN when not sampled). */
  sinkCpuAtRate: number;
  sinkCpuAtMax: number;
  /** The OTEL_* environment and flags of the telemetry-on agent, as shown. */
  setup: string;
}

export interface TelemetryComparison {
  /** on / off max throughput. */
  rpsRatio: number;
  /** on / off CPU µs per request at the fixed rate. */
  cpuRatio: number;
  /** CPU µs per request at maximum throughput (process CPU / req/s), on and off, and their ratio. */
  cpuUsAtMaxOn: number;
  cpuUsAtMaxOff: number;
  cpuAtMaxRatio: number;
  p50: number;
  p90: number;
  p99: number;
}

export function compareTelemetry(t: TelemetryReport): TelemetryComparison | null {
  const { on, off } = t;
  if (!on || !off) return null;
  const usAtMax = (s: Summary) => (s.cpuAtMax * 10_000) / s.rps;
  return {
    rpsRatio: on.rps / off.rps,
    cpuRatio: on.cpuUsPerReq / off.cpuUsPerReq,
    cpuUsAtMaxOn: usAtMax(on),
    cpuUsAtMaxOff: usAtMax(off),
    cpuAtMaxRatio: usAtMax(on) / usAtMax(off),
    p50: on.p50 - off.p50,
    p90: on.p90 - off.p90,
    p99: on.p99 - off.p99,
  };
}

function withName(s: Summary, name: string): Summary {
  return { ...s, name: name as Summary['name'] };
}

export function telemetrySection(t: TelemetryReport, meta: Meta): string[] {
  const out: string[] = [`## telemetry: ${t.info.title}`, ''];
  out.push(
    `Request: ${t.info.request}. ${t.info.route}. ${t.info.rounds} round${t.info.rounds === 1 ? '' : 's'}, ` +
      'same durations and connections; the telemetry-off figures are the **get** case of the same run.',
    '',
    `Telemetry-on agent: ${t.setup}.`,
    '',
  );
  if (t.skipped) {
    out.push(`> ⚠️ **Skipped**: ${t.skipped}.`, '');
    return out;
  }
  const c = compareTelemetry(t);
  const rows = [
    ...(t.off ? [withName(t.off, 'tollgate, telemetry off')] : []),
    ...(t.on ? [withName(t.on, 'tollgate, telemetry on')] : []),
  ];
  out.push(`### Latency at ${meta.rate} req/s`, '', latencyTable(rows), '');
  out.push('### Maximum throughput', '', maxTable(rows), '');
  const sink = Object.entries(t.sink)
    .map(([signal, s]) => `${signal}: ${s.requests} exports, ${(s.bytes / 1024 / 1024).toFixed(1)} MiB`)
    .join('; ');
  out.push(
    '### Telemetry on vs off (same run)',
    '',
    table(
      ['', 'value'],
      [
        ['throughput on / off', c ? fmtRatio(c.rpsRatio) : 'n/a (no get case)'],
        [`CPU µs/req at ${meta.rate} req/s, on / off`, c ? fmtRatio(c.cpuRatio) : 'n/a'],
        [
          'CPU µs/req at maximum throughput (process CPU / req/s), on / off',
          c ? `${fmtRatio(c.cpuAtMaxRatio)} (${f(c.cpuUsAtMaxOn, 0)} vs ${f(c.cpuUsAtMaxOff, 0)} µs)` : 'n/a',
        ],
        [
          `added latency at ${meta.rate} req/s`,
          c ? `+p50 ${signed(c.p50, 3)} ms, +p90 ${signed(c.p90, 3)} ms, +p99 ${signed(c.p99, 3)} ms` : 'n/a',
        ],
        [
          'RSS idle / peak MiB, on vs off',
          t.on && t.off
            ? `${f(t.on.rssIdle)} / ${f(t.on.rssPeak)} vs ${f(t.off.rssIdle)} / ${f(t.off.rssPeak)}`
            : 'n/a',
        ],
        [
          'foreign CPU % of one core (max window; other processes than the bench), off / on',
          t.on && t.off ? `${f(t.off.foreignMax)} / ${f(t.on.foreignMax)}` : 'n/a',
        ],
        ['received by the OTLP sink (whole run)', sink || 'nothing'],
        [
          'otlp-sink CPU % (of one core; pinned to CPU 0 with the load generators, the agent and the upstream on CPU 1)',
          `${f(t.sinkCpuAtRate)} at ${meta.rate} req/s, ${f(t.sinkCpuAtMax)} at maximum throughput`,
        ],
      ],
    ),
    '',
  );
  out.push(
    'Per request the telemetry-on agent samples a trace at accept (the client `traceparent` parsed, a new ' +
      'one for the app) and, when the response closes, encodes its span (~17 attributes, set once) to ' +
      'protobuf right into the batch being filled (no SDK span objects; a batch of 512 leaves at once, at ' +
      '1000 req/s one every ~0.5 s, sent over HTTP), and builds a JSON access line in one reused buffer ' +
      "(pino's exact format); the stdout lines of one event-loop turn go out in one write (and on exit). " +
      'Security events (none in the measured traffic) are OTLP log records; access lines become log records ' +
      'too only with `--access-log-otlp on` (a second encoded record per request). Sampling ' +
      '(`OTEL_TRACES_SAMPLER=parentbased_traceidratio`) scales the span cost down; with no `OTEL_*` the SDK ' +
      "is not even loaded (the **get** case's agent). The rounds of the two agents alternate (get round 1, " +
      'telemetry round 1, telemetry round 2, get round 2, ...), so a drift of the machine hits both alike. ' +
      'On a machine shared with other work (foreign CPU below), the CPU µs per request (at the fixed rate, ' +
      'and at maximum throughput: process CPU / req/s) says more than req/s, which also depends on how much ' +
      'of CPU 1 the agent got.',
    '',
  );
  if (t.on && t.direct) {
    const on = verdicts(
      { direct: t.direct, ...(t.baseline ? { baseline: t.baseline } : {}), tollgate: t.on },
      ratios({ direct: t.direct, ...(t.baseline ? { baseline: t.baseline } : {}), tollgate: t.on }),
    );
    const off = t.off
      ? verdicts(
          { direct: t.direct, ...(t.baseline ? { baseline: t.baseline } : {}), tollgate: t.off },
          ratios({ direct: t.direct, ...(t.baseline ? { baseline: t.baseline } : {}), tollgate: t.off }),
        )
      : [];
    out.push(
      '### Data-plane targets, telemetry on and off',
      '',
      table(
        ['target', 'telemetry on', '', 'telemetry off', ''],
        on.map((v, i) => {
          const o = off[i];
          return [v.label, v.value, mark(v), o?.value ?? 'n/a', o ? mark(o) : '—'];
        }),
      ),
      '',
      'RSS rows are the process that served this case (the telemetry-on agent serves only it; the off agent ' +
        'serves every case, so its peak is over all of them).',
      '',
    );
  }
  return out;
}

export function telemetrySummary(t: TelemetryReport): string[] {
  if (t.skipped) return [`[telemetry] SKIPPED: ${t.skipped}`, ''];
  const c = compareTelemetry(t);
  const on = t.on;
  if (!on) return [];
  return [
    `[telemetry] ${t.info.title}`,
    `tollgate+otel ${f(on.rps, 0)} req/s | @rate p50 ${f(on.p50, 3)}  p90 ${f(on.p90, 3)}  p99 ${f(on.p99, 3)} ms | CPU µs/req ${f(on.cpuUsPerReq, 0)}`,
    c
      ? `vs off (get): throughput ${fmtRatio(c.rpsRatio)}, CPU/req ${fmtRatio(c.cpuRatio)}, CPU/req at max ${fmtRatio(c.cpuAtMaxRatio)}, +p50 ${signed(c.p50, 3)} ms, +p99 ${signed(c.p99, 3)} ms`
      : 'vs off: n/a (no get case in this run)',
    `sink: ${Object.entries(t.sink)
      .map(([k, s]) => `${k} ${s.requests}`)
      .join(', ')}`,
    '',
  ];
}
