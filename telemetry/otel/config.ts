/**
 * OpenTelemetry configuration from the standard `OTEL_*` environment variables
 * (and the pod identity the sidecar injector passes through the downward
 * API), parsed once into a frozen object; every problem listed together.
 *
 * Off unless an OTLP endpoint is given (`OTEL_EXPORTER_OTLP_ENDPOINT` or a
 * per-signal `OTEL_EXPORTER_OTLP_{TRACES,METRICS,LOGS}_ENDPOINT`), or
 * `OTEL_SDK_DISABLED=true`. The exporters read the endpoint, headers, timeout,
 * compression and certificates themselves, from the same variables.
 */

export type Env = Readonly<Record<string, string | undefined>>;

export type OtlpProtocol = 'grpc' | 'http/protobuf' | 'http/json';

export type SamplerName =
  | 'always_on'
  | 'always_off'
  | 'traceidratio'
  | 'parentbased_always_on'
  | 'parentbased_always_off'
  | 'parentbased_traceidratio';

export interface BatchConfig {
  scheduledDelayMillis: number;
  exportTimeoutMillis: number;
  maxQueueSize: number;
  maxExportBatchSize: number;
}

export interface OtelConfig {
  /** OTLP protocol per signal; null: the signal is not exported. */
  traces: OtlpProtocol | null;
  metrics: OtlpProtocol | null;
  logs: OtlpProtocol | null;
  sampler: SamplerName;
  /** The ratio of the `*traceidratio` samplers (default 1). */
  samplerRatio: number;
  /** `OTEL_BSP_*` (span batches). */
  spans: BatchConfig;
  /** `OTEL_BLRP_*` (log record batches). */
  logRecords: BatchConfig;
  metricIntervalMillis: number;
  metricTimeoutMillis: number;
  /** Resource attributes: service.name, k8s.*, then OTEL_RESOURCE_ATTRIBUTES, then OTEL_SERVICE_NAME. */
  resource: Readonly<Record<string, string>>;
}

export class OtelConfigError extends Error {
  readonly code = 'ERR_CONFIG_INVALID';
  readonly problems: string[];
  constructor(problems: string[]) {
    super(problems.join('; '));
    this.problems = problems;
  }
}

/** Downward-API variables the injector sets → Kubernetes resource attributes. */
export const POD_ENV: Readonly<Record<string, string>> = {
  POD_NAME: 'k8s.pod.name',
  POD_NAMESPACE: 'k8s.namespace.name',
  POD_UID: 'k8s.pod.uid',
  NODE_NAME: 'k8s.node.name',
};

/** The OTLP protocols of `OTEL_EXPORTER_OTLP_PROTOCOL` (also what the operator's injector accepts). */
export const OTLP_PROTOCOLS: readonly OtlpProtocol[] = ['grpc', 'http/protobuf', 'http/json'];
const SAMPLERS: readonly SamplerName[] = [
  'always_on',
  'always_off',
  'traceidratio',
  'parentbased_always_on',
  'parentbased_always_off',
  'parentbased_traceidratio',
];
const SIGNALS = ['TRACES', 'METRICS', 'LOGS'] as const;

function value(env: Env, name: string): string | undefined {
  const v = env[name]?.trim();
  return v === undefined || v === '' ? undefined : v;
}

function integer(env: Env, name: string, fallback: number, problems: string[]): number {
  const text = value(env, name);
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1) {
    problems.push(`${name}: expected a positive integer, got ${JSON.stringify(text)}`);
    return fallback;
  }
  return n;
}

function batch(env: Env, prefix: string, delay: number, problems: string[]): BatchConfig {
  const config = {
    scheduledDelayMillis: integer(env, `${prefix}_SCHEDULE_DELAY`, delay, problems),
    exportTimeoutMillis: integer(env, `${prefix}_EXPORT_TIMEOUT`, 30_000, problems),
    maxQueueSize: integer(env, `${prefix}_MAX_QUEUE_SIZE`, 2048, problems),
    maxExportBatchSize: integer(env, `${prefix}_MAX_EXPORT_BATCH_SIZE`, 512, problems),
  };
  if (config.maxExportBatchSize > config.maxQueueSize)
    problems.push(`${prefix}_MAX_EXPORT_BATCH_SIZE must not exceed ${prefix}_MAX_QUEUE_SIZE`);
  return config;
}

/** `OTEL_RESOURCE_ATTRIBUTES`: `k=v,k2=v2`, values percent-decoded. */
export function parseResourceAttributes(text: string, problems: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of text.split(',')) {
    if (pair.trim() === '') continue;
    const i = pair.indexOf('=');
    const key = i < 0 ? '' : pair.slice(0, i).trim();
    if (key === '') {
      problems.push(`OTEL_RESOURCE_ATTRIBUTES: expected key=value, got ${JSON.stringify(pair)}`);
      continue;
    }
    try {
      out[decodeURIComponent(key)] = decodeURIComponent(pair.slice(i + 1).trim());
    } catch {
      problems.push(`OTEL_RESOURCE_ATTRIBUTES: bad percent-encoding in ${JSON.stringify(pair)}`);
    }
  }
  return out;
}

