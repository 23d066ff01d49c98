/**
 * decideRequest driven with real IncomingMessage objects: a node:http server on
 * loopback whose handler runs the pipeline and answers with the outcome as JSON,
 * and node:http requests, so request targets reach the pipeline exactly as sent.
 */
import assert from 'node:assert/strict';
import { createServer, type OutgoingHttpHeaders, type Server } from 'node:http';
import { after, before, beforeEach, describe, test } from 'node:test';
import { type CryptoKey, exportJWK, generateKeyPair, type JWTPayload, SignJWT } from 'jose';
import { compilePolicies } from '../../policy/compile/compile.ts';
import { PolicyEngine } from '../../policy/engine/engine.ts';
import { RateLimiter } from '../../policy/ratelimit/rate-limiter.ts';
import type { ApiPolicy, ApiPolicySpec, JwtProvider } from '../../policy/schema/api-policy.ts';
import { PolicyError, rescue } from '../errors.ts';
import { send } from '../proxy/test-clients.ts';
import { closeServer, listen } from '../proxy/test-support.ts';
import { bundleStates } from './bundle-state.ts';
import { decideRequest, type PipelineEnv } from './decide-request.ts';

const ISSUER = 'https://login.example.com/';
const AUDIENCE = 'orders-api';
/** Between the legacy route's deprecation (2026-01-01) and its sunset (2027-01-01). */
const T0 = Date.UTC(2026, 6, 1);
const SINCE_S = Date.UTC(2026, 0, 1) / 1000;
const SUNSET = Date.UTC(2027, 0, 1);

const clock = { ms: T0 };
const now = () => clock.ms;

interface ErrorView {
  code: string;
  status: number;
  detail: string;
  route: string | null;
  headers: Record<string, string>;
  /** Only when the error has some (validation violations). */
  extensions?: Record<string, unknown>;
}

interface PlanView {
  kind: 'plan';
  policy: string;
  route: string | null;
  path: string;
  headers: Record<string, string | string[]>;
  timeoutMs: number;
  responseHeaders: Record<string, string>;
  findings: ErrorView[];
  decision: string;
}

type Outcome = PlanView | ({ kind: 'error' } & ErrorView) | { kind: 'crash'; message: string };

function errorView(e: unknown): ErrorView | { message: string } {
  if (!(e instanceof PolicyError)) return { message: String(e) };
  const { status } = rescue(e, 'r');
  const extensions = Object.keys(e.extensions).length > 0 ? { extensions: { ...e.extensions } } : {};
  return { code: e.code, status, detail: e.detail, route: e.route, headers: { ...e.headers }, ...extensions };
}

interface Current {
  engine: PolicyEngine | null;
  env: PipelineEnv;
  clientIp: string | null;
}

function freshEnv(): PipelineEnv {
  return { port: null, limiter: new RateLimiter({ now }), now, state: states };
}

const states = bundleStates({ now });
const current: Current = { engine: null, env: freshEnv(), clientIp: null };

const server: Server = createServer((req, res) => {
  const info = {
    req,
    requestId: 'req-1',
    clientIp: current.clientIp ?? req.socket.remoteAddress ?? '',
    proto: 'http' as const,
    peerId: null,
  };
  // In a header too, so that HEAD requests get it.
  const answer = (o: Outcome) => {
    const json = JSON.stringify(o);
    res.writeHead(200, {
      'content-type': 'application/json',
      'x-outcome': Buffer.from(json).toString('base64url'),
    });
    res.end(json);
  };
  decideRequest(current.engine, info, current.env).then(
    (plan) =>
      answer({
        kind: 'plan',
        policy: plan.policy.ref.name,
        route: plan.route,
        path: plan.path,
        headers: plan.headers,
        timeoutMs: plan.timeoutMs,
        responseHeaders: plan.responseHeaders,
        findings: plan.findings.map((f) => errorView(f) as ErrorView),
        decision: plan.decision,
      }),
    (e: unknown) => {
      const v = errorView(e);
      answer('code' in v ? { kind: 'error', ...v } : { kind: 'crash', message: v.message });
    },
  );
});
let port = 0;

async function decide(
  engine: PolicyEngine | null,
  path: string,
  options: { method?: string; headers?: OutgoingHttpHeaders } = {},
): Promise<Outcome> {
  current.engine = engine;
  const r = await send(port, { path, method: options.method ?? 'GET', headers: options.headers ?? {} });
  assert.equal(r.status, 200, r.body);
  return JSON.parse(Buffer.from(String(r.headers['x-outcome']), 'base64url').toString()) as Outcome;
}

