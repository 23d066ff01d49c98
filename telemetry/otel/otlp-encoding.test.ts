import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, test } from 'node:test';
import {
  decodeExportResponse,
  jsonLogs,
  jsonSpans,
  type LogData,
  nanosString,
  ProtoWriter,
  protobufLogs,
  protobufSpans,
  type SpanData,
} from './otlp-encoding.ts';

// The official OTLP definitions (the dev dependency `otlp-proto`, as test/support/otlp-receiver.ts uses them).
// biome-ignore lint/suspicious/noExplicitAny: the generated protobufjs root is untyped here
const root: any = createRequire(import.meta.url)('otlp-proto/build/src/generated/root.js');
const { trace, logs } = root.opentelemetry.proto.collector;
const TraceRequest = trace.v1.ExportTraceServiceRequest;
const LogsRequest = logs.v1.ExportLogsServiceRequest;
const TraceResponse = trace.v1.ExportTraceServiceResponse;

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
/** A decoded int64 (protobufjs Long or number) as a decimal string. */
const int64 = (v: unknown) => String(v);

// biome-ignore lint/suspicious/noExplicitAny: decoded protobufjs messages
function attrs(list: any[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const kv of list) {
    const v = kv.value;
    if (v.stringValue != null) out[kv.key] = v.stringValue;
    else if (v.intValue != null) out[kv.key] = Number(v.intValue);
    else if (v.doubleValue != null) out[kv.key] = v.doubleValue;
    else if (v.boolValue != null) out[kv.key] = v.boolValue;
    else if (v.arrayValue)
      out[kv.key] = v.arrayValue.values.map((x: { stringValue: string }) => x.stringValue);
  }
  return out;
}

const RESOURCE = { 'service.name': 'orders', 'k8s.pod.name': 'orders-0', 'service.version': '0.1.0' };
const SCOPE = { name: 'tollgate-agent', version: '0.1.0' };

function span(overrides: Partial<SpanData> = {}): SpanData {
  return {
    traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    spanId: 'a3ce929d0e0e4736',
    parentSpanId: '00f067aa0ba902b7',
    parentRemote: true,
    traceState: null,
    traceFlags: 1,
    name: 'GET /v1/users/{userId}/orders/{orderId}',
    kind: 2,
    startTime: 1_767_225_600_123.25,
    endTime: 1_767_225_600_125.5,
    attributes: {
      'http.request.method': 'GET',
      'http.request.method_original': undefined,
      'url.path': '/v1/users/alice/orders/7',
      'http.response.status_code': 200,
      'server.port': 8080,
      'tollgate.policy': null,
      'tollgate.findings': ['ERR_AUTHZ_DENIED', 'ERR_RATE_LIMITED'],
      ratio: 0.25,
      negative: -3,
      flag: true,
      'user_agent.original': 'é'.repeat(100),
    },
    status: 0,
    ...overrides,
  };
}

function log(overrides: Partial<LogData> = {}): LogData {
  return {
    time: 1_767_225_600_125.5,
    observedTime: 1_767_225_600_126,
    severityNumber: 9,
    severityText: 'INFO',
    body: 'request',
    eventName: 'tollgate.access',
    attributes: { requestId: 'req-1', status: 403, latencyMs: 1.234, route: null },
    traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    spanId: 'a3ce929d0e0e4736',
    traceFlags: 1,
    ...overrides,
  };
}

