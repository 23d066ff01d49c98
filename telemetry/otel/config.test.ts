import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type Env, OtelConfigError, readOtelConfig } from './config.ts';

const ENDPOINT = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' };

function problems(env: Env): string[] {
  try {
    readOtelConfig(env, 'tollgate-agent');
    return [];
  } catch (e) {
    assert.ok(e instanceof OtelConfigError);
    return e.problems;
  }
}

describe('readOtelConfig: off unless configured', () => {
  const off: [what: string, env: Env][] = [
    ['no OTEL_* at all', {}],
    ['a service name alone', { OTEL_SERVICE_NAME: 'orders' }],
    ['OTEL_SDK_DISABLED=true wins over an endpoint', { ...ENDPOINT, OTEL_SDK_DISABLED: 'TRUE' }],
    [
      'every signal set to none',
      {
        ...ENDPOINT,
        OTEL_TRACES_EXPORTER: 'none',
        OTEL_METRICS_EXPORTER: 'none',
        OTEL_LOGS_EXPORTER: 'none',
      },
    ],
    ['an empty endpoint', { OTEL_EXPORTER_OTLP_ENDPOINT: '  ' }],
  ];
  for (const [what, env] of off) test(`${what}: null`, () => assert.equal(readOtelConfig(env, 's'), null));
});

describe('readOtelConfig: signals, protocol, sampler, batches, resource', () => {
  test('defaults with an endpoint: every signal over http/protobuf, parentbased_always_on, spec batch sizes', () => {
    const c = readOtelConfig(ENDPOINT, 'tollgate-agent');
    assert.ok(c);
    assert.deepEqual([c.traces, c.metrics, c.logs], ['http/protobuf', 'http/protobuf', 'http/protobuf']);
    assert.equal(c.sampler, 'parentbased_always_on');
    assert.equal(c.samplerRatio, 1);
    assert.deepEqual(c.spans, {
      scheduledDelayMillis: 5000,
      exportTimeoutMillis: 30000,
      maxQueueSize: 2048,
      maxExportBatchSize: 512,
    });
    assert.equal(c.logRecords.scheduledDelayMillis, 1000);
    assert.equal(c.metricIntervalMillis, 60000);
    assert.deepEqual(c.resource, { 'service.name': 'tollgate-agent' });
    assert.ok(Object.isFrozen(c) && Object.isFrozen(c.resource) && Object.isFrozen(c.spans));
  });

  test('per-signal endpoint, exporter and protocol', () => {
    const c = readOtelConfig(
      {
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://tempo:4317',
        OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: 'http://mimir/otlp/v1/metrics',
        OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
        OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: 'http/json',
        OTEL_METRICS_EXPORTER: 'otlp,prometheus',
      },
      's',
    );
    assert.deepEqual([c?.traces, c?.metrics, c?.logs], ['grpc', 'http/json', null]);
  });

  test('OTEL_METRICS_EXPORTER=prometheus: no metric push (the admin port serves them)', () => {
    const c = readOtelConfig({ ...ENDPOINT, OTEL_METRICS_EXPORTER: 'prometheus' }, 's');
    assert.equal(c?.metrics, null);
    assert.equal(c?.traces, 'http/protobuf');
  });

  test('sampler, its ratio, batch and interval settings', () => {
    const c = readOtelConfig(
      {
        ...ENDPOINT,
        OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
        OTEL_TRACES_SAMPLER_ARG: '0.25',
        OTEL_BSP_SCHEDULE_DELAY: '100',
        OTEL_BSP_MAX_QUEUE_SIZE: '4096',
        OTEL_BLRP_SCHEDULE_DELAY: '50',
        OTEL_METRIC_EXPORT_INTERVAL: '10000',
        OTEL_METRIC_EXPORT_TIMEOUT: '5000',
      },
      's',
    );
    assert.equal(c?.sampler, 'parentbased_traceidratio');
    assert.equal(c?.samplerRatio, 0.25);
    assert.equal(c?.spans.scheduledDelayMillis, 100);
    assert.equal(c?.spans.maxQueueSize, 4096);
    assert.equal(c?.logRecords.scheduledDelayMillis, 50);
    assert.equal(c?.metricIntervalMillis, 10000);
    assert.equal(c?.metricTimeoutMillis, 5000);
  });

  test('resource: service name default < pod env < OTEL_RESOURCE_ATTRIBUTES < OTEL_SERVICE_NAME', () => {
    const c = readOtelConfig(
      {
        ...ENDPOINT,
        POD_NAME: 'orders-abc',
        POD_NAMESPACE: 'shop',
        POD_UID: 'u-1',
        NODE_NAME: 'node-1',
        OTEL_RESOURCE_ATTRIBUTES: 'service.name=from-attrs, k8s.pod.name=override,team=a%2Cb%3Dc,,',
        OTEL_SERVICE_NAME: 'orders',
      },
      'tollgate-agent',
    );
    assert.deepEqual(c?.resource, {
      'service.name': 'orders',
      'k8s.pod.name': 'override',
      'k8s.namespace.name': 'shop',
      'k8s.pod.uid': 'u-1',
      'k8s.node.name': 'node-1',
      team: 'a,b=c',
    });
  });

  test('every problem is listed together', () => {
    assert.deepEqual(
      problems({
        ...ENDPOINT,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'udp',
        OTEL_TRACES_EXPORTER: 'zipkin',
        OTEL_TRACES_SAMPLER: 'sometimes',
        OTEL_TRACES_SAMPLER_ARG: '2',
        OTEL_PROPAGATORS: 'tracecontext,b3',
        OTEL_BSP_SCHEDULE_DELAY: '-5',
        OTEL_BLRP_MAX_QUEUE_SIZE: '10',
        OTEL_RESOURCE_ATTRIBUTES: 'novalue,bad=%E0%A4%A',
      }),
      [
        'OTEL_TRACES_EXPORTER: "zipkin" is not supported (otlp | none)',
        'OTEL_EXPORTER_OTLP_PROTOCOL: grpc | http/protobuf | http/json',
        'OTEL_TRACES_SAMPLER: one of always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off, parentbased_traceidratio',
        'OTEL_PROPAGATORS: "b3" is not supported (tracecontext, baggage)',
        'OTEL_RESOURCE_ATTRIBUTES: expected key=value, got "novalue"',
        'OTEL_RESOURCE_ATTRIBUTES: bad percent-encoding in "bad=%E0%A4%A"',
        'OTEL_BSP_SCHEDULE_DELAY: expected a positive integer, got "-5"',
        'OTEL_BLRP_MAX_EXPORT_BATCH_SIZE must not exceed OTEL_BLRP_MAX_QUEUE_SIZE',
      ],
    );
  });

  test('a ratio outside 0..1 is a problem only for the ratio samplers', () => {
    assert.deepEqual(
      problems({ ...ENDPOINT, OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: 'x' }),
      ['OTEL_TRACES_SAMPLER_ARG: a ratio from 0 to 1, got "x"'],
    );
    assert.deepEqual(
      problems({ ...ENDPOINT, OTEL_TRACES_SAMPLER: 'always_on', OTEL_TRACES_SAMPLER_ARG: 'x' }),
      [],
    );
  });
});
