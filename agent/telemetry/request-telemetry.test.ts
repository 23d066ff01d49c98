import assert from 'node:assert/strict';
import { after, beforeEach, describe, test } from 'node:test';
import type { CompiledPolicy } from '../../policy/compile/bundle.ts';
import { PolicyError, type PolicyErrorCode } from '../errors.ts';
import type { ForwardPlan } from '../pipeline/decide-request.ts';
import {
  type RequestRecord,
  requestEnd,
  requestStart,
  type SecurityEvent,
  securityEvents,
  subscribeTo,
} from './channels.ts';
import { begin, testTelemetry } from './test-records.ts';

const ended: RequestRecord[] = [];
const security: SecurityEvent[] = [];
const stops = [
  subscribeTo<RequestRecord>(requestEnd, (r) => ended.push(r)),
  subscribeTo<SecurityEvent>(securityEvents, (e) => security.push(e)),
];
after(() => {
  for (const s of stops) s();
});
beforeEach(() => {
  ended.length = 0;
  security.length = 0;
});

function plan(over: Partial<ForwardPlan> = {}): ForwardPlan {
  return {
    policy: {} as CompiledPolicy,
    route: 'get-order',
    path: '/v1/x',
    headers: {},
    timeoutMs: 1000,
    responseHeaders: {},
    findings: [],
    decision: 'allow',
    body: null,
    ...over,
  };
}

describe('RequestTelemetry', () => {
  test('a record: begun at accept, planned, published once at end with status and duration', () => {
    const t = testTelemetry();
    const r = begin(t);
    assert.equal(r.startTime, 1_000_000);
    assert.equal(r.method, 'GET');
    assert.equal(r.clientKey, '10.0.0.1');
    t.planned(r, plan());
    assert.equal(r.code, 'OK');
    t.end(r, 200);
    t.end(r, 500);
    assert.equal(ended.length, 1);
    assert.equal(r.status, 200);
    assert.equal(r.durationMs, 2.5);
    assert.equal(r.decision, 'allow');
    assert.deepEqual(security, []);
  });

  test('undeclared traffic is OK_UNDECLARED; audit findings make audit-deny with the first finding as code', () => {
    const t = testTelemetry();
    const undeclared = begin(t);
    t.planned(undeclared, plan({ route: null, decision: 'undeclared' }));
    assert.equal(undeclared.code, 'OK_UNDECLARED');
    const audit = begin(t);
    t.planned(audit, plan({ decision: 'audit-deny', findings: [new PolicyError('ERR_AUTHZ_DENIED', 'no')] }));
    t.findings(audit, ['ERR_VALIDATION']);
    assert.deepEqual(audit.findings, ['ERR_AUTHZ_DENIED', 'ERR_VALIDATION']);
    assert.equal(audit.code, 'ERR_AUTHZ_DENIED');
    t.end(audit, 200);
    assert.deepEqual(
      security.map((e) => [e.name, e.fields.mode]),
      [['authz_denied', 'Audit']],
    );
    const body = begin(t);
    t.planned(body, plan());
    t.findings(body, ['ERR_VALIDATION']);
    assert.equal(body.decision, 'audit-deny');
    t.findings(body, []);
    assert.equal(body.findings.length, 1);
  });

  const events: [code: PolicyErrorCode, event: string | null, status: number][] = [
    ['ERR_AUTHN_INVALID_TOKEN', 'auth_failure', 401],
    ['ERR_AUTHN_REQUIRED', 'auth_failure', 401],
    ['ERR_AUTHZ_DENIED', 'authz_denied', 403],
    ['ERR_RATE_LIMITED', 'rate_limited', 429],
    ['ERR_PROTECTION_BLOCKED', 'blocked_request', 429],
    ['ERR_ROUTE_SUNSET', 'sunset_hit', 410],
    ['ERR_ROUTE_NOT_FOUND', null, 404],
    ['ERR_VALIDATION', null, 400],
    ['ERR_UPSTREAM_TIMEOUT', null, 504],
  ];
  for (const [code, event, status] of events) {
    test(`a denial ${code} → ${event ?? 'no security event'}`, () => {
      const t = testTelemetry();
      const r = begin(t);
      r.facts.policy = 'shop/orders';
      r.facts.limit = 'per-ip';
      t.denied(r, new PolicyError(code, 'x'));
      t.end(r, status);
      assert.equal(r.code, code);
      assert.equal(r.decision, 'deny');
      assert.deepEqual(
        security.map((e) => e.name),
        event ? [event] : [],
      );
      const fields = security[0]?.fields;
      if (event) {
        assert.equal(fields?.requestId, 'req-1');
        assert.equal(fields?.policy, 'shop/orders');
        assert.equal(fields?.status, status);
        assert.equal(fields?.mode, 'Enforce');
        assert.equal(security[0]?.record, r);
      }
      if (event === 'auth_failure') assert.equal(fields?.reason, 'invalid');
      if (event === 'rate_limited') assert.equal(fields?.limit, 'per-ip');
    });
  }

  test('an unexpected error is ERR_INTERNAL', () => {
    const t = testTelemetry();
    const r = begin(t);
    t.denied(r, new Error('boom'));
    assert.equal(r.code, 'ERR_INTERNAL');
  });

  test("trace id: a tracer's (set at start), else the client's traceparent, else none", () => {
    const t = testTelemetry();
    const client = '4bf92f3577b34da6a3ce929d0e0e4736';
    const plain = begin(t, { headers: { traceparent: `00-${client}-00f067aa0ba902b7-01` } });
    assert.equal(plain.traceId, client);
    assert.equal(
      begin(t, { headers: { traceparent: `00-${'0'.repeat(32)}-00f067aa0ba902b7-01` } }).traceId,
      null,
    );
    assert.equal(begin(t, { headers: { traceparent: 'garbage' } }).traceId, null);
    const stop = subscribeTo<RequestRecord>(requestStart, (r) => {
      r.traceId = 'f'.repeat(32);
    });
    try {
      assert.equal(
        begin(t, { headers: { traceparent: `00-${client}-00f067aa0ba902b7-01` } }).traceId,
        'f'.repeat(32),
      );
    } finally {
      stop();
    }
  });
});