function planOf(o: Outcome): PlanView {
  assert.equal(o.kind, 'plan', JSON.stringify(o));
  return o as PlanView;
}

function errorOf(o: Outcome, code: string): ErrorView {
  assert.equal(o.kind, 'error', JSON.stringify(o));
  const e = o as ErrorView;
  assert.equal(e.code, code, JSON.stringify(o));
  return e;
}

const codes = (p: PlanView) => p.findings.map((f) => f.code);

// --- policies -----------------------------------------------------------------

function apiPolicy(spec: ApiPolicySpec, name = 'orders'): ApiPolicy {
  return {
    apiVersion: 'tollgate.dev/v1alpha1',
    kind: 'ApiPolicy',
    metadata: { name, namespace: 'shop' },
    spec,
  };
}

function ordersSpec(jwks: string, extra: Partial<ApiPolicySpec> = {}): ApiPolicySpec {
  const corp: JwtProvider = {
    name: 'corp',
    issuer: ISSUER,
    jwks,
    audiences: [AUDIENCE],
    algorithms: ['ES256'],
    claimHeaders: [
      { claim: 'sub', header: 'x-user-id' },
      { claim: 'org', header: 'X-Org' },
    ],
  };
  return {
    jwt: [corp],
    rateLimits: [
      { name: 'per-ip', key: { ip: {} }, limit: 2, period: '1m' },
      { name: 'quiet', key: { ip: {} }, limit: 1, period: '1m', exposeHeaders: false },
      { name: 'per-user', key: { claim: 'sub' }, limit: 1, period: '1m' },
    ],
    routes: [
      { name: 'health', methods: ['GET'], path: '/healthz', public: true },
      {
        name: 'get-order',
        methods: ['GET', 'HEAD'],
        path: '/v1/users/{userId}/orders/{orderId}',
        allow: [{ jwt: 'corp', when: 'params.userId == claims.sub' }],
        timeout: '5s',
      },
      { name: 'admin', methods: ['GET'], path: '/v1/admin', allow: [{ claims: { roles: ['admin'] } }] },
      { name: 'closed', methods: ['GET'], path: '/v1/closed' },
      { name: 'things-read', methods: ['GET'], path: '/v1/things', public: true },
      { name: 'things-write', methods: ['PUT', 'DELETE'], path: '/v1/things', public: true },
      { name: 'limited', methods: ['GET'], path: '/v1/limited', public: true, rateLimit: 'per-ip' },
      { name: 'quiet', methods: ['GET'], path: '/v1/quiet', public: true, rateLimit: 'quiet' },
      {
        name: 'mine',
        methods: ['GET'],
        path: '/v1/mine',
        allow: [{ jwt: 'corp' }],
        rateLimit: ['per-user', 'per-ip'],
      },
      {
        name: 'legacy',
        methods: ['GET'],
        path: '/v0/**',
        public: true,
        deprecation: { since: '2026-01-01', sunset: '2027-01-01', link: 'https://docs.example.com/migrate' },
      },
    ],
    ...extra,
  };
}

function hiddenTokenSpec(jwks: string): ApiPolicySpec {
  return {
    jwt: [
      {
        name: 'corp',
        issuer: ISSUER,
        jwks,
        audiences: [AUDIENCE],
        algorithms: ['ES256'],
        forwardToken: false,
        from: [{ header: 'Authorization', prefix: 'Bearer ' }, { cookie: 'session' }],
      },
    ],
    routes: [{ name: 'me', methods: ['GET'], path: '/v1/me', allow: [{ jwt: 'corp' }] }],
  };
}

function engineOf(...policies: ApiPolicy[]): PolicyEngine {
  const r = compilePolicies(policies);
  const errors = r.diagnostics.filter((d) => d.severity === 'error');
  assert.deepEqual(errors, []);
  return PolicyEngine.load(r.bundle);
}

// --- tokens ---------------------------------------------------------------------

let signingKey: CryptoKey;
let otherKey: CryptoKey;
let enforce: PolicyEngine;
let audit: PolicyEngine;
let open: PolicyEngine;
let hidden: PolicyEngine;

async function token(
  claims: JWTPayload = {},
  options: { key?: CryptoKey; ttlS?: number } = {},
): Promise<string> {
  const iat = Math.floor(clock.ms / 1000);
  return new SignJWT({ sub: 'alice', org: 'acme', ...claims })
    .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
    .setIssuer(typeof claims.iss === 'string' ? claims.iss : ISSUER)
    .setAudience(claims.aud ?? AUDIENCE)
    .setIssuedAt(iat)
    .setExpirationTime(iat + (options.ttlS ?? 600))
    .sign(options.key ?? signingKey);
}

const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

