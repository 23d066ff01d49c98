import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PolicyError } from '../errors.ts';
import { accessFields, loggedSubject, type SubjectLogging, subscribeAccessLog } from './access-log.ts';
import { publishSecurity, type RequestRecord } from './channels.ts';
import { JsonLineWriter } from './json-line.ts';
import { begin, testTelemetry } from './test-records.ts';

interface Line {
  level: 'info' | 'warn';
  fields: Record<string, unknown>;
  msg: string;
}

function sink(levelOn = true) {
  const lines: Line[] = [];
  return {
    lines,
    logger: {
      info: (fields: object, msg: string) => lines.push({ level: 'info', fields: { ...fields }, msg }),
      warn: (fields: object, msg: string) => lines.push({ level: 'warn', fields: { ...fields }, msg }),
      isLevelEnabled: (level: string) => level !== 'info' || levelOn,
    },
  };
}

describe('access and security logs', () => {
  test('one access line per request: ids, route, decision, reason, status, latency, client key', () => {
    const t = testTelemetry();
    const { lines, logger } = sink();
    const stop = subscribeAccessLog({ logger, source: t });
    try {
      const r = begin(t, { headers: { authorization: 'Bearer secret.token.value' } });
      Object.assign(r.facts, {
        policy: 'shop/orders',
        route: 'get-order',
        path: '/v1/o/7',
        subject: 'alice',
      });
      t.denied(r, new PolicyError('ERR_AUTHZ_DENIED', 'x'));
      t.end(r, 403);
      assert.deepEqual(lines[0], {
        level: 'info',
        msg: 'request',
        fields: {
          event: 'tollgate.access',
          requestId: 'req-1',
          traceId: null,
          spanId: null,
          method: 'GET',
          path: '/v1/o/7',
          route: 'get-order',
          policy: 'shop/orders',
          decision: 'deny',
          reason: 'ERR_AUTHZ_DENIED',
          status: 403,
          latencyMs: 2.5,
          clientKey: '10.0.0.1',
        },
      });
      assert.deepEqual(lines[1], {
        level: 'info',
        msg: 'request not authorized',
        fields: {
          event: 'tollgate.security.authz_denied',
          requestId: 'req-1',
          traceId: null,
          clientKey: '10.0.0.1',
          method: 'GET',
          policy: 'shop/orders',
          route: 'get-order',
          code: 'ERR_AUTHZ_DENIED',
          status: 403,
          mode: 'Enforce',
        },
      });
      assert.equal(JSON.stringify(lines).includes('secret'), false);
      assert.equal(JSON.stringify(lines).includes('alice'), false, 'no sub by default');
    } finally {
      stop();
    }
  });

  test('a block is a warn line; other sources are ignored; --access-log off keeps security lines', () => {
    const t = testTelemetry();
    const { lines, logger } = sink();
    const stop = subscribeAccessLog({ logger, source: t, access: false });
    try {
      const foreign = testTelemetry();
      const r = begin(foreign);
      foreign.denied(r, new PolicyError('ERR_AUTHN_REQUIRED', 'x'));
      foreign.end(r, 401);
      const mine = begin(t);
      t.end(mine, 200);
      publishSecurity({
        name: 'client_blocked',
        fields: { key: '10.0.0.1', reason: 'unmatched', until: 'x', policy: 'shop/orders', mode: 'Enforce' },
      });
      assert.deepEqual(
        lines.map((l) => [l.level, l.msg]),
        [['warn', 'client blocked']],
      );
      assert.equal(lines[0]?.fields.event, 'tollgate.security.client_blocked');
    } finally {
      stop();
    }
  });

  test('with info off the access line is not even subscribed', () => {
    const t = testTelemetry();
    const { lines, logger } = sink(false);
    const stop = subscribeAccessLog({ logger, source: t });
    try {
      t.end(begin(t), 200);
      assert.deepEqual(lines, []);
    } finally {
      stop();
    }
  });

  test('sub: none (default), a SHA-256 prefix, or plain; only present when the token had one', () => {
    assert.equal(loggedSubject('alice', 'none'), undefined);
    assert.equal(loggedSubject('alice', 'plain'), 'alice');
    assert.equal(loggedSubject('alice', 'hash'), 'sha256:2bd806c97f0e00af');
    assert.equal(loggedSubject(null, 'plain'), undefined);
    const t = testTelemetry();
    const r = begin(t);
    r.facts.subject = 'alice';
    r.facts.authnFailure = 'expired';
    r.facts.limit = 'per-user';
    const fields = accessFields(r, 'plain');
    assert.equal(fields.sub, 'alice');
    assert.equal(fields.authnFailure, 'expired');
    assert.equal(fields.limit, 'per-user');
  });
});

describe('the access line written straight from the record (line: JsonLineWriter)', () => {
  const cases: [string, SubjectLogging, (r: RequestRecord) => void][] = [
    [
      'an allowed request with a trace',
      'none',
      (r) => Object.assign(r, { traceId: 'ab'.repeat(16), spanId: 'cd'.repeat(8) }),
    ],
    [
      'a denial with a subject, hashed',
      'hash',
      (r) => Object.assign(r.facts, { subject: 'alice', policy: 'shop/orders' }),
    ],
    [
      'Audit findings, a token failure, a limit, a plain subject, odd strings',
      'plain',
      (r) => {
        Object.assign(r.facts, {
          subject: 'bob "the" \\ builder',
          authnFailure: 'expired',
          limit: 'per-user',
          path: '/caf\u00e9/\n',
          route: 'r'.repeat(120),
        });
        r.findings = ['ERR_AUTHZ_DENIED', 'ERR_RATE_LIMITED'];
        r.decision = 'audit-deny';
      },
    ],
    [
      'one finding only (not listed), no subject in the token',
      'plain',
      (r) => {
        r.findings = ['ERR_AUTHZ_DENIED'];
      },
    ],
  ];
  for (const [name, subject, shape] of cases) {
    test(`${name}: the bytes of info(accessFields(r), 'request')`, () => {
      const t = testTelemetry();
      const written: string[] = [];
      const w = new JsonLineWriter((b) => written.push(Buffer.from(b).toString()), {
        bindings: { component: 'agent' },
        now: () => 1_767_225_600_000,
      });
      const { logger } = sink();
      const stop = subscribeAccessLog({ logger, line: w, source: t, subject });
      try {
        const r = begin(t);
        shape(r);
        t.end(r, 200);
        w.info(accessFields(r, subject), 'request');
      } finally {
        stop();
      }
      assert.equal(written.length, 2);
      assert.equal(written[0], written[1]);
    });
  }
});