describe('ProtoWriter', () => {
  test('timeMs: epoch ms as exact Unix nanoseconds', () => {
    for (const ms of [0, 1, 999.999999, 1_767_225_600_123.25, 4_102_444_800_000.5]) {
      const w = new ProtoWriter(16);
      w.timeMs(ms);
      assert.equal(w.buf.readBigUInt64LE(0).toString(), nanosString(ms), String(ms));
    }
    assert.equal(nanosString(1_767_225_600_123.25), '1767225600123250000');
  });

  test('lengths beyond one byte: a message is shifted to fit its length', () => {
    const w = new ProtoWriter(8);
    const at = w.begin(2);
    w.string('x'.repeat(20_000));
    w.end(at, 2);
    assert.deepEqual([...w.buf.subarray(0, 3)], [0xa3, 0x9c, 0x01], 'the 20003-byte body: a 3-byte length');
    const small = new ProtoWriter(8);
    const at2 = small.begin(2);
    small.string('ab');
    small.end(at2, 2);
    assert.deepEqual([...small.buf.subarray(0, small.pos)], [3, 2, 0x61, 0x62]);
  });
});

describe('protobuf export requests decode with the official definitions', () => {
  test('spans: resource, scope, ids, times, attributes (nulls left out), status, flags', () => {
    const builder = protobufSpans(RESOURCE, SCOPE).builder();
    builder.add(span());
    builder.add(
      span({
        spanId: 'b3ce929d0e0e4736',
        parentSpanId: null,
        parentRemote: false,
        traceState: 'vendor=abc',
        status: 2,
        name: 'x'.repeat(20_000),
      }),
    );
    const batch = builder.finish();
    assert.equal(batch.count, 2);
    const request = TraceRequest.decode(batch.payload);
    assert.equal(request.resourceSpans.length, 1);
    const [rs] = request.resourceSpans;
    assert.deepEqual(attrs(rs.resource.attributes), RESOURCE);
    assert.equal(rs.scopeSpans.length, 1);
    assert.deepEqual({ name: rs.scopeSpans[0].scope.name, version: rs.scopeSpans[0].scope.version }, SCOPE);
    const [a, b] = rs.scopeSpans[0].spans;
    assert.equal(hex(a.traceId), '4bf92f3577b34da6a3ce929d0e0e4736');
    assert.equal(hex(a.spanId), 'a3ce929d0e0e4736');
    assert.equal(hex(a.parentSpanId), '00f067aa0ba902b7');
    assert.equal(a.name, 'GET /v1/users/{userId}/orders/{orderId}');
    assert.equal(a.kind, 2);
    assert.equal(int64(a.startTimeUnixNano), '1767225600123250000');
    assert.equal(int64(a.endTimeUnixNano), '1767225600125500000');
    assert.deepEqual(attrs(a.attributes), {
      'http.request.method': 'GET',
      'url.path': '/v1/users/alice/orders/7',
      'http.response.status_code': 200,
      'server.port': 8080,
      'tollgate.findings': ['ERR_AUTHZ_DENIED', 'ERR_RATE_LIMITED'],
      ratio: 0.25,
      negative: -3,
      flag: true,
      'user_agent.original': 'é'.repeat(100),
    });
    assert.equal(a.status.code, 0);
    assert.equal(a.flags, 0x301, 'sampled, has is_remote, is_remote');
    assert.ok(!a.traceState);
    assert.equal(b.traceState, 'vendor=abc');
    assert.ok(!b.parentSpanId?.length);
    assert.equal(b.flags, 0x101);
    assert.equal(b.status.code, 2);
    assert.equal(b.name.length, 20_000);
  });

  test('log records: times, severity, body, event name, attributes, trace context', () => {
    const builder = protobufLogs(RESOURCE, SCOPE).builder();
    builder.add(log());
    builder.add(
      log({ traceId: null, spanId: null, traceFlags: 0, severityNumber: 13, severityText: 'WARN' }),
    );
    const request = LogsRequest.decode(builder.finish().payload);
    const [rl] = request.resourceLogs;
    assert.deepEqual(attrs(rl.resource.attributes), RESOURCE);
    assert.equal(rl.scopeLogs[0].scope.name, 'tollgate-agent');
    const [a, b] = rl.scopeLogs[0].logRecords;
    assert.equal(int64(a.timeUnixNano), '1767225600125500000');
    assert.equal(int64(a.observedTimeUnixNano), '1767225600126000000');
    assert.equal(a.severityNumber, 9);
    assert.equal(a.severityText, 'INFO');
    assert.equal(a.body.stringValue, 'request');
    assert.equal(a.eventName, 'tollgate.access');
    assert.deepEqual(attrs(a.attributes), { requestId: 'req-1', status: 403, latencyMs: 1.234 });
    assert.equal(hex(a.traceId), '4bf92f3577b34da6a3ce929d0e0e4736');
    assert.equal(hex(a.spanId), 'a3ce929d0e0e4736');
    assert.equal(a.flags, 1);
    assert.ok(!b.traceId?.length);
    assert.ok(!b.flags);
    assert.equal(b.severityNumber, 13);
  });

  test('a batch of 512 spans, each encoded as it was added', () => {
    const encoding = protobufSpans(RESOURCE, SCOPE);
    for (let round = 0; round < 2; round++) {
      const builder = encoding.builder();
      for (let i = 0; i < 512; i++) builder.add(span({ attributes: { 'tollgate.request_id': `req-${i}` } }));
      const spans = TraceRequest.decode(builder.finish().payload).resourceSpans[0].scopeSpans[0].spans;
      assert.equal(spans.length, 512);
      assert.equal(attrs(spans[511].attributes)['tollgate.request_id'], 'req-511');
    }
  });
});

