/**
 * The OpenTelemetry SDK of one process, set up once by the CLI wiring (never
 * at import time) from an OtelConfig: a tracer provider (batch span
 * processor, the configured sampler), a meter provider whose reader exports
 * the metrics registries, and a logger provider (batch log record processor),
 * each with its OTLP exporter for the configured protocol (loaded only for
 * that protocol). Nothing is registered globally: the providers are handed to
 * whoever publishes telemetry. SDK errors (an unreachable collector) go to the
 * injected logger, rate-limited.
 */
import { DiagLogLevel, diag, type Logger as OtelLogger, type Tracer } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchLogRecordProcessor, LoggerProvider, type LogRecordExporter } from '@opentelemetry/sdk-logs';
import {
  MeterProvider,
  PeriodicExportingMetricReader,
  type PushMetricExporter,
} from '@opentelemetry/sdk-metrics';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  ParentBasedSampler,
  type Sampler,
  type SpanExporter,
  TraceIdRatioBasedSampler,
  TracerProvider,
} from '@opentelemetry/sdk-trace';
import type { Metrics } from '../metrics.ts';
import type { OtelConfig, OtlpProtocol } from './config.ts';
import { registryProducer } from './metric-producer.ts';

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

/** The running SDK: null members are signals that are not exported. */
export interface Otel {
  readonly tracer: Tracer | null;
  readonly logger: OtelLogger | null;
  readonly config: OtelConfig;
  /** Exports what is buffered (spans, log records, a metric collection). */
  forceFlush(): Promise<void>;
  /** Flushes and stops every provider (at most `timeoutMs`). */
  shutdown(timeoutMs?: number): Promise<void>;
}

async function spanExporter(protocol: OtlpProtocol): Promise<SpanExporter> {
  if (protocol === 'grpc')
    return new (await import('@opentelemetry/exporter-trace-otlp-grpc')).OTLPTraceExporter();
  if (protocol === 'http/json')
    return new (await import('@opentelemetry/exporter-trace-otlp-http')).OTLPTraceExporter();
  return new (await import('@opentelemetry/exporter-trace-otlp-proto')).OTLPTraceExporter();
}

async function metricExporter(protocol: OtlpProtocol): Promise<PushMetricExporter> {
  if (protocol === 'grpc')
    return new (await import('@opentelemetry/exporter-metrics-otlp-grpc')).OTLPMetricExporter();
  if (protocol === 'http/json')
    return new (await import('@opentelemetry/exporter-metrics-otlp-http')).OTLPMetricExporter();
  return new (await import('@opentelemetry/exporter-metrics-otlp-proto')).OTLPMetricExporter();
}

async function logExporter(protocol: OtlpProtocol): Promise<LogRecordExporter> {
  if (protocol === 'grpc')
    return new (await import('@opentelemetry/exporter-logs-otlp-grpc')).OTLPLogExporter();
  if (protocol === 'http/json')
    return new (await import('@opentelemetry/exporter-logs-otlp-http')).OTLPLogExporter();
  return new (await import('@opentelemetry/exporter-logs-otlp-proto')).OTLPLogExporter();
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

/** Starts the SDK for `config` (the signals it exports). */
export async function startOtel(config: OtelConfig, options: OtelOptions): Promise<Otel> {
  const now = options.now ?? Date.now;
  routeDiagnostics(options.logger, now);
  const resource = resourceFromAttributes({ 'service.version': options.version, ...config.resource });
  const scope = options.scope;
  let tracerProvider: TracerProvider | null = null;
  let meterProvider: MeterProvider | null = null;
  let loggerProvider: LoggerProvider | null = null;
  if (config.traces) {
    const exporter = await spanExporter(config.traces);
    tracerProvider = new TracerProvider({
      resource,
      sampler: samplerOf(config),
      spanProcessors: [new BatchSpanProcessor({ exporter, ...config.spans })],
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
        registryProducer(r, { scope, version: options.version, startTime, now }),
      ),
    });
    meterProvider = new MeterProvider({ resource, readers: [reader] });
  }
  if (config.logs) {
    const exporter = await logExporter(config.logs);
    loggerProvider = new LoggerProvider({
      resource,
      processors: [new BatchLogRecordProcessor({ exporter, ...config.logRecords })],
    });
  }
  const providers = [tracerProvider, meterProvider, loggerProvider].filter((p) => p !== null);
  return {
    tracer: tracerProvider?.getTracer(scope, options.version) ?? null,
    logger: loggerProvider?.getLogger(scope, options.version) ?? null,
    config,
    async forceFlush() {
      await Promise.all(providers.map((p) => p.forceFlush()));
    },
    async shutdown(timeoutMs = 5_000) {
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, timeoutMs);
      });
      await Promise.race([Promise.allSettled(providers.map((p) => p.shutdown())), deadline]);
      clearTimeout(timer);
    },
  };
}
