/**
 * The OpenTelemetry export of one process, set up once by the CLI wiring
 * (never at import time) from an OtelConfig: the configured sampler, an
 * export queue per exported signal for spans and log records (records are
 * encoded to OTLP as they are added, batched like the SDK's batch processors,
 * and sent by the SDK's OTLP transport for the configured protocol, loaded
 * only for that protocol), and a meter provider whose reader exports the
 * metrics registries. Nothing is registered globally: the queues are handed
 * to whoever publishes telemetry. Export errors (an unreachable collector) go
 * to the injected logger, rate-limited.
 */
import { DiagLogLevel, diag } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  MeterProvider,
  PeriodicExportingMetricReader,
  type PushMetricExporter,
} from '@opentelemetry/sdk-metrics';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  ParentBasedSampler,
  type Sampler,
  TraceIdRatioBasedSampler,
} from '@opentelemetry/sdk-trace';
import type { Metrics } from '../metrics.ts';
import type { OtelConfig, OtlpProtocol } from './config.ts';
import { type BatchExporter, ExportQueue } from './export-queue.ts';
import { registryProducer } from './metric-producer.ts';
import {
  type Attributes,
  decodeExportResponse,
  type EncodedBatch,
  type InstrumentationScope,
  jsonLogs,
  jsonSpans,
  type LogData,
  protobufLogs,
  protobufSpans,
  type SpanData,
} from './otlp-encoding.ts';

export interface OtelLogSink {
  warn(fields: object, msg: string): void;
}

export interface OtelOptions {
  /** Instrumentation scope of the spans, metrics and log records (`tollgate-agent`, `tollgate-operator`). */
  scope: string;
  version: string;
  /** Registries exported as metrics (the agent's or operator's). */
  registries: readonly Metrics[];
  logger: OtelLogSink;
  /** Wall clock, epoch ms. Default Date.now. */
  now?: () => number;
}

/** The running export: null members are signals that are not exported. */
export interface Otel {
  /** Spans to export (sampled ones only: the publisher asks `sampler`). */
  readonly spans: ExportQueue<SpanData> | null;
  readonly logs: ExportQueue<LogData> | null;
  /** `OTEL_TRACES_SAMPLER`'s sampler. */
  readonly sampler: Sampler;
  readonly config: OtelConfig;
  /** Exports what is buffered (spans, log records, a metric collection). */
  forceFlush(): Promise<void>;
  /** Flushes and stops every exporter (at most `timeoutMs`). */
  shutdown(timeoutMs?: number): Promise<void>;
}

type Signal = 'TRACES' | 'LOGS';

const SIGNALS: Record<Signal, { path: string; item: 'span' | 'log'; grpcName: string; grpcPath: string }> = {
  TRACES: {
    path: 'v1/traces',
    item: 'span',
    grpcName: 'TraceExportService',
    grpcPath: '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
  },
  LOGS: {
    path: 'v1/logs',
    item: 'log',
    grpcName: 'LogsExportService',
    grpcPath: '/opentelemetry.proto.collector.logs.v1.LogsService/Export',
  },
};

/**
 * The SDK's OTLP transport for `protocol` (endpoint, headers, timeout,
 * compression, certificates and retries from the OTEL_EXPORTER_OTLP_*
 * variables, as its own exporters read them), sending already encoded batches.
 */
async function batchExporter(signal: Signal, protocol: OtlpProtocol): Promise<BatchExporter> {
  const s = SIGNALS[signal];
  const json = protocol === 'http/json';
  const serializer = {
    serializeRequest: (batch: EncodedBatch) => batch.payload,
    deserializeResponse: (data: Uint8Array) => decodeExportResponse(data, json),
  };
  const helper = { name: s.item, countItems: (batch: EncodedBatch) => batch.count };
  if (protocol === 'grpc') {
    const grpc = await import('@opentelemetry/otlp-grpc-exporter-base');
    return grpc.createOtlpGrpcExportDelegate(
      grpc.convertLegacyOtlpGrpcOptions({}, signal),
      serializer,
      `otlp_grpc_${s.item}_exporter`,
      helper,
      undefined,
      s.grpcName,
      s.grpcPath,
    );
  }
  const http = await import('@opentelemetry/otlp-exporter-base/node-http');
  return http.createOtlpHttpExportDelegate(
    http.convertLegacyHttpOptions({}, signal, s.path, {
      'Content-Type': json ? 'application/json' : 'application/x-protobuf',
    }),
    serializer,
    `otlp_http_${s.item}_exporter`,
    helper,
    undefined,
  );
}