describe('OTLP/JSON export requests', () => {
  test('spans: hex ids, nanoseconds as strings, typed values', () => {
    const builder = jsonSpans(RESOURCE, SCOPE).builder();
    builder.add(span());
    const request = JSON.parse(Buffer.from(builder.finish().payload).toString('utf8'));
    const [rs] = request.resourceSpans;
    assert.deepEqual(rs.scopeSpans[0].scope, SCOPE);
    const [s] = rs.scopeSpans[0].spans;
    assert.equal(s.traceId, '4bf92f3577b34da6a3ce929d0e0e4736');
    assert.equal(s.parentSpanId, '00f067aa0ba902b7');
    assert.equal(s.startTimeUnixNano, '1767225600123250000');
    assert.equal(s.kind, 2);
    assert.equal(s.flags, 0x301);
    assert.deepEqual(
      s.attributes.find((kv: { key: string }) => kv.key === 'http.response.status_code').value,
      { intValue: 200 },
    );
    assert.equal(
      s.attributes.some((kv: { key: string }) => kv.key === 'tollgate.policy'),
      false,
    );
  });

  test('log records', () => {
    const builder = jsonLogs(RESOURCE, SCOPE).builder();
    builder.add(log());
    const request = JSON.parse(Buffer.from(builder.finish().payload).toString('utf8'));
    const [l] = request.resourceLogs[0].scopeLogs[0].logRecords;
    assert.equal(l.eventName, 'tollgate.access');
    assert.deepEqual(l.body, { stringValue: 'request' });
    assert.equal(l.spanId, 'a3ce929d0e0e4736');
    assert.equal(l.timeUnixNano, '1767225600125500000');
  });
});

describe('decodeExportResponse', () => {
  test('a partial success, protobuf or JSON; nothing else', () => {
    const body = TraceResponse.encode({
      partialSuccess: { rejectedSpans: 3, errorMessage: 'too big' },
    }).finish();
    assert.deepEqual(decodeExportResponse(body, false), {
      partialSuccess: { rejected: 3, errorMessage: 'too big' },
    });
    assert.deepEqual(decodeExportResponse(new Uint8Array(0), false), {});
    assert.deepEqual(decodeExportResponse(TraceResponse.encode({}).finish(), false), {});
    assert.deepEqual(decodeExportResponse(Buffer.from('{"partialSuccess":{"rejectedSpans":"2"}}'), true), {
      partialSuccess: { rejectedSpans: '2' },
    });
    assert.throws(() => decodeExportResponse(Uint8Array.of(0x0a, 0x05, 0x08), false));
  });
});
