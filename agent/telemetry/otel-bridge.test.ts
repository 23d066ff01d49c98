import assert from 'node:assert/strict';
import { after, beforeEach, describe, test } from 'node:test';
import { SeverityNumber, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { InMemoryLogRecordExporter, LoggerProvider, SimpleLogRecordProcessor } from '@opentelemetry/sdk-logs';
import {
  AlwaysOffSampler,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  TracerProvider,
} from '@opentelemetry/sdk-trace';
import { PolicyError } from '../errors.ts';
import { publishSecurity } from './channels.ts';
import { installAgentOtel } from './otel-bridge.ts';
import { begin, testTelemetry } from './test-records.ts';

const CLIENT_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const traceparent = `00-${CLIENT_TRACE}-00f067aa0ba902b7-01`;

describe('installAgentOtel', () => {
  const spans = new InMemorySpanExporter();
  const logs = new InMemoryLogRecordExporter();
  const tracerProvider = new TracerProvider({
    spanProcessors: [new SimpleSpanProcessor({ exporter: spans })],
  });
  const loggerProvider = new LoggerProvider({
    processors: [new SimpleLogRecordProcessor({ exporter: logs })],
  });
  const stop = installAgentOtel({
    tracer: tracerProvider.getTracer('tollgate-agent'),
    logger: loggerProvider.getLogger('tollgate-agent'),
    subject: 'plain',
  });
  after(async () => {
    stop();
    await tracerProvider.shutdown();
    await loggerProvider.shutdown();
  });
  beforeEach(() => {
    spans.reset();
    logs.reset();
  });

  test('a SERVER span per request: child of the client trace, traceparent for the app, semconv and tollgate attributes', () => {
    const t = testTelemetry();
    const r = begin(t, { headers: { traceparent, 'user-agent': 'curl/8' } });
    assert.equal(r.traceId, CLIENT_TRACE);
    assert.match(r.propagate?.traceparent ?? '', new RegExp(`^00-${CLIENT_TRACE}-${r.spanId}-01$`));
    Object.assign(r.facts, {
      policy: 'shop/orders',
      route: 'get-order',
      routePath: '/v1/o/{id}',
      path: '/v1/o/7',
      subject: 'alice',
    });
    t.denied(r, new PolicyError('ERR_AUTHZ_DENIED', 'x'));
    t.end(r, 403);
    const [span] = spans.getFinishedSpans();
    assert.ok(span);
    assert.equal(span.name, 'GET /v1/o/{id}');
    assert.equal(span.kind, SpanKind.SERVER);
    assert.equal(span.parentSpanContext?.spanId, '00f067aa0ba902b7');
    assert.equal(span.status.code, SpanStatusCode.UNSET);
    assert.deepEqual(span.attributes, {
      'http.request.method': 'GET',
      'url.scheme': 'http',
      'client.address': '10.0.0.1',
      'network.protocol.version': '1.1',
      'tollgate.request_id': 'req-1',
      'server.address': 'orders',
      'server.port': 8080,
      'user_agent.original': 'curl/8',
      'http.route': '/v1/o/{id}',
      'url.path': '/v1/o/7',
      'http.response.status_code': 403,
      'tollgate.decision': 'deny',
      'tollgate.reason': 'ERR_AUTHZ_DENIED',
      'tollgate.policy': 'shop/orders',
      'tollgate.route': 'get-order',
      'tollgate.client_key': '10.0.0.1',
    });
    const records = logs.getFinishedLogRecords();
    assert.deepEqual(
      records.map((l) => [l.eventName, l.severityNumber, l.body, l.spanContext?.spanId]),
      [
        ['tollgate.access', SeverityNumber.INFO, 'request', r.spanId],
        ['tollgate.security.authz_denied', SeverityNumber.INFO, 'request not authorized', r.spanId],
      ],
    );
    assert.equal(records[0]?.attributes.sub, 'alice');
    assert.equal(records[0]?.attributes.reason, 'ERR_AUTHZ_DENIED');
    assert.equal(records[0]?.attributes.spanId, r.spanId);
  });

  test('no client trace: a new root; a 5xx is an error; an unknown method is HTTP / _OTHER', () => {
    const t = testTelemetry();
    const r = begin(t, { method: 'BREW' });
    assert.notEqual(r.traceId, null);
    t.denied(r, new PolicyError('ERR_UPSTREAM_UNAVAILABLE', 'x'));
    t.end(r, 503);
    const [span] = spans.getFinishedSpans();
    assert.equal(span?.name, 'HTTP');
    assert.equal(span?.parentSpanContext, undefined);
    assert.equal(span?.attributes['http.request.method'], '_OTHER');
    assert.equal(span?.attributes['http.request.method_original'], 'BREW');
    assert.equal(span?.attributes['error.type'], '503');
    assert.equal(span?.status.code, SpanStatusCode.ERROR);
  });

  test('a client gone before any response: error.type aborted', () => {
    const t = testTelemetry();
    const r = begin(t);
    t.end(r, 0);
    assert.equal(spans.getFinishedSpans()[0]?.attributes['error.type'], 'aborted');
  });

  test('a block (of no single request) is a WARN log record', () => {
    publishSecurity({
      name: 'client_blocked',
      fields: { key: '10.0.0.1', reason: 'authFailures', until: 'x', policy: 'shop/orders', mode: 'Enforce' },
    });
    const [record] = logs.getFinishedLogRecords();
    assert.equal(record?.eventName, 'tollgate.security.client_blocked');
    assert.equal(record?.severityNumber, SeverityNumber.WARN);
    assert.equal(record?.attributes.key, '10.0.0.1');
    assert.equal(record?.spanContext, undefined);
  });

  test('a sampled-out trace still propagates (flags 00) and records nothing', async () => {
    const exporter = new InMemorySpanExporter();
    const provider = new TracerProvider({
      sampler: new AlwaysOffSampler(),
      spanProcessors: [new SimpleSpanProcessor({ exporter })],
    });
    stop();
    const off = installAgentOtel({ tracer: provider.getTracer('t'), logger: null });
    try {
      const t = testTelemetry();
      const r = begin(t);
      assert.match(r.propagate?.traceparent ?? '', /-00$/);
      t.end(r, 200);
      assert.deepEqual(exporter.getFinishedSpans(), []);
    } finally {
      off();
      await provider.shutdown();
    }
  });
});