async function metricExporter(protocol: OtlpProtocol): Promise<PushMetricExporter> {
  if (protocol === 'grpc')
    return new (await import('@opentelemetry/exporter-metrics-otlp-grpc')).OTLPMetricExporter();
  if (protocol === 'http/json')
    return new (await import('@opentelemetry/exporter-metrics-otlp-http')).OTLPMetricExporter();
  return new (await import('@opentelemetry/exporter-metrics-otlp-proto')).OTLPMetricExporter();
}

export function samplerOf(config: Pick<OtelConfig, 'sampler' | 'samplerRatio'>): Sampler {
  const ratio = new TraceIdRatioBasedSampler(config.samplerRatio);
  switch (config.sampler) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return ratio;
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: ratio });
    case 'parentbased_always_on':
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
  }
}

/** SDK diagnostics (failed exports) as warn lines, at most one per `everyMs` per message. */
function routeDiagnostics(sink: OtelLogSink, now: () => number, everyMs = 30_000): void {
  const last = new Map<string, number>();
  const warn = (message: string, ...args: unknown[]) => {
    const t = now();
    if ((last.get(message) ?? -Infinity) > t - everyMs) return;
    last.set(message, t);
    sink.warn({ detail: args.map(String).join(' ').slice(0, 500) }, `telemetry: ${message}`.slice(0, 200));
  };
  const ignore = () => {};
  diag.setLogger(
    { error: warn, warn, info: ignore, debug: ignore, verbose: ignore },
    { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true },
  );
}

/** Starts the export for `config` (the signals it exports). */
export async function startOtel(config: OtelConfig, options: OtelOptions): Promise<Otel> {
  const now = options.now ?? Date.now;
  routeDiagnostics(options.logger, now);
  const resource = resourceFromAttributes({ 'service.version': options.version, ...config.resource });
  const resourceAttributes = resource.attributes as Attributes;
  const scope: InstrumentationScope = { name: options.scope, version: options.version };
  // Failed exports and full queues: warn lines, rate-limited per message (routeDiagnostics).
  const onError = (message: string, detail: string) => diag.error(message, detail);
  let spans: ExportQueue<SpanData> | null = null;
  let logs: ExportQueue<LogData> | null = null;
  let meterProvider: MeterProvider | null = null;
  if (config.traces) {
    const encoding =
      config.traces === 'http/json'
        ? jsonSpans(resourceAttributes, scope)
        : protobufSpans(resourceAttributes, scope);
    spans = new ExportQueue(encoding, await batchExporter('TRACES', config.traces), config.spans, {
      what: 'spans',
      onError,
    });
  }
  if (config.metrics && options.registries.length > 0) {
    const exporter = await metricExporter(config.metrics);
    const startTime = now();
    const reader = new PeriodicExportingMetricReader({
      exporter,
      exportIntervalMillis: config.metricIntervalMillis,
      exportTimeoutMillis: Math.min(config.metricTimeoutMillis, config.metricIntervalMillis),
      metricProducers: options.registries.map((r) =>
        registryProducer(r, { scope: options.scope, version: options.version, startTime, now }),
      ),
    });
    meterProvider = new MeterProvider({ resource, readers: [reader] });
  }
  if (config.logs) {
    const encoding =
      config.logs === 'http/json'
        ? jsonLogs(resourceAttributes, scope)
        : protobufLogs(resourceAttributes, scope);
    logs = new ExportQueue(encoding, await batchExporter('LOGS', config.logs), config.logRecords, {
      what: 'log records',
      onError,
    });
  }
  const parts = [spans, meterProvider, logs].filter((p) => p !== null);
  return {
    spans,
    logs,
    sampler: samplerOf(config),
    config,
    async forceFlush() {
      await Promise.all(parts.map((p) => p.forceFlush()));
    },
    async shutdown(timeoutMs = 5_000) {
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, timeoutMs);
      });
      await Promise.race([Promise.allSettled(parts.map((p) => p.shutdown())), deadline]);
      clearTimeout(timer);
    },
  };
}
