/**
 * The metrics registry (telemetry/metrics.ts) as an OpenTelemetry
 * MetricProducer: the series /metrics shows, exported by a metric reader over
 * OTLP as they are (cumulative sums, gauges, explicit-bucket histograms), with
 * no instrument on the hot path. Loaded only when OTLP is configured.
 */
import { type HrTime, ValueType } from '@opentelemetry/api';
import { millisToHrTime } from '@opentelemetry/core';
import { emptyResource } from '@opentelemetry/resources';
import {
  AggregationTemporality,
  type CollectionResult,
  DataPointType,
  type MetricData,
  type MetricProducer,
} from '@opentelemetry/sdk-metrics';
import type { FamilyView, Metrics } from '../metrics.ts';

export interface RegistryProducerOptions {
  /** Instrumentation scope name (e.g. `tollgate-agent`). */
  scope: string;
  version?: string;
  /** Epoch ms of the start of every cumulative series. Default: when the producer is made. */
  startTime?: number;
  /** Wall clock, epoch ms. Default Date.now. */
  now?: () => number;
}

function familyData(f: FamilyView, start: HrTime, end: HrTime): MetricData | null {
  const descriptor = { name: f.otelName, description: f.help, unit: f.unit, valueType: ValueType.DOUBLE };
  if (f.type === 'histogram') {
    if (f.histograms.length === 0) return null;
    return {
      descriptor,
      aggregationTemporality: AggregationTemporality.CUMULATIVE,
      dataPointType: DataPointType.HISTOGRAM,
      dataPoints: f.histograms.map((h) => ({
        startTime: start,
        endTime: end,
        attributes: { ...h.labels },
        value: {
          buckets: { boundaries: [...h.bounds], counts: [...h.counts] },
          sum: h.sum,
          count: h.count,
        },
      })),
    };
  }
  if (f.scalars.length === 0) return null;
  const dataPoints = f.scalars.map((s) => ({
    startTime: start,
    endTime: end,
    attributes: { ...s.labels },
    value: s.value,
  }));
  if (f.type === 'counter')
    return {
      descriptor,
      aggregationTemporality: AggregationTemporality.CUMULATIVE,
      dataPointType: DataPointType.SUM,
      isMonotonic: true,
      dataPoints,
    };
  return {
    descriptor,
    aggregationTemporality: AggregationTemporality.CUMULATIVE,
    dataPointType: DataPointType.GAUGE,
    dataPoints,
  };
}

/** A MetricProducer reading `registry` at each collection. */
export function registryProducer(registry: Metrics, options: RegistryProducerOptions): MetricProducer {
  const now = options.now ?? Date.now;
  const start = millisToHrTime(options.startTime ?? now());
  const scope = { name: options.scope, ...(options.version ? { version: options.version } : {}) };
  return {
    async collect(): Promise<CollectionResult> {
      const end = millisToHrTime(now());
      const metrics: MetricData[] = [];
      for (const f of registry.families()) {
        const data = familyData(f, start, end);
        if (data) metrics.push(data);
      }
      return {
        resourceMetrics: { resource: emptyResource(), scopeMetrics: [{ scope, metrics }] },
        errors: [],
      };
    },
  };
}
