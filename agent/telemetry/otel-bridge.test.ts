import assert from 'node:assert/strict';
import { after, beforeEach, describe, test } from 'node:test';
import { SeverityNumber } from '@opentelemetry/api';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
} from '@opentelemetry/sdk-trace';
import { type LogData, ProtoWriter, type SpanData, writeSpan } from '../../telemetry/otel/otlp-encoding.ts';
import { PolicyError } from '../errors.ts';
import type { RequestRecord } from './channels.ts';
import { publishSecurity } from './channels.ts';
import { installAgentOtel } from './otel-bridge.ts';
import { begin, testTelemetry } from './test-records.ts';

const CLIENT_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const traceparent = `00-${CLIENT_TRACE}-00f067aa0ba902b7-01`;

/** Attributes as exported: null and undefined values are left out. */
function exported(attributes: SpanData['attributes']): Record<string, unknown> {
  return Object.fromEntries(Object.entries(attributes).filter(([, v]) => v !== undefined && v !== null));
}

describe('installAgentOtel', () => {
  const spans: SpanData[] = [];
  const logs: LogData[] = [];
  const stop = installAgentOtel({
    spans: { add: (s) => spans.push(s) },
    logs: { add: (l) => logs.push(l) },
    sampler: new ParentBasedSampler({ root: new AlwaysOnSampler() }),
    subject: 'plain',
    now: () => 2_000_000,
  });
  after(() => stop());
  beforeEach(() => {
    spans.length = 0;
    logs.length = 0;
  });

  test('a SERVER span per request: child of the client trace, traceparent for the app, semconv and tollgate attributes', () => {
    const t = testTelemetry();
    const r = begin(t, { headers: { traceparent, 'user-agent': 'curl/8' } });
    assert.equal(r.traceId, CLIENT_TRACE);
    assert.match(r.spanId ?? '', /^[0-9a-f]{16}$/);
    assert.deepEqual(r.propagate, { traceparent: `00-${CLIENT_TRACE}-${r.spanId}-01` });
    Object.assign(r.facts, {
      policy: 'shop/orders',
      route: 'get-order',
      routePath: '/v1/o/{id}',
      path: '/v1/o/7',
      subject: 'alice',
    });
    t.denied(r, new PolicyError('ERR_AUTHZ_DENIED', 'x'));
    t.end(r, 403);
    const [span] = spans;
    assert.ok(span);
    assert.equal(span.name, 'GET /v1/o/{id}');
    assert.equal(span.kind, 2, 'SERVER');
    assert.equal(span.traceId, CLIENT_TRACE);
    assert.equal(span.spanId, r.spanId);
    assert.equal(span.parentSpanId, '00f067aa0ba902b7');
    assert.equal(span.parentRemote, true);
    assert.equal(span.traceFlags, 1);
    assert.equal(span.status, 0, 'UNSET: a 4xx is not a server error');
    assert.equal(span.startTime, 1_000_000);
    assert.equal(span.endTime, 1_000_002.5);
    assert.deepEqual(exported(span.attributes), {
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
    assert.deepEqual(
      logs.map((l) => [
        l.eventName,
        l.severityNumber,
        l.severityText,
        l.body,
        l.traceId,
        l.spanId,
        l.traceFlags,
      ]),
      [
        ['tollgate.access', SeverityNumber.INFO, 'INFO', 'request', CLIENT_TRACE, r.spanId, 1],
        [
          'tollgate.security.authz_denied',
          SeverityNumber.INFO,
          'INFO',
          'request not authorized',
          CLIENT_TRACE,
          r.spanId,
          1,
        ],
      ],
    );
    const [access, denial] = logs;
    assert.equal(access?.time, 1_000_002.5, 'the access record is timed at the end of the response');
    assert.equal(access?.attributes.sub, 'alice');
    assert.equal(access?.attributes.reason, 'ERR_AUTHZ_DENIED');
    assert.equal(access?.attributes.spanId, r.spanId);
    assert.equal(access?.attributes.latencyMs, 2.5);
    assert.equal(denial?.time, 2_000_000);
    assert.equal(denial?.attributes.requestId, 'req-1');
    assert.equal(denial?.attributes.sub, 'alice');
  });

  test('the client tracestate goes to the app and on the span', () => {
    const t = testTelemetry();
    const r = begin(t, { headers: { traceparent, tracestate: 'vendor=abc, other=1' } });
    assert.equal(r.propagate?.tracestate, 'vendor=abc,other=1');
    t.end(r, 200);
    assert.equal(spans[0]?.traceState, 'vendor=abc,other=1');
  });

  test('no client trace: a new root; a 5xx is an error; an unknown method is HTTP / _OTHER', () => {
    const t = testTelemetry();
    const r = begin(t, { method: 'BREW' });
    assert.match(r.traceId ?? '', /^[0-9a-f]{32}$/);
    assert.notEqual(r.traceId, '0'.repeat(32));
    t.denied(r, new PolicyError('ERR_UPSTREAM_UNAVAILABLE', 'x'));
    t.end(r, 503);
    const [span] = spans;
    assert.equal(span?.name, 'HTTP');
    assert.equal(span?.parentSpanId, null);
    assert.equal(span?.parentRemote, false);
    assert.equal(span?.attributes['http.request.method'], '_OTHER');
    assert.equal(span?.attributes['http.request.method_original'], 'BREW');
    assert.equal(span?.attributes['error.type'], '503');
    assert.equal(span?.status, 2, 'ERROR');
  });

  test('an invalid traceparent starts a new trace', () => {
    const t = testTelemetry();
    const r = begin(t, { headers: { traceparent: `00-${'0'.repeat(32)}-00f067aa0ba902b7-01` } });
    assert.notEqual(r.traceId, '0'.repeat(32));
    assert.equal(r.parentSpanId, null);
  });

  test('a client gone before any response: error.type aborted, no status code', () => {
    const t = testTelemetry();
    const r = begin(t);
    t.end(r, 0);
    assert.equal(spans[0]?.attributes['error.type'], 'aborted');
    assert.equal(spans[0]?.attributes['http.response.status_code'], undefined);
  });

  test('Audit findings are an attribute', () => {
    const t = testTelemetry();
    const r = begin(t);
    t.findings(r, ['ERR_AUTHZ_DENIED', 'ERR_RATE_LIMITED']);
    t.end(r, 200);
    assert.deepEqual(spans[0]?.attributes['tollgate.findings'], ['ERR_AUTHZ_DENIED', 'ERR_RATE_LIMITED']);
    assert.equal(spans[0]?.attributes['tollgate.decision'], 'audit-deny');
  });

  test('a block (of no single request) is a WARN log record', () => {
    publishSecurity({
      name: 'client_blocked',
      fields: { key: '10.0.0.1', reason: 'authFailures', until: 'x', policy: 'shop/orders', mode: 'Enforce' },
    });
    const [record] = logs;
    assert.equal(record?.eventName, 'tollgate.security.client_blocked');
    assert.equal(record?.severityNumber, SeverityNumber.WARN);
    assert.equal(record?.severityText, 'WARN');
    assert.equal(record?.attributes.key, '10.0.0.1');
    assert.equal(record?.traceId, null);
    assert.equal(record?.spanId, null);
  });
});

describe('installAgentOtel: sampling and signals', () => {
  test('a sampled-out trace still propagates (flags 00) and records no span', () => {
    const spans: SpanData[] = [];
    const logs: LogData[] = [];
    const off = installAgentOtel({
      spans: { add: (s) => spans.push(s) },
      logs: { add: (l) => logs.push(l) },
      sampler: new AlwaysOffSampler(),
    });
    try {
      const t = testTelemetry();
      const r = begin(t);
      assert.match(r.propagate?.traceparent ?? '', /^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
      t.end(r, 200);
      assert.deepEqual(spans, []);
      // The access record still names the (unsampled) trace, as the JSON line does.
      assert.equal(logs[0]?.spanId, r.spanId);
      assert.equal(logs[0]?.traceFlags, 0);
    } finally {
      off();
    }
  });

  test('parent-based: a client trace not sampled is not sampled here either', () => {
    const spans: SpanData[] = [];
    const off = installAgentOtel({
      spans: { add: (s) => spans.push(s) },
      logs: null,
      sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(1) }),
    });
    try {
      const t = testTelemetry();
      const r = begin(t, { headers: { traceparent: `00-${CLIENT_TRACE}-00f067aa0ba902b7-00` } });
      assert.equal(r.propagate?.traceparent, `00-${CLIENT_TRACE}-${r.spanId}-00`);
      t.end(r, 200);
      assert.deepEqual(spans, []);
    } finally {
      off();
    }
  });

  test('logs only: access records carry no trace ids, the request gets none', () => {
    const logs: LogData[] = [];
    const off = installAgentOtel({ spans: null, logs: { add: (l) => logs.push(l) }, sampler: null });
    try {
      const t = testTelemetry();
      const r = begin(t, { headers: { traceparent } });
      assert.equal(r.propagate, null, 'the client traceparent reaches the app unchanged');
      assert.equal(r.traceId, CLIENT_TRACE, "the JSON line's trace id is the client's");
      t.end(r, 200);
      assert.equal(logs[0]?.eventName, 'tollgate.access');
      assert.equal(logs[0]?.traceId, null);
      assert.equal(logs[0]?.attributes.traceId, CLIENT_TRACE);
    } finally {
      off();
    }
  });

  test('access: false leaves out the per-request record, not the security events', () => {
    const logs: LogData[] = [];
    const off = installAgentOtel({
      spans: null,
      logs: { add: (l) => logs.push(l) },
      sampler: null,
      access: false,
    });
    try {
      const t = testTelemetry();
      const r = begin(t);
      t.denied(r, new PolicyError('ERR_AUTHZ_DENIED', 'x'));
      t.end(r, 403);
      assert.deepEqual(
        logs.map((l) => l.eventName),
        ['tollgate.security.authz_denied'],
      );
    } finally {
      off();
    }
  });
});

describe('installAgentOtel: spans encoded straight from the record', () => {
  const bytes = (write: (w: ProtoWriter) => void) => {
    const w = new ProtoWriter(64);
    write(w);
    return Buffer.from(w.buf.subarray(0, w.pos)).toString('hex');
  };
  const long = 'x'.repeat(150);
  const cases: [string, (t: ReturnType<typeof testTelemetry>) => RequestRecord][] = [
    [
      'an allowed GET with every fact',
      (t) => {
        const r = begin(t, { headers: { traceparent, 'user-agent': 'curl/8.5.0', host: 'orders:8080' } });
        Object.assign(r.facts, {
          policy: 'shop/orders',
          route: 'get-order',
          routePath: '/v1/users/{userId}/orders/{orderId}',
          path: '/v1/users/alice/orders/7',
        });
        r.decision = 'allow';
        r.code = 'OK';
        t.end(r, 200);
        return r;
      },
    ],
    [
      'an unknown method, a 503, an IPv6 Host, no user agent',
      (t) => {
        const r = begin(t, { method: 'BREW', headers: { host: '[::1]:8443' } });
        t.denied(r, new PolicyError('ERR_UPSTREAM_UNAVAILABLE', 'x'));
        t.end(r, 503);
        return r;
      },
    ],
    [
      'aborted, Audit findings, a token failure and a limit, no Host',
      (t) => {
        const r = begin(t, { headers: { host: '' } });
        Object.assign(r.facts, { authnFailure: 'expired', limit: 'per-user' });
        t.findings(r, ['ERR_AUTHN_INVALID_TOKEN', 'ERR_RATE_LIMITED']);
        t.end(r, 0);
        return r;
      },
    ],
    [
      'long and non-ASCII values (two-byte lengths)',
      (t) => {
        const r = begin(t, { headers: { 'user-agent': long, host: `${'h'.repeat(60)}.example` } }, long);
        Object.assign(r.facts, {
          path: `/v1/caf\u00e9/${'\u65e5'.repeat(50)}`,
          routePath: `/v1/${'é'.repeat(41)}`,
          policy: `${'p'.repeat(37)}é`,
          route: 'r'.repeat(43),
        });
        t.end(r, 404);
        return r;
      },
    ],
  ];
  for (const [name, make] of cases) {
    test(`${name}: the bytes of its attributes through the generic encoder`, () => {
      const spans: SpanData[] = [];
      const off = installAgentOtel({
        spans: { add: (s) => spans.push(s) },
        logs: null,
        sampler: new ParentBasedSampler({ root: new AlwaysOnSampler() }),
      });
      try {
        make(testTelemetry());
      } finally {
        off();
      }
      const [span] = spans;
      assert.ok(span?.writeAttributes, 'the request span writes its own attributes');
      const plain: SpanData = { ...span, attributes: span.attributes };
      assert.equal(plain.writeAttributes, undefined);
      assert.equal(
        bytes((w) => span.writeAttributes?.(w, 0x4a)),
        bytes((w) => w.attributes(0x4a, span.attributes)),
      );
      assert.equal(
        bytes((w) => writeSpan(w, span)),
        bytes((w) => writeSpan(w, plain)),
      );
    });
  }
});
