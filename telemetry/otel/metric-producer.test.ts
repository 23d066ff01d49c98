import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  AggregationTemporality,
  DataPointType,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import { Metrics } from '../metrics.ts';
import { registryProducer } from './metric-producer.ts';
import { samplerOf } from './sdk.ts';

function registry(): Metrics {
  const m = new Metrics();
  m.inc('tollgate_requests_total', { route: 'get', decision: 'allow' }, 3, 'Requests');
  m.set('tollgate_ratelimit_store_up', {}, 1, 'Store up');
  m.gauge('tollgate_policy_bundle_age_seconds', {}, () => 42, 'Bundle age');
  const h = m.histogram('http_server_request_duration_seconds', { 'http.route': '/a' }, [0.1, 1], {
    otelName: 'http.server.request.duration',
    help: 'Duration',
  });
  h.observe(0.05);
  h.observe(2);
  m.declare('tollgate_empty_total', 'counter', 'declared');
  return m;
}

describe('registryProducer: the registry as OTLP metric data', () => {
  test('counters are monotonic cumulative sums, gauges gauges, histograms explicit buckets', async () => {
    const clock = { ms: 1_000_000 };
    const producer = registryProducer(registry(), {
      scope: 'tollgate-agent',
      version: '1.2.3',
      now: () => clock.ms,
    });
    clock.ms += 5000;
    const { resourceMetrics, errors } = await producer.collect();
    assert.deepEqual(errors, []);
    const [scope] = resourceMetrics.scopeMetrics;
    assert.deepEqual(scope?.scope, { name: 'tollgate-agent', version: '1.2.3' });
    const byName = new Map(scope?.metrics.map((m) => [m.descriptor.name, m]));
    const requests = byName.get('tollgate.requests');
    assert.equal(requests?.dataPointType, DataPointType.SUM);
    assert.equal(requests?.aggregationTemporality, AggregationTemporality.CUMULATIVE);
    assert.equal(requests?.dataPointType === DataPointType.SUM && requests.isMonotonic, true);
    assert.deepEqual(requests?.dataPoints[0]?.attributes, { route: 'get', decision: 'allow' });
    assert.equal(requests?.dataPoints[0]?.value, 3);
    assert.deepEqual(requests?.dataPoints[0]?.startTime, [1000, 0]);
    assert.deepEqual(requests?.dataPoints[0]?.endTime, [1005, 0]);
    assert.equal(requests?.descriptor.description, 'Requests');
    assert.equal(byName.get('tollgate.ratelimit.store.up')?.dataPointType, DataPointType.GAUGE);
    assert.equal(byName.get('tollgate.policy.bundle.age')?.dataPoints[0]?.value, 42);
    assert.equal(byName.get('tollgate.policy.bundle.age')?.descriptor.unit, 's');
    const duration = byName.get('http.server.request.duration');
    assert.equal(duration?.dataPointType, DataPointType.HISTOGRAM);
    assert.deepEqual(duration?.dataPoints[0]?.value, {
      buckets: { boundaries: [0.1, 1], counts: [1, 0, 1] },
      sum: 2.05,
      count: 2,
    });
    assert.equal(byName.get('tollgate.empty')?.dataPoints[0]?.value, 0);
  });

  test('exported by a real PeriodicExportingMetricReader beside the SDK’s own (empty) producer', async () => {
    const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
    const reader = new PeriodicExportingMetricReader({
      exporter,
      exportIntervalMillis: 60_000,
      metricProducers: [registryProducer(registry(), { scope: 'tollgate-agent' })],
    });
    const provider = new MeterProvider({ readers: [reader] });
    await provider.forceFlush();
    const names = exporter
      .getMetrics()
      .flatMap((rm) => rm.scopeMetrics.flatMap((s) => s.metrics.map((m) => m.descriptor.name)));
    assert.ok(names.includes('http.server.request.duration'), names.join());
    assert.ok(names.includes('tollgate.requests'));
    await provider.shutdown();
  });
});

describe('samplerOf: OTEL_TRACES_SAMPLER names', () => {
  const cases: [name: Parameters<typeof samplerOf>[0]['sampler'], text: RegExp][] = [
    ['always_on', /AlwaysOn/],
    ['always_off', /AlwaysOff/],
    ['traceidratio', /TraceIdRatioBased\{0.5\}/],
    ['parentbased_always_on', /ParentBased\{root=AlwaysOnSampler/],
    ['parentbased_always_off', /ParentBased\{root=AlwaysOffSampler/],
    ['parentbased_traceidratio', /ParentBased\{root=TraceIdRatioBased\{0.5\}/],
  ];
  for (const [sampler, text] of cases)
    test(sampler, () => assert.match(samplerOf({ sampler, samplerRatio: 0.5 }).toString(), text));
});
