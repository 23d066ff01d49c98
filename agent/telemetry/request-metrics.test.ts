import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { Metrics } from '../../telemetry/metrics.ts';
import { PolicyError, type PolicyErrorCode } from '../errors.ts';
import { jwksFetches } from './channels.ts';
import { REQUEST_METRICS, RequestMetrics } from './request-metrics.ts';
import { begin, testTelemetry } from './test-records.ts';

describe('RequestMetrics', () => {
  const telemetry = testTelemetry();
  const metrics = new Metrics();
  const counted = new RequestMetrics(metrics, telemetry).subscribe();
  after(() => counted.close());

  function request(
    code: PolicyErrorCode | 'OK',
    status: number,
    facts: Partial<ReturnType<typeof begin>['facts']> = {},
    method = 'GET',
  ) {
    const r = begin(telemetry, { method });
    Object.assign(r.facts, { policy: 'shop/orders', route: 'get-order', routePath: '/v1/o/{id}', ...facts });
    if (code === 'OK')
      telemetry.planned(r, {
        route: r.facts.route,
        decision: 'allow',
        findings: [],
      } as unknown as Parameters<typeof telemetry.planned>[1]);
    else telemetry.denied(r, new PolicyError(code, 'x'));
    telemetry.end(r, status);
  }

  test('requests by route, decision, code and status class; the duration histogram by method, route, status', () => {
    request('OK', 200);
    request('OK', 204);
    request('ERR_AUTHZ_DENIED', 403);
    request('ERR_ROUTE_NOT_FOUND', 404, { route: null, routePath: null });
    request('OK', 200, {}, 'BREW');
    const get = (labels: Record<string, string>) => metrics.get(REQUEST_METRICS.requests, labels);
    assert.equal(get({ route: 'get-order', decision: 'allow', code: 'OK', status_class: '2xx' }), 3);
    assert.equal(
      get({ route: 'get-order', decision: 'deny', code: 'ERR_AUTHZ_DENIED', status_class: '4xx' }),
      1,
    );
    assert.equal(
      get({ route: '(none)', decision: 'deny', code: 'ERR_ROUTE_NOT_FOUND', status_class: '4xx' }),
      1,
    );
    const duration = (labels: Record<string, string>) => metrics.get(REQUEST_METRICS.duration, labels);
    const base = { 'http.request.method': 'GET', 'url.scheme': 'http' };
    assert.equal(duration({ ...base, 'http.response.status_code': '200', 'http.route': '/v1/o/{id}' }), 1);
    assert.equal(
      duration({ ...base, 'http.response.status_code': '404' }),
      1,
      'no route: no http.route label',
    );
    assert.equal(
      duration({
        'http.request.method': '_OTHER',
        'url.scheme': 'http',
        'http.response.status_code': '200',
        'http.route': '/v1/o/{id}',
      }),
      1,
      'an unknown method is _OTHER',
    );
    assert.match(metrics.render(), /^http_server_request_duration_seconds_bucket\{.*le="0.0025"\} 1$/m);
  });

  test('security counters: authn failures by reason, authz denials by route, limits by name; upstream errors', () => {
    request('ERR_AUTHN_INVALID_TOKEN', 401, { authnFailure: 'expired' });
    request('ERR_AUTHN_REQUIRED', 401, { authnFailure: 'missing' });
    request('ERR_RATE_LIMITED', 429, { limit: 'per-user' });
    request('ERR_UPSTREAM_TIMEOUT', 504);
    const m = (name: string, labels: Record<string, string>) => metrics.get(name, labels);
    assert.equal(m(REQUEST_METRICS.authnFailures, { policy: 'shop/orders', reason: 'expired' }), 1);
    assert.equal(m(REQUEST_METRICS.authnFailures, { policy: 'shop/orders', reason: 'missing' }), 1);
    assert.equal(m(REQUEST_METRICS.authzDenials, { policy: 'shop/orders', route: 'get-order' }), 1);
    assert.equal(m(REQUEST_METRICS.rateLimited, { policy: 'shop/orders', limit: 'per-user' }), 1);
    assert.equal(m(REQUEST_METRICS.upstreamErrors, { route: 'get-order', code: 'ERR_UPSTREAM_TIMEOUT' }), 1);
  });

  test("audit findings count as the failures they would have been; other agents' records are not counted", () => {
    const r = begin(telemetry);
    r.facts.policy = 'shop/orders';
    r.facts.route = 'get-order';
    telemetry.planned(r, {
      route: 'get-order',
      decision: 'audit-deny',
      findings: [new PolicyError('ERR_AUTHZ_DENIED', 'x')],
    } as unknown as Parameters<typeof telemetry.planned>[1]);
    telemetry.end(r, 200);
    assert.equal(metrics.get(REQUEST_METRICS.authzDenials, { policy: 'shop/orders', route: 'get-order' }), 2);
    const other = testTelemetry();
    const foreign = begin(other);
    other.end(foreign, 200);
    assert.equal(
      metrics.get(REQUEST_METRICS.requests, {
        route: '(none)',
        decision: 'deny',
        code: 'ERR_INTERNAL',
        status_class: '2xx',
      }),
      0,
    );
  });

  test('JWKS fetches and failures by URL', () => {
    jwksFetches.publish({ jwks: 'https://idp/jwks', ok: true, error: null, durationMs: 3 });
    jwksFetches.publish({ jwks: 'https://idp/jwks', ok: false, error: 'ERR_JWKS_TIMEOUT', durationMs: 3000 });
    assert.equal(metrics.get(REQUEST_METRICS.jwksFetches, { jwks: 'https://idp/jwks' }), 2);
    assert.equal(
      metrics.get(REQUEST_METRICS.jwksFailures, { jwks: 'https://idp/jwks', error: 'ERR_JWKS_TIMEOUT' }),
      1,
    );
  });
});