/** The signal's protocol, or null when it is not exported. */
function signal(
  env: Env,
  name: (typeof SIGNALS)[number],
  anyEndpoint: boolean,
  problems: string[],
): OtlpProtocol | null {
  const variable = `OTEL_${name}_EXPORTER`;
  const exporters = (value(env, variable) ?? 'otlp').split(',').map((e) => e.trim());
  for (const e of exporters) {
    // Prometheus is always served on the admin port: it needs no push exporter.
    const known = ['otlp', 'none', ...(name === 'METRICS' ? ['prometheus'] : [])];
    if (!known.includes(e)) problems.push(`${variable}: ${JSON.stringify(e)} is not supported (otlp | none)`);
  }
  const endpoint = anyEndpoint || value(env, `OTEL_EXPORTER_OTLP_${name}_ENDPOINT`) !== undefined;
  if (!exporters.includes('otlp') || !endpoint) return null;
  const variableP = `OTEL_EXPORTER_OTLP_${name}_PROTOCOL`;
  const protocol = value(env, variableP) ?? value(env, 'OTEL_EXPORTER_OTLP_PROTOCOL') ?? 'http/protobuf';
  if (!OTLP_PROTOCOLS.includes(protocol as OtlpProtocol)) {
    problems.push(
      `${value(env, variableP) ? variableP : 'OTEL_EXPORTER_OTLP_PROTOCOL'}: grpc | http/protobuf | http/json`,
    );
    return null;
  }
  return protocol as OtlpProtocol;
}

/**
 * The configuration, or null when OpenTelemetry is off. Throws OtelConfigError
 * listing every problem. `serviceName` is the default `service.name`.
 */
export function readOtelConfig(env: Env, serviceName: string): OtelConfig | null {
  if (value(env, 'OTEL_SDK_DISABLED')?.toLowerCase() === 'true') return null;
  const problems: string[] = [];
  const anyEndpoint = value(env, 'OTEL_EXPORTER_OTLP_ENDPOINT') !== undefined;
  const traces = signal(env, 'TRACES', anyEndpoint, problems);
  const metrics = signal(env, 'METRICS', anyEndpoint, problems);
  const logs = signal(env, 'LOGS', anyEndpoint, problems);
  const sampler = value(env, 'OTEL_TRACES_SAMPLER') ?? 'parentbased_always_on';
  if (!SAMPLERS.includes(sampler as SamplerName))
    problems.push(`OTEL_TRACES_SAMPLER: one of ${SAMPLERS.join(', ')}`);
  const ratioText = value(env, 'OTEL_TRACES_SAMPLER_ARG');
  const ratio = ratioText === undefined ? 1 : Number(ratioText);
  if (sampler.endsWith('traceidratio') && !(ratio >= 0 && ratio <= 1))
    problems.push(`OTEL_TRACES_SAMPLER_ARG: a ratio from 0 to 1, got ${JSON.stringify(ratioText)}`);
  for (const p of (value(env, 'OTEL_PROPAGATORS') ?? 'tracecontext').split(',').map((s) => s.trim()))
    if (!['tracecontext', 'baggage', 'none'].includes(p))
      problems.push(`OTEL_PROPAGATORS: ${JSON.stringify(p)} is not supported (tracecontext, baggage)`);
  const resource: Record<string, string> = { 'service.name': serviceName };
  for (const [variable, attribute] of Object.entries(POD_ENV)) {
    const v = value(env, variable);
    if (v !== undefined) resource[attribute] = v;
  }
  Object.assign(resource, parseResourceAttributes(env.OTEL_RESOURCE_ATTRIBUTES ?? '', problems));
  const service = value(env, 'OTEL_SERVICE_NAME');
  if (service !== undefined) resource['service.name'] = service;
  const config: OtelConfig = {
    traces,
    metrics,
    logs,
    sampler: sampler as SamplerName,
    samplerRatio: Number.isFinite(ratio) ? ratio : 1,
    spans: batch(env, 'OTEL_BSP', 5_000, problems),
    logRecords: batch(env, 'OTEL_BLRP', 1_000, problems),
    metricIntervalMillis: integer(env, 'OTEL_METRIC_EXPORT_INTERVAL', 60_000, problems),
    metricTimeoutMillis: integer(env, 'OTEL_METRIC_EXPORT_TIMEOUT', 30_000, problems),
    resource: Object.freeze(resource),
  };
  if (problems.length > 0) throw new OtelConfigError([...new Set(problems)]);
  if (!traces && !metrics && !logs) return null;
  Object.freeze(config.spans);
  Object.freeze(config.logRecords);
  return Object.freeze(config);
}
