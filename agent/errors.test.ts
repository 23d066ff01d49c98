import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PolicyError, type PolicyErrorCode, RESCUE, rescue } from './errors.ts';

const EXPECTED_STATUS: Record<PolicyErrorCode, number> = {
  ERR_PATH_INVALID: 400,
  ERR_REQUEST_MALFORMED: 400,
  ERR_ROUTE_NOT_FOUND: 404,
  ERR_ROUTE_METHOD: 405,
  ERR_ROUTE_SUNSET: 410,
  ERR_AUTHN_INVALID_TOKEN: 401,
  ERR_AUTHN_REQUIRED: 401,
  ERR_AUTHZ_DENIED: 403,
  ERR_RATE_LIMITED: 429,
  ERR_PROTECTION_BLOCKED: 429,
  ERR_BODY_TOO_LARGE: 413,
  ERR_MEDIA_TYPE: 415,
  ERR_VALIDATION: 400,
  ERR_NO_POLICY: 503,
  ERR_POLICY_NONE: 403,
  ERR_MTLS_REQUIRED: 403,
  ERR_MTLS_DISABLED: 403,
  ERR_UPSTREAM_UNAVAILABLE: 503,
  ERR_UPSTREAM_TIMEOUT: 504,
  ERR_UPSTREAM_FAILED: 502,
  ERR_OUTBOUND_DESTINATION: 400,
  ERR_OUTBOUND_UNREACHABLE: 502,
  ERR_OUTBOUND_LOOP: 508,
  ERR_OUTBOUND_MTLS: 502,
  ERR_OUTBOUND_NO_IDENTITY: 503,
  ERR_INTERNAL: 500,
};

function parse(body: string): Record<string, unknown> {
  return JSON.parse(body) as Record<string, unknown>;
}

describe('PolicyError', () => {
  test('carries code, detail, headers; route starts null; message names the code', () => {
    const e = new PolicyError('ERR_ROUTE_METHOD', 'POST is not allowed here', { allow: 'GET' });
    assert.ok(e instanceof Error);
    assert.deepEqual(
      [e.name, e.code, e.detail, e.headers, e.route],
      ['PolicyError', 'ERR_ROUTE_METHOD', 'POST is not allowed here', { allow: 'GET' }, null],
    );
    assert.equal(e.message, 'ERR_ROUTE_METHOD: POST is not allowed here');
    assert.deepEqual(new PolicyError('ERR_INTERNAL', 'x').headers, {});
  });
});

describe('rescue', () => {
  for (const [code, status] of Object.entries(EXPECTED_STATUS) as [PolicyErrorCode, number][]) {
    test(`${code} → ${status} problem+json`, () => {
      const r = rescue(new PolicyError(code, 'what happened'), 'req-1');
      assert.equal(r.status, status);
      assert.equal(r.headers['content-type'], 'application/problem+json');
      assert.equal(r.headers['content-length'], String(Buffer.byteLength(r.body)));
      assert.equal(r.headers['x-request-id'], 'req-1');
      assert.equal(r.headers['cache-control'], 'no-store');
      assert.deepEqual(parse(r.body), {
        type: `https://tollgate.dev/errors#${code}`,
        title: RESCUE[code].title,
        status,
        detail: 'what happened',
        code,
        requestId: 'req-1',
      });
    });
  }

  test('the rescue table covers exactly the expected codes', () => {
    assert.deepEqual(Object.keys(RESCUE).sort(), Object.keys(EXPECTED_STATUS).sort());
  });

  test("the error's own headers are kept (Allow, WWW-Authenticate, Retry-After)", () => {
    const r = rescue(
      new PolicyError('ERR_RATE_LIMITED', 'rate limit exceeded', {
        'retry-after': '3',
        'ratelimit-remaining': '0',
      }),
      'req-2',
    );
    assert.equal(r.headers['retry-after'], '3');
    assert.equal(r.headers['ratelimit-remaining'], '0');
    const www = rescue(
      new PolicyError('ERR_AUTHN_INVALID_TOKEN', 'bad token', {
        'www-authenticate': 'Bearer error="invalid_token"',
      }),
      'r',
    );
    assert.equal(www.headers['www-authenticate'], 'Bearer error="invalid_token"');
  });

  test("an error's headers cannot override the framing headers", () => {
    const r = rescue(
      new PolicyError('ERR_AUTHZ_DENIED', 'no', {
        'content-type': 'text/html',
        'content-length': '0',
        'x-request-id': 'forged',
      }),
      'req-3',
    );
    assert.equal(r.headers['content-type'], 'application/problem+json');
    assert.equal(r.headers['content-length'], String(Buffer.byteLength(r.body)));
    assert.equal(r.headers['x-request-id'], 'req-3');
  });

  test('extensions join the problem body but never replace its standard members', () => {
    const errors = [{ in: 'body', pointer: '/quantity', message: 'must be <= 100' }];
    const r = rescue(
      new PolicyError('ERR_VALIDATION', 'invalid', {}, { errors, status: 200, code: 'OK', requestId: 'x' }),
      'req-5',
    );
    assert.deepEqual(parse(r.body), {
      type: 'https://tollgate.dev/errors#ERR_VALIDATION',
      title: 'Request validation failed',
      status: 400,
      detail: 'invalid',
      code: 'ERR_VALIDATION',
      requestId: 'req-5',
      errors,
    });
    assert.deepEqual(new PolicyError('ERR_INTERNAL', 'x').extensions, {});
  });

  test('content-length counts bytes, not characters', () => {
    const r = rescue(new PolicyError('ERR_AUTHZ_DENIED', 'nicht erlaubt: ü€'), 'r');
    assert.equal(Number(r.headers['content-length']), Buffer.byteLength(r.body, 'utf8'));
    assert.ok(Buffer.byteLength(r.body) > r.body.length);
  });

  const foreign: [what: string, error: unknown][] = [
    ['an Error with a secret in its message', new Error('connect ECONNREFUSED 10.0.0.7:5432 token=eyJhbGc')],
    ['a TypeError', new TypeError("Cannot read properties of undefined (reading 'x')")],
    ['a thrown string', 'secret-string'],
    ['undefined', undefined],
    ['an object with a PolicyError-like code', { code: 'ERR_AUTHZ_DENIED', detail: 'leak' }],
  ];
  for (const [what, error] of foreign) {
    test(`${what} → 500 without leaking it`, () => {
      const r = rescue(error, 'req-4');
      assert.equal(r.status, 500);
      const body = parse(r.body);
      assert.equal(body.code, 'ERR_INTERNAL');
      assert.equal(body.detail, 'the request could not be processed');
      for (const secret of [
        'ECONNREFUSED',
        '10.0.0.7',
        'eyJhbGc',
        'Cannot read',
        'secret-string',
        'leak',
        'at ',
      ]) {
        assert.ok(!r.body.includes(secret), secret);
      }
      assert.deepEqual(Object.keys(r.headers).sort(), [
        'cache-control',
        'content-length',
        'content-type',
        'x-request-id',
      ]);
    });
  }
});