before(async () => {
  const pair = await generateKeyPair('ES256');
  signingKey = pair.privateKey;
  otherKey = (await generateKeyPair('ES256')).privateKey;
  const jwks = JSON.stringify({ keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256' }] });
  enforce = engineOf(apiPolicy(ordersSpec(jwks)));
  audit = engineOf(apiPolicy(ordersSpec(jwks, { mode: 'Audit' })));
  open = engineOf(apiPolicy(ordersSpec(jwks, { unmatched: 'Allow' })));
  hidden = engineOf(apiPolicy(hiddenTokenSpec(jwks), 'hidden'));
  port = await listen(server);
});
after(() => closeServer(server));
beforeEach(() => {
  clock.ms = T0;
  current.env = freshEnv();
  current.clientIp = null;
});

// --- tests ----------------------------------------------------------------------

describe('decideRequest: no policy', () => {
  test('no engine → ERR_NO_POLICY (503)', async () => {
    const e = errorOf(await decide(null, '/healthz'), 'ERR_NO_POLICY');
    assert.equal(e.status, 503);
  });

  test('an engine without a policy for this port → ERR_POLICY_NONE (403): denied, not "not loaded"', async () => {
    const only9090 = engineOf(apiPolicy({ port: 9090, routes: [{ name: 'h', path: '/h', public: true }] }));
    current.env = { ...freshEnv(), port: 8080 };
    assert.equal(errorOf(await decide(only9090, '/h'), 'ERR_POLICY_NONE').status, 403);
    current.env = { ...freshEnv(), port: 9090 };
    assert.equal(planOf(await decide(only9090, '/h')).route, 'h');
  });

  test('an empty bundle (no policy selects the workload) → ERR_POLICY_NONE (403) on every request', async () => {
    const empty = engineOf();
    assert.equal(empty.bundle.policies.length, 0);
    for (const target of ['/healthz', '/', '/v1/anything']) {
      const e = errorOf(await decide(empty, target), 'ERR_POLICY_NONE');
      assert.equal(e.status, 403);
    }
  });
});

describe('decideRequest: normalize and route', () => {
  const badTargets = ['/../healthz', '/v1/users/a%2Fb/orders/1', '/a%5Cb', '/a%00', 'http://x/healthz', '*'];
  for (const target of badTargets) {
    test(`${target} → ERR_PATH_INVALID (400), in Enforce and in Audit mode`, async () => {
      for (const engine of [enforce, audit, open]) {
        const e = errorOf(await decide(engine, target), 'ERR_PATH_INVALID');
        assert.equal(e.status, 400);
        assert.equal(e.route, null);
      }
    });
  }

  const methods: [method: string, path: string, allow: string][] = [
    ['POST', '/healthz', 'GET'],
    ['HEAD', '/healthz', 'GET'],
    ['TRACE', '/v0/anything', 'GET'],
    ['POST', '/v1/things', 'DELETE, GET, PUT'],
  ];
  for (const [method, path, allow] of methods) {
    test(`${method} ${path} → 405 with Allow: ${allow}`, async () => {
      const e = errorOf(await decide(enforce, path, { method }), 'ERR_ROUTE_METHOD');
      assert.deepEqual([e.status, e.headers, e.route], [405, { allow }, null]);
    });
  }

  test('an undeclared path → 404 under unmatched: Deny', async () => {
    const e = errorOf(await decide(enforce, '/v2/orders'), 'ERR_ROUTE_NOT_FOUND');
    assert.deepEqual([e.status, e.route], [404, null]);
    errorOf(await decide(enforce, '/HEALTHZ'), 'ERR_ROUTE_NOT_FOUND');
  });

  test('an undeclared path is forwarded under unmatched: Allow, as undeclared', async () => {
    const p = planOf(await decide(open, '/v2//orders/./x/../7?b=2&a=1'));
    assert.deepEqual(
      [p.decision, p.route, p.path, p.findings, p.timeoutMs],
      ['undeclared', null, '/v2/orders/7?b=2&a=1', [], 30_000],
    );
  });

  test('OPTIONS * matches no route: 404 under Deny, forwarded as * under Allow', async () => {
    errorOf(await decide(enforce, '*', { method: 'OPTIONS' }), 'ERR_ROUTE_NOT_FOUND');
    const p = planOf(await decide(open, '*', { method: 'OPTIONS' }));
    assert.deepEqual([p.decision, p.path], ['undeclared', '*']);
  });

  test('a declared path with an undeclared method is still 405 under unmatched: Allow', async () => {
    errorOf(await decide(open, '/healthz', { method: 'DELETE' }), 'ERR_ROUTE_METHOD');
  });

  const paths: [target: string, route: string, path: string][] = [
    ['/healthz', 'health', '/healthz'],
    ['/health%7A', 'health', '/healthz'],
    ['//healthz', 'health', '/healthz'],
    ['/v0/a/../b/?x=%2F&y', 'legacy', '/v0/b/?x=%2F&y'],
    ['/healthz?', 'health', '/healthz?'],
    ['/v1/things?q=a+b&q=%20c', 'things-read', '/v1/things?q=a+b&q=%20c'],
  ];
  for (const [target, route, path] of paths) {
    test(`plan.path of ${target} is ${path}`, async () => {
      const p = planOf(await decide(enforce, target));
      assert.deepEqual([p.route, p.path, p.decision], [route, path, 'allow']);
    });
  }

  test('plan.path for an authorized route: the normalized path and the original query', async () => {
    const p = planOf(
      await decide(enforce, '/v1//users/alice/./orders/x/../7?b=2&a=%20', { headers: bearer(await token()) }),
    );
    assert.deepEqual([p.route, p.path], ['get-order', '/v1/users/alice/orders/7?b=2&a=%20']);
  });

  test('timeoutMs is the route timeout, else 30 s', async () => {
    const order = planOf(
      await decide(enforce, '/v1/users/alice/orders/1', { headers: bearer(await token()) }),
    );
    assert.equal(order.timeoutMs, 5_000);
    assert.equal(planOf(await decide(enforce, '/healthz')).timeoutMs, 30_000);
  });
});

describe('decideRequest: deprecation and sunset', () => {
  test('before the sunset: Deprecation, Sunset and Link response headers', async () => {
    const p = planOf(await decide(enforce, '/v0/orders/1'));
    assert.equal(p.route, 'legacy');
    assert.deepEqual(p.responseHeaders, {
      deprecation: `@${SINCE_S}`,
      sunset: 'Fri, 01 Jan 2027 00:00:00 GMT',
      link: '<https://docs.example.com/migrate>; rel="deprecation"',
    });
  });

  test('a route without deprecation has no such headers', async () => {
    assert.deepEqual(planOf(await decide(enforce, '/healthz')).responseHeaders, {});
  });

  test('after the sunset → 410 ERR_ROUTE_SUNSET naming the route', async () => {
    clock.ms = SUNSET + 1;
    const e = errorOf(await decide(enforce, '/v0/orders/1'), 'ERR_ROUTE_SUNSET');
    assert.deepEqual([e.status, e.route], [410, 'legacy']);
  });

  test('the sunset is checked before authentication (an invalid token still gets 410)', async () => {
    clock.ms = SUNSET + 1;
    errorOf(await decide(enforce, '/v0/orders/1', { headers: bearer('not-a-jwt') }), 'ERR_ROUTE_SUNSET');
  });
});

describe('decideRequest: authentication', () => {
  const invalid: [what: string, make: () => Promise<string>][] = [
    ['not a JWT', async () => 'not-a-jwt'],
    ['signed by another key', () => token({}, { key: otherKey })],
    ['expired beyond the clock skew', () => token({}, { ttlS: -60 })],
    ['for another audience', () => token({ aud: 'billing-api' })],
    ['from another issuer', () => token({ iss: 'https://evil.example.com/' })],
  ];
  for (const [what, make] of invalid) {
    test(`a token ${what} → 401 ERR_AUTHN_INVALID_TOKEN, even on a public route`, async () => {
      const t = await make();
      const e = errorOf(await decide(enforce, '/healthz', { headers: bearer(t) }), 'ERR_AUTHN_INVALID_TOKEN');
      assert.deepEqual(
        [e.status, e.route, e.headers],
        [401, 'health', { 'www-authenticate': 'Bearer error="invalid_token"' }],
      );
      assert.ok(!JSON.stringify(e).includes(t), 'the token is never echoed');
    });
  }

  test('an empty Bearer credential is an invalid token', async () => {
    errorOf(
      await decide(enforce, '/healthz', { headers: { authorization: 'Bearer ' } }),
      'ERR_AUTHN_INVALID_TOKEN',
    );
  });

  test('an invalid token on an undeclared path under unmatched: Allow is refused too', async () => {
    errorOf(await decide(open, '/v2/x', { headers: bearer('not-a-jwt') }), 'ERR_AUTHN_INVALID_TOKEN');
  });

  test('no token where one is required → 401 ERR_AUTHN_REQUIRED with WWW-Authenticate: Bearer', async () => {
    for (const [path, route] of [
      ['/v1/users/alice/orders/1', 'get-order'],
      ['/v1/admin', 'admin'],
    ]) {
      const e = errorOf(await decide(enforce, path ?? ''), 'ERR_AUTHN_REQUIRED');
      assert.deepEqual([e.status, e.route, e.headers], [401, route, { 'www-authenticate': 'Bearer' }]);
    }
  });

  test('a claim value with CR/LF for a claim header → ERR_AUTHN_INVALID_TOKEN', async () => {
    for (const sub of ['alice\r\nx-admin: 1', 'alice\nx', 'alice\u0000']) {
      const t = await token({ sub });
      const e = errorOf(await decide(enforce, '/healthz', { headers: bearer(t) }), 'ERR_AUTHN_INVALID_TOKEN');
      assert.equal(e.headers['www-authenticate'], 'Bearer error="invalid_token"');
    }
  });
});

describe('decideRequest: authorization', () => {
  test('a valid token that does not satisfy the rule → 403 ERR_AUTHZ_DENIED naming the route', async () => {
    const t = await token();
    const e = errorOf(
      await decide(enforce, '/v1/users/bob/orders/1', { headers: bearer(t) }),
      'ERR_AUTHZ_DENIED',
    );
    assert.deepEqual([e.status, e.route, e.headers], [403, 'get-order', {}]);
    errorOf(await decide(enforce, '/v1/admin', { headers: bearer(t) }), 'ERR_AUTHZ_DENIED');
  });

  test('a route with neither allow nor public denies with 403, token or not', async () => {
    errorOf(await decide(enforce, '/v1/closed'), 'ERR_AUTHZ_DENIED');
    errorOf(await decide(enforce, '/v1/closed', { headers: bearer(await token()) }), 'ERR_AUTHZ_DENIED');
  });

  test('the owner and an admin are allowed', async () => {
    const order = planOf(
      await decide(enforce, '/v1/users/alice/orders/1', { headers: bearer(await token()) }),
    );
    assert.equal(order.decision, 'allow');
    const admin = await token({ sub: 'root', roles: ['admin'] });
    assert.equal(planOf(await decide(enforce, '/v1/admin', { headers: bearer(admin) })).route, 'admin');
  });
});

describe('decideRequest: rate limits', () => {
  test('responses carry the headers; the refusal is 429 with Retry-After and the same headers', async () => {
    const first = planOf(await decide(enforce, '/v1/limited'));
    assert.deepEqual(first.responseHeaders, {
      'ratelimit-limit': '2',
      'ratelimit-remaining': '1',
      'ratelimit-reset': '0',
      'x-ratelimit-limit': '2',
      'x-ratelimit-remaining': '1',
      'x-ratelimit-reset': String(T0 / 1000),
    });
    const second = planOf(await decide(enforce, '/v1/limited'));
    assert.equal(second.responseHeaders['ratelimit-remaining'], '0');
    assert.equal(second.responseHeaders['ratelimit-reset'], '30');
    const e = errorOf(await decide(enforce, '/v1/limited'), 'ERR_RATE_LIMITED');
    assert.deepEqual([e.status, e.route], [429, 'limited']);
    assert.deepEqual(e.headers, {
      'retry-after': '30',
      'ratelimit-limit': '2',
      'ratelimit-remaining': '0',
      'ratelimit-reset': '30',
      'x-ratelimit-limit': '2',
      'x-ratelimit-remaining': '0',
      'x-ratelimit-reset': String(T0 / 1000 + 30),
    });
    assert.equal(e.detail, 'rate limit per-ip exceeded');
    clock.ms += 30_000;
    assert.equal(planOf(await decide(enforce, '/v1/limited')).route, 'limited', 'a token refilled');
  });

  test('exposeHeaders: false → no headers on success, only Retry-After on the 429', async () => {
    assert.deepEqual(planOf(await decide(enforce, '/v1/quiet')).responseHeaders, {});
    const e = errorOf(await decide(enforce, '/v1/quiet'), 'ERR_RATE_LIMITED');
    assert.deepEqual(e.headers, { 'retry-after': '60' });
  });

  test('buckets are per client IP', async () => {
    current.clientIp = '203.0.113.1';
    planOf(await decide(enforce, '/v1/quiet'));
    current.clientIp = '203.0.113.2';
    planOf(await decide(enforce, '/v1/quiet'));
    errorOf(await decide(enforce, '/v1/quiet'), 'ERR_RATE_LIMITED');
  });

  test('a limit keyed by a header: one bucket per value, and one for requests without it', async () => {
    const keyed = engineOf(
      apiPolicy({
        rateLimits: [{ name: 'per-key', key: { header: 'X-Api-Key' }, limit: 1, period: '1m' }],
        routes: [{ name: 'api', methods: ['GET'], path: '/v1/api', public: true, rateLimit: 'per-key' }],
      }),
    );
    const withKey = (k: string) => ({ headers: { 'x-api-key': k } });
    planOf(await decide(keyed, '/v1/api', withKey('a')));
    errorOf(await decide(keyed, '/v1/api', withKey('a')), 'ERR_RATE_LIMITED');
    planOf(await decide(keyed, '/v1/api', withKey('b')));
    planOf(await decide(keyed, '/v1/api'));
    errorOf(await decide(keyed, '/v1/api'), 'ERR_RATE_LIMITED');
  });

  test('several limits: the headers report the one closest to refusing', async () => {
    const alice = bearer(await token());
    const p = planOf(await decide(enforce, '/v1/mine', { headers: alice }));
    assert.equal(p.responseHeaders['ratelimit-limit'], '1', 'per-user (0 left), not per-ip (1 left)');
    assert.equal(p.responseHeaders['ratelimit-remaining'], '0');
    const e = errorOf(await decide(enforce, '/v1/mine', { headers: alice }), 'ERR_RATE_LIMITED');
    assert.equal(e.detail, 'rate limit per-user exceeded');
    assert.equal(e.headers['ratelimit-limit'], '1');
    const bob = bearer(await token({ sub: 'bob' }));
    current.clientIp = '203.0.113.7';
    assert.equal(planOf(await decide(enforce, '/v1/mine', { headers: bob })).route, 'mine', 'another user');
  });

  test('a request refused by one limit does not spend the tokens of the others', async () => {
    const alice = bearer(await token());
    planOf(await decide(enforce, '/v1/mine', { headers: alice })); // per-user 0 left, per-ip 1 left
    errorOf(await decide(enforce, '/v1/mine', { headers: alice }), 'ERR_RATE_LIMITED'); // per-user refuses
    // per-ip should still hold its last token for this client
    planOf(await decide(enforce, '/v1/limited'));
  });

  test('a denied request (401) spends no rate-limit token', async () => {
    errorOf(await decide(enforce, '/v1/mine'), 'ERR_AUTHN_REQUIRED');
    errorOf(await decide(enforce, '/v1/mine'), 'ERR_AUTHN_REQUIRED');
    const p = planOf(await decide(enforce, '/v1/limited'));
    assert.equal(p.responseHeaders['ratelimit-remaining'], '1');
  });
});

describe('decideRequest: upstream headers', () => {
  test('claim headers are set from verified claims; client copies and x-forwarded-client-cert are stripped', async () => {
    current.clientIp = '203.0.113.9';
    const p = planOf(
      await decide(enforce, '/v1/users/alice/orders/1', {
        headers: {
          ...bearer(await token()),
          'X-User-Id': 'mallory',
          'x-org': 'evil',
          'x-forwarded-client-cert': 'By=spiffe://forged',
          'x-forwarded-for': '10.9.9.9',
          forwarded: 'for=10.9.9.9',
          'x-app-header': 'kept',
        },
      }),
    );
    assert.equal(p.headers['x-user-id'], 'alice');
    assert.equal(p.headers['x-org'], 'acme');
    assert.equal(p.headers['x-forwarded-client-cert'], undefined);
    assert.equal(p.headers['x-forwarded-for'], '203.0.113.9');
    assert.equal(p.headers.forwarded, `for=203.0.113.9;proto=http;host="127.0.0.1:${port}"`);
    assert.equal(p.headers['x-forwarded-proto'], 'http');
    assert.equal(p.headers['x-request-id'], 'req-1');
    assert.equal(p.headers['x-app-header'], 'kept');
    assert.ok(String(p.headers.authorization).startsWith('Bearer '), 'forwardToken defaults to true');
  });

  test('without a token, client copies of claim headers are stripped and nothing is set', async () => {
    const p = planOf(
      await decide(enforce, '/healthz', { headers: { 'x-user-id': 'mallory', 'x-org': 'evil' } }),
    );
    assert.equal(p.headers['x-user-id'], undefined);
    assert.equal(p.headers['x-org'], undefined);
    assert.equal(p.headers['x-forwarded-for'], '127.0.0.1');
    current.clientIp = '::ffff:198.51.100.4';
    const mapped = planOf(await decide(enforce, '/healthz'));
    assert.equal(mapped.headers['x-forwarded-for'], '198.51.100.4');
  });

  test('a claim the token does not carry sets no header (and the client copy is still stripped)', async () => {
    const t = await token({ org: undefined });
    const p = planOf(await decide(enforce, '/healthz', { headers: { ...bearer(t), 'x-org': 'evil' } }));
    assert.equal(p.headers['x-user-id'], 'alice');
    assert.equal(p.headers['x-org'], undefined);
  });

  test('forwardToken: false strips the Authorization header', async () => {
    const p = planOf(
      await decide(hidden, '/v1/me', { headers: { ...bearer(await token()), 'x-other': '1' } }),
    );
    assert.deepEqual([p.route, p.headers.authorization, p.headers['x-other']], ['me', undefined, '1']);
  });

  test('forwardToken: false with a cookie token removes just that cookie', async () => {
    const t = await token();
    const p = planOf(
      await decide(hidden, '/v1/me', {
        headers: { cookie: `theme=dark; session=${t}; lang=en`, authorization: 'Basic Zm9vOmJhcg==' },
      }),
    );
    assert.equal(p.headers.cookie, 'theme=dark; lang=en');
    assert.equal(p.headers.authorization, 'Basic Zm9vOmJhcg==', 'not the token: forwarded');
    const only = planOf(await decide(hidden, '/v1/me', { headers: { cookie: `session=${t}` } }));
    assert.equal(only.headers.cookie, undefined);
  });
});

describe('decideRequest: Audit mode', () => {
  test('an authorization denial becomes a finding; the plan still forwards with no response header', async () => {
    const p = planOf(await decide(audit, '/v1/users/bob/orders/1?x=1', { headers: bearer(await token()) }));
    assert.deepEqual(
      [p.decision, p.route, p.path, p.timeoutMs],
      ['audit-deny', 'get-order', '/v1/users/bob/orders/1?x=1', 5_000],
    );
    assert.deepEqual(p.findings, [
      {
        code: 'ERR_AUTHZ_DENIED',
        status: 403,
        detail: 'the caller is not allowed to do this',
        route: 'get-order',
        headers: {},
      },
    ]);
    assert.deepEqual(p.responseHeaders, {});
    assert.equal(p.headers['x-user-id'], 'alice');
  });

  const single: [what: string, path: string, method: string, code: string, route: string | null][] = [
    ['an undeclared path', '/v2/x', 'GET', 'ERR_ROUTE_NOT_FOUND', null],
    ['an undeclared method', '/healthz', 'PUT', 'ERR_ROUTE_METHOD', null],
    ['a missing token', '/v1/users/alice/orders/1', 'GET', 'ERR_AUTHN_REQUIRED', 'get-order'],
    ['a closed route', '/v1/closed', 'GET', 'ERR_AUTHZ_DENIED', 'closed'],
  ];
  for (const [what, path, method, code, route] of single) {
    test(`${what} → finding ${code}, forwarded`, async () => {
      const p = planOf(await decide(audit, path, { method }));
      assert.deepEqual(
        [p.decision, p.route, codes(p), p.findings[0]?.route],
        ['audit-deny', route, [code], route],
      );
      assert.equal(p.path, path);
    });
  }

  test('the 405 finding keeps its Allow header', async () => {
    const p = planOf(await decide(audit, '/healthz', { method: 'PUT' }));
    assert.deepEqual(p.findings[0]?.headers, { allow: 'GET' });
  });

  test('every denial of one request is a finding: sunset and an invalid token', async () => {
    clock.ms = SUNSET + 1;
    const p = planOf(
      await decide(audit, '/v0/orders/1', { headers: { ...bearer('not-a-jwt'), 'x-user-id': 'mallory' } }),
    );
    assert.deepEqual(codes(p), ['ERR_ROUTE_SUNSET', 'ERR_AUTHN_INVALID_TOKEN']);
    assert.deepEqual(
      p.findings.map((f) => f.route),
      ['legacy', 'legacy'],
    );
    assert.deepEqual(p.responseHeaders, {}, 'no deprecation header in Audit mode');
    assert.equal(p.headers['x-user-id'], undefined, 'forged identity is still stripped');
    assert.equal(p.headers.authorization, 'Bearer not-a-jwt', 'the request passes unchanged');
  });

  test('a bad claim value is a finding; the claim header is not set', async () => {
    const p = planOf(await decide(audit, '/healthz', { headers: bearer(await token({ sub: 'a\r\nb' })) }));
    assert.deepEqual(codes(p), ['ERR_AUTHN_INVALID_TOKEN']);
    assert.equal(p.headers['x-user-id'], undefined);
  });

  test('rate limits are counted; the refusal is a finding; no rate-limit header is added', async () => {
    const first = planOf(await decide(audit, '/v1/limited'));
    assert.deepEqual([first.decision, first.responseHeaders], ['allow', {}]);
    planOf(await decide(audit, '/v1/limited'));
    const third = planOf(await decide(audit, '/v1/limited'));
    assert.deepEqual(
      [third.decision, codes(third), third.responseHeaders],
      ['audit-deny', ['ERR_RATE_LIMITED'], {}],
    );
    assert.equal(third.findings[0]?.headers['retry-after'], '30');
    assert.equal(third.findings[0]?.route, 'limited');
  });

  test('deprecation headers are not added before the sunset either', async () => {
    const p = planOf(await decide(audit, '/v0/orders/1'));
    assert.deepEqual([p.decision, p.responseHeaders], ['allow', {}]);
  });

  test('an allowed request has no findings', async () => {
    const p = planOf(await decide(audit, '/v1/users/alice/orders/1', { headers: bearer(await token()) }));
    assert.deepEqual([p.decision, p.findings], ['allow', []]);
  });
});

describe('decideRequest: validation of the request head', () => {
  const spec = (mode: 'Enforce' | 'Audit'): ApiPolicySpec => ({
    mode,
    rateLimits: [{ name: 'per-ip', key: { ip: {} }, limit: 1, period: '1m' }],
    routes: [
      {
        name: 'create',
        methods: ['POST'],
        path: '/v1/orders',
        public: true,
        rateLimit: 'per-ip',
        deprecation: { since: '2026-01-01' },
        request: {
          maxBodyBytes: 100,
          contentTypes: ['application/json'],
          query: { type: 'object', properties: { dryRun: { enum: ['true', 'false'] } } },
          body: { type: 'object' },
        },
      },
    ],
  });
  const json = { 'content-type': 'application/json', 'content-length': '2' };

  test('undeclared traffic under unmatched: Allow keeps the defaults.maxBodyBytes limit', async () => {
    const open = engineOf(
      apiPolicy({ ...spec('Enforce'), unmatched: 'Allow', defaults: { maxBodyBytes: 50 } }, 'open'),
    );
    const big = errorOf(
      await decide(open, '/v1/elsewhere', { method: 'POST', headers: { ...json, 'content-length': '51' } }),
      'ERR_BODY_TOO_LARGE',
    );
    assert.equal(big.status, 413);
    current.env = freshEnv();
    const ok = await decide(open, '/v1/elsewhere', {
      method: 'POST',
      headers: { ...json, 'content-length': '50' },
    });
    assert.equal((ok as { decision?: string }).decision, 'undeclared');
  });

  test('Content-Length over the limit → 413; wrong type → 415; bad query → 400 with violations', async () => {
    const engine = engineOf(apiPolicy(spec('Enforce'), 'validated'));
    const big = errorOf(
      await decide(engine, '/v1/orders', { method: 'POST', headers: { ...json, 'content-length': '101' } }),
      'ERR_BODY_TOO_LARGE',
    );
    assert.deepEqual([big.status, big.route], [413, 'create']);
    assert.ok(big.headers.deprecation, 'route headers are on validation denials too');
    current.env = freshEnv();
    const type = errorOf(
      await decide(engine, '/v1/orders', {
        method: 'POST',
        headers: { ...json, 'content-type': 'text/xml' },
      }),
      'ERR_MEDIA_TYPE',
    );
    assert.equal(type.status, 415);
    current.env = freshEnv();
    const query = errorOf(
      await decide(engine, '/v1/orders?dryRun=yes', { method: 'POST', headers: json }),
      'ERR_VALIDATION',
    );
    assert.equal(query.status, 400);
    assert.deepEqual(query.extensions, {
      errors: [{ in: 'query', pointer: '/dryRun', message: 'must be equal to one of the allowed values' }],
    });
    current.env = freshEnv();
    const plan = planOf(await decide(engine, '/v1/orders?dryRun=true', { method: 'POST', headers: json }));
    assert.equal(plan.decision, 'allow');
  });

  test('validation comes after rate limiting: a limited request gets 429, not 400', async () => {
    const engine = engineOf(apiPolicy(spec('Enforce'), 'validated'));
    planOf(await decide(engine, '/v1/orders', { method: 'POST', headers: json }));
    errorOf(
      await decide(engine, '/v1/orders?dryRun=yes', { method: 'POST', headers: json }),
      'ERR_RATE_LIMITED',
    );
  });

  test('Audit: every head violation is a finding, the request goes on', async () => {
    const engine = engineOf(apiPolicy(spec('Audit'), 'validated'));
    const p = planOf(
      await decide(engine, '/v1/orders?dryRun=yes', {
        method: 'POST',
        headers: { 'content-type': 'text/xml', 'content-length': '500' },
      }),
    );
    assert.deepEqual(
      [p.decision, codes(p)],
      ['audit-deny', ['ERR_BODY_TOO_LARGE', 'ERR_MEDIA_TYPE', 'ERR_VALIDATION']],
    );
  });
});
