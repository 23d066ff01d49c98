import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import type { CompiledRateLimit, PolicyBundle } from '../compile/bundle.ts';
import { compilePolicies } from '../compile/compile.ts';
import { type Admitter, RateLimiter } from '../ratelimit/rate-limiter.ts';
import type { ApiPolicy, ApiPolicySpec } from '../schema/api-policy.ts';
import type { Identity } from './authorize.ts';
import { type Decision, type DecisionCode, decide, type RequestFacts, rateLimitKey } from './decide.ts';
import { PolicyEngine } from './engine.ts';

const ORDERS = parse(
  readFileSync(new URL('../testdata/compile/orders.in.yaml', import.meta.url), 'utf8'),
) as ApiPolicy;

function engineOf(...docs: ApiPolicy[]): PolicyEngine {
  const r = compilePolicies(docs);
  assert.ok(r.bundle, JSON.stringify(r.diagnostics));
  return PolicyEngine.load(r.bundle);
}

function policy(spec: Partial<ApiPolicySpec>, name = 'p'): ApiPolicy {
  return {
    apiVersion: 'tollgate.dev/v1alpha1',
    kind: 'ApiPolicy',
    metadata: { name, namespace: 'shop' },
    spec: { routes: [], ...spec },
  };
}

const orders = engineOf(ORDERS);
const audit = engineOf({ ...ORDERS, spec: { ...ORDERS.spec, mode: 'Audit' } });
const open = engineOf({ ...ORDERS, spec: { ...ORDERS.spec, unmatched: 'Allow' } });

const alice: Identity = { provider: 'corp', claims: { sub: 'alice', scope: 'orders:read' } };
const admin: Identity = {
  provider: 'corp',
  claims: { sub: 'root', roles: ['admin'], scp: ['orders:admin'] },
};
const writer: Identity = { provider: 'corp', claims: { sub: 'alice', scope: 'orders:read orders:write' } };
const BILLING = 'spiffe://cluster.local/ns/shop/sa/billing';
const BEFORE_SUNSET = Date.UTC(2026, 11, 31, 23, 59, 59);
const SUNSET = Date.UTC(2027, 0, 1);

function at(facts: Partial<RequestFacts> & Pick<RequestFacts, 'method' | 'target'>): RequestFacts {
  return { port: 8080, now: BEFORE_SUNSET, ...facts };
}

/** `<status> <code>` plus the route when there is one. */
function brief(d: Decision): string {
  return `${d.status} ${d.code}${d.route ? ` ${d.route}` : ''}`;
}

describe('decide: the orders example', () => {
  const cases: [name: string, facts: RequestFacts, expected: string][] = [
    ['public route', at({ method: 'GET', target: '/healthz' }), '200 OK health'],
    ['public catch-all route', at({ method: 'HEAD', target: '/v1/catalog/shoes/42' }), '200 OK catalog'],
    [
      'a path that climbs above the root',
      at({ method: 'GET', target: '/../healthz' }),
      '400 ERR_PATH_INVALID',
    ],
    ['an encoded slash', at({ method: 'GET', target: '/v1/users/a%2Fb/orders' }), '400 ERR_PATH_INVALID'],
    ['an absolute-form target', at({ method: 'GET', target: 'http://x/healthz' }), '400 ERR_PATH_INVALID'],
    ['no route', at({ method: 'GET', target: '/v2/orders' }), '404 ERR_ROUTE_NOT_FOUND'],
    ['matching is case-sensitive', at({ method: 'GET', target: '/HEALTHZ' }), '404 ERR_ROUTE_NOT_FOUND'],
    ['OPTIONS * matches no route', at({ method: 'OPTIONS', target: '*' }), '404 ERR_ROUTE_NOT_FOUND'],
    ['method not declared', at({ method: 'POST', target: '/healthz' }), '405 ERR_ROUTE_METHOD'],
    [
      'TRACE is refused unless declared',
      at({ method: 'TRACE', target: '/v1/catalog/x' }),
      '405 ERR_ROUTE_METHOD',
    ],
    ['HEAD is not implied by GET', at({ method: 'HEAD', target: '/healthz' }), '405 ERR_ROUTE_METHOD'],
    [
      'sunset route after its sunset',
      at({ method: 'GET', target: '/v0/orders/1', now: SUNSET + 1 }),
      '410 ERR_ROUTE_SUNSET legacy-orders',
    ],
    [
      'sunset route at its sunset instant (410 only after it)',
      at({ method: 'GET', target: '/v0/orders/1', now: SUNSET }),
      '401 ERR_AUTHN_REQUIRED legacy-orders',
    ],
    [
      'sunset route just before its sunset (defaults.allow applies)',
      at({ method: 'GET', target: '/v0/orders/1', identity: alice }),
      '200 OK legacy-orders',
    ],
    [
      'no token where a token rule could hold',
      at({ method: 'GET', target: '/v1/users/alice/orders/1' }),
      '401 ERR_AUTHN_REQUIRED get-order',
    ],
    [
      'no token on a defaults.allow route',
      at({ method: 'GET', target: '/v0/orders' }),
      '401 ERR_AUTHN_REQUIRED legacy-orders',
    ],
    [
      'own order (BOLA rule)',
      at({ method: 'GET', target: '/v1/users/alice/orders/1', identity: alice }),
      '200 OK get-order',
    ],
    [
      'someone else’s order',
      at({ method: 'GET', target: '/v1/users/bob/orders/1', identity: alice }),
      '403 ERR_AUTHZ_DENIED get-order',
    ],
    [
      'an admin reads any order',
      at({ method: 'GET', target: '/v1/users/bob/orders/1', identity: admin }),
      '200 OK get-order',
    ],
    [
      'the billing peer reads any order',
      at({ method: 'GET', target: '/v1/users/bob/orders/1', peer: BILLING }),
      '200 OK get-order',
    ],
    [
      'another peer without a token',
      at({ method: 'GET', target: '/v1/users/bob/orders/1', peer: 'spiffe://cluster.local/ns/shop/sa/cart' }),
      '401 ERR_AUTHN_REQUIRED get-order',
    ],
    [
      'create without the scope',
      at({ method: 'POST', target: '/v1/users/alice/orders', identity: alice }),
      '403 ERR_AUTHZ_DENIED create-order',
    ],
    [
      'create with the scope',
      at({ method: 'POST', target: '/v1/users/alice/orders', identity: writer }),
      '200 OK create-order',
    ],
    [
      'create for someone else',
      at({ method: 'POST', target: '/v1/users/bob/orders', identity: writer }),
      '403 ERR_AUTHZ_DENIED create-order',
    ],
    [
      'admin refund needs role and scope',
      at({ method: 'POST', target: '/v1/admin/orders/9/refund', identity: admin }),
      '200 OK admin-refund',
    ],
    [
      'admin refund with the role but not the scope',
      at({
        method: 'POST',
        target: '/v1/admin/orders/9/refund',
        identity: { provider: 'corp', claims: { roles: 'admin' } },
      }),
      '403 ERR_AUTHZ_DENIED admin-refund',
    ],
    [
      'a normalized path is what is authorized',
      at({ method: 'GET', target: '/v1/users/x/../alice/orders', identity: alice }),
      '200 OK list-orders',
    ],
    [
      'a bad token on a public route',
      at({ method: 'GET', target: '/healthz', tokenError: 'expired' }),
      '401 ERR_AUTHN_INVALID_TOKEN',
    ],
    [
      'a bad token on a protected route',
      at({ method: 'GET', target: '/v1/users/alice/orders/1', tokenError: 'bad signature' }),
      '401 ERR_AUTHN_INVALID_TOKEN',
    ],
    [
      'a bad token on an unmatched path (Deny)',
      at({ method: 'GET', target: '/nope', tokenError: 'expired' }),
      '404 ERR_ROUTE_NOT_FOUND',
    ],
    [
      'a bad token on an undeclared method',
      at({ method: 'PUT', target: '/healthz', tokenError: 'expired' }),
      '405 ERR_ROUTE_METHOD',
    ],
  ];
  for (const [name, facts, expected] of cases) {
    it(`${name} → ${expected}`, () => {
      assert.equal(brief(decide(orders, facts)), expected);
    });
  }
});

describe('decide: what a decision says', () => {
  it('an allowed request: rule, params, limits, path, policy', () => {
    const d = decide(orders, at({ method: 'GET', target: '/v1/users/alice/orders/7?x=1', identity: alice }));
    // params has a null prototype (a param may be named __proto__).
    assert.deepEqual(
      { ...d, params: { ...d.params } },
      {
        status: 200,
        verdict: 'allow',
        wouldStatus: 200,
        enforced: true,
        code: 'OK',
        reason: 'spec.routes[0].allow[1] holds',
        notes: [],
        policy: 'shop/orders',
        route: 'get-order',
        rule: 'spec.routes[0].allow[1]',
        limit: null,
        limits: ['per-user'],
        path: '/v1/users/alice/orders/7',
        params: { userId: 'alice', orderId: '7' },
        allow: null,
      },
    );
  });

  it('a 403 explains each rule that did not hold', () => {
    const d = decide(orders, at({ method: 'GET', target: '/v1/users/bob/orders/7', identity: alice }));
    assert.equal(d.reason, 'no allow rule holds');
    assert.deepEqual(d.notes, [
      'spec.routes[0].allow[0]: claim roles is not one of [admin]',
      'spec.routes[0].allow[1]: when: params.userId == claims.sub is false',
      'spec.routes[0].allow[2]: no mTLS peer identity',
    ]);
    assert.equal(d.verdict, 'deny');
    assert.equal(d.rule, null);
  });

  it('a 401 says a token is required', () => {
    const d = decide(orders, at({ method: 'GET', target: '/v1/users/bob/orders/7' }));
    assert.equal(d.reason, 'a valid token is required');
    assert.equal(d.notes.length, 3);
  });

  it('a 405 carries the Allow methods of every route on the path', () => {
    const d = decide(orders, at({ method: 'PATCH', target: '/v1/users/alice/orders/7' }));
    assert.deepEqual(
      [d.status, d.allow, d.reason, d.path, d.route],
      [
        405,
        ['DELETE', 'GET', 'HEAD'],
        'PATCH is not declared for this path',
        '/v1/users/alice/orders/7',
        null,
      ],
    );
  });

  it('a 400 names the normalization error', () => {
    const d = decide(orders, at({ method: 'GET', target: '/a%2fb' }));
    assert.match(d.reason, /^ERR_PATH_ENCODED_SLASH: /);
    assert.equal(d.path, null);
  });

  it('a 410 names the sunset', () => {
    const d = decide(orders, at({ method: 'GET', target: '/v0/orders', now: SUNSET + 1 }));
    assert.equal(d.reason, 'route was sunset on 2027-01-01');
    assert.deepEqual(d.limits, ['per-ip']);
  });

  it('a bad token is refused with its reason', () => {
    const d = decide(orders, at({ method: 'GET', target: '/healthz', tokenError: 'token expired' }));
    assert.equal(d.reason, 'invalid token: token expired');
    assert.equal(d.verdict, 'deny');
  });

  it('without an injected clock, sunsets use the current time', () => {
    const d = decide(orders, { method: 'GET', target: '/v0/orders', port: 8080, identity: alice });
    assert.equal(d.code, Date.now() > SUNSET ? 'ERR_ROUTE_SUNSET' : 'OK');
  });
});

describe('decide: no policy', () => {
  const cases: [name: string, engine: PolicyEngine | null, port: number | null | undefined][] = [
    ['no engine', null, 8080],
    ['no policy for the port', orders, 9090],
    ['no port and no port-less policy', orders, null],
    ['port omitted and no port-less policy', orders, undefined],
  ];
  for (const [name, engine, port] of cases) {
    it(`${name} → 503 ERR_NO_POLICY`, () => {
      const facts: RequestFacts = {
        method: 'GET',
        target: '/healthz',
        ...(port === undefined ? {} : { port }),
      };
      const d = decide(engine, facts);
      assert.deepEqual(
        [d.status, d.code, d.verdict, d.enforced, d.policy, d.wouldStatus],
        [503, 'ERR_NO_POLICY', 'deny', true, null, 503],
      );
      assert.equal(d.reason, 'no policy is loaded for this port');
    });
  }

  it('a port-less policy serves any port', () => {
    const e = engineOf(policy({ routes: [{ name: 'h', path: '/h', public: true }] }));
    assert.equal(brief(decide(e, { method: 'GET', target: '/h', port: 1234 })), '200 OK h');
    assert.equal(brief(decide(e, { method: 'GET', target: '/h' })), '200 OK h');
  });
});

describe('decide: unmatched', () => {
  const cases: [
    name: string,
    facts: RequestFacts,
    expected: [status: number, code: DecisionCode, verdict: string],
  ][] = [
    [
      'Allow forwards an undeclared path',
      at({ method: 'GET', target: '/v2/anything' }),
      [200, 'OK_UNDECLARED', 'allow'],
    ],
    ['Allow forwards OPTIONS *', at({ method: 'OPTIONS', target: '*' }), [200, 'OK_UNDECLARED', 'allow']],
    [
      'a bad token on unmatched Allow is 401',
      at({ method: 'GET', target: '/v2/x', tokenError: 'expired' }),
      [401, 'ERR_AUTHN_INVALID_TOKEN', 'deny'],
    ],
    [
      'a declared path keeps its method check',
      at({ method: 'POST', target: '/healthz' }),
      [405, 'ERR_ROUTE_METHOD', 'deny'],
    ],
    [
      'a declared route keeps its rules',
      at({ method: 'GET', target: '/v1/users/a/orders' }),
      [401, 'ERR_AUTHN_REQUIRED', 'deny'],
    ],
  ];
  for (const [name, facts, expected] of cases) {
    it(`${name} → ${expected[0]}`, () => {
      const d = decide(open, facts);
      assert.deepEqual([d.status, d.code, d.verdict], expected);
    });
  }

  it('an undeclared request has a path but no route', () => {
    const d = decide(open, at({ method: 'GET', target: '/v2//x?y=1' }));
    assert.deepEqual(
      [d.path, d.route, d.limits, d.reason],
      ['/v2/x', null, [], 'no route matches; unmatched: Allow forwards it'],
    );
  });
});

describe('decide: audit mode never refuses', () => {
  const cases: [name: string, facts: RequestFacts, would: number, code: DecisionCode][] = [
    [
      '403',
      at({ method: 'GET', target: '/v1/users/bob/orders/1', identity: alice }),
      403,
      'ERR_AUTHZ_DENIED',
    ],
    ['401', at({ method: 'GET', target: '/v1/users/bob/orders/1' }), 401, 'ERR_AUTHN_REQUIRED'],
    [
      '401 bad token',
      at({ method: 'GET', target: '/healthz', tokenError: 'x' }),
      401,
      'ERR_AUTHN_INVALID_TOKEN',
    ],
    ['404', at({ method: 'GET', target: '/nope' }), 404, 'ERR_ROUTE_NOT_FOUND'],
    ['405', at({ method: 'DELETE', target: '/healthz' }), 405, 'ERR_ROUTE_METHOD'],
    ['410', at({ method: 'GET', target: '/v0/orders', now: SUNSET + 1 }), 410, 'ERR_ROUTE_SUNSET'],
  ];
  for (const [name, facts, would, code] of cases) {
    it(`${name}: status 200, wouldStatus ${would}, verdict deny`, () => {
      const d = decide(audit, facts);
      assert.deepEqual(
        [d.status, d.wouldStatus, d.verdict, d.enforced, d.code],
        [200, would, 'deny', false, code],
      );
    });
  }

  it('a target that cannot be normalized is refused even in audit mode (it could not be forwarded)', () => {
    const d = decide(audit, at({ method: 'GET', target: '/a/../../b' }));
    assert.deepEqual(
      [d.status, d.wouldStatus, d.verdict, d.enforced, d.code],
      [400, 400, 'deny', true, 'ERR_PATH_INVALID'],
    );
  });

  it('an allowed request is an unenforced allow', () => {
    const d = decide(audit, at({ method: 'GET', target: '/healthz' }));
    assert.deepEqual([d.status, d.wouldStatus, d.verdict, d.enforced], [200, 200, 'allow', false]);
  });

  it('429 is recorded, not enforced', () => {
    const refuseAll: Admitter = {
      admit: (entries) =>
        entries.map(({ limit }) => ({ allowed: false, remaining: 0, resetMs: 1000, limit })),
    };
    const d = decide(audit, at({ method: 'GET', target: '/v1/catalog/x', rateLimiter: refuseAll }));
    assert.deepEqual([d.status, d.wouldStatus, d.code, d.limit], [200, 429, 'ERR_RATE_LIMITED', 'per-ip']);
  });
});

describe('decide: when over the request', () => {
  const jwt = [{ name: 'corp', issuer: 'i', jwksUri: 'https://i/' }];
  const engine = engineOf(
    policy({
      jwt,
      routes: [
        {
          name: 'headers',
          path: '/h',
          allow: [{ when: 'request.headers["x-tenant"] == "acme" && request.host == "api.local"' }],
        },
        {
          name: 'query',
          path: '/q',
          allow: [{ when: 'request.query.mode == "a b" && request.method == "GET" && request.path == "/q"' }],
        },
        {
          name: 'params',
          path: '/p/{org}/{id}',
          allow: [{ when: 'params.org == "acme" && params.id == "7"' }],
        },
        {
          name: 'claims',
          path: '/c',
          allow: [{ jwt: 'Any', when: 'claims.org.id == "acme" && "ops" in claims.groups' }],
        },
        {
          name: 'peer',
          path: '/peer',
          allow: [{ when: 'peer != null && peer.namespace == "shop" && peer.serviceAccount == "billing"' }],
        },
        { name: 'no-peer', path: '/no-peer', allow: [{ when: 'peer == null' }] },
        { name: 'source', path: '/s', allow: [{ when: 'source.ip.startsWith("10.")' }] },
        { name: 'error', path: '/e', allow: [{ when: 'claims.sub == "x"' }] },
      ],
    }),
  );

  const cases: [name: string, facts: RequestFacts, status: number][] = [
    [
      'headers and host',
      { method: 'GET', target: '/h', headers: { 'x-tenant': 'acme', host: 'api.local' } },
      200,
    ],
    [
      'headers: other tenant',
      { method: 'GET', target: '/h', headers: { 'x-tenant': 'other', host: 'api.local' } },
      403,
    ],
    ['headers: no host', { method: 'GET', target: '/h', headers: { 'x-tenant': 'acme' } }, 403],
    ['query: first value, decoded', { method: 'GET', target: '/q?mode=a+b&mode=c' }, 200],
    ['query: other value first', { method: 'GET', target: '/q?mode=c&mode=a%20b' }, 403],
    ['query: missing parameter (runtime error) denies', { method: 'GET', target: '/q' }, 403],
    ['params', { method: 'GET', target: '/p/acme/7' }, 200],
    ['params: decoded', { method: 'GET', target: '/p/%61cme/7' }, 200],
    ['params: other', { method: 'GET', target: '/p/acme/8' }, 403],
    [
      'claims: nested and arrays',
      {
        method: 'GET',
        target: '/c',
        identity: { provider: 'corp', claims: { org: { id: 'acme' }, groups: ['dev', 'ops'] } },
      },
      200,
    ],
    ['claims: no token → 401', { method: 'GET', target: '/c' }, 401],
    ['peer', { method: 'GET', target: '/peer', peer: BILLING }, 200],
    ['peer: none', { method: 'GET', target: '/peer' }, 403],
    ['peer: not a SPIFFE ID counts as none', { method: 'GET', target: '/no-peer', peer: 'billing' }, 200],
    ['peer == null without mTLS', { method: 'GET', target: '/no-peer' }, 200],
    ['peer == null with mTLS', { method: 'GET', target: '/no-peer', peer: BILLING }, 403],
    ['source.ip', { method: 'GET', target: '/s', ip: '10.9.9.9' }, 200],
    ['source.ip: other', { method: 'GET', target: '/s', ip: '192.168.0.1' }, 403],
    ['source.ip defaults to loopback', { method: 'GET', target: '/s' }, 403],
    ['a CEL runtime error denies', { method: 'GET', target: '/e' }, 403],
  ];
  for (const [name, facts, status] of cases) {
    it(`${name} → ${status}`, () => {
      assert.equal(decide(engine, facts).status, status);
    });
  }

  it('a CEL runtime error is explained in the notes', () => {
    assert.deepEqual(decide(engine, { method: 'GET', target: '/e' }).notes, [
      'spec.routes[7].allow[0]: when: No such key: sub (denied)',
    ]);
  });
});

describe('decide: rate limits with real token buckets', () => {
  /** A real RateLimiter on a test clock that records the (limit, key) pairs it is asked about. */
  function limiter() {
    const clock = { now: 0 };
    const inner = new RateLimiter({ now: () => clock.now });
    const keys: string[] = [];
    const rateLimiter: Admitter = {
      admit: (entries) => {
        for (const e of entries) keys.push(`${e.limit.name}:${e.key ?? '\u0000missing'}`);
        return inner.admit(entries);
      },
    };
    return { clock, rateLimiter, keys };
  }

  const refund = (l: ReturnType<typeof limiter>): RequestFacts =>
    at({ method: 'POST', target: '/v1/admin/orders/9/refund', identity: admin, rateLimiter: l.rateLimiter });

  it('admin: 10 per second for the whole workload, then 429', () => {
    const l = limiter();
    const statuses = Array.from({ length: 11 }, () => decide(orders, refund(l)).status);
    assert.deepEqual(statuses, [...Array(10).fill(200), 429]);
    const d = decide(orders, refund(l));
    assert.deepEqual(
      [d.code, d.limit, d.reason, d.route],
      ['ERR_RATE_LIMITED', 'admin', 'rate limit admin exceeded', 'admin-refund'],
    );
    l.clock.now = 100;
    assert.equal(decide(orders, refund(l)).status, 200, 'one token after 100ms');
    assert.equal(decide(orders, refund(l)).status, 429);
  });

  it('per-ip: each client address has its own bucket', () => {
    const l = limiter();
    const catalog = (ip: string) =>
      at({ method: 'GET', target: '/v1/catalog/x', ip, rateLimiter: l.rateLimiter });
    const first = Array.from({ length: 6 }, () => decide(orders, catalog('10.0.0.1')).status);
    assert.deepEqual(first, [200, 200, 200, 200, 200, 429]);
    assert.equal(decide(orders, catalog('10.0.0.2')).status, 200);
    assert.deepEqual(l.keys.slice(-2), ['per-ip:10.0.0.1', 'per-ip:10.0.0.2']);
  });

  it('per-user: keyed by the sub claim; requests without it share one bucket', () => {
    const l = limiter();
    const perUser = engineOf(
      policy({
        jwt: ORDERS.spec.jwt ?? [],
        rateLimits: ORDERS.spec.rateLimits ?? [],
        routes: [{ name: 'pub', path: '/pub', public: true, rateLimit: 'per-user' }],
      }),
    );
    const health = (identity: Identity | null) =>
      decide(perUser, at({ method: 'GET', target: '/pub', identity, rateLimiter: l.rateLimiter, port: null }))
        .status;
    const anonymous = Array.from({ length: 121 }, () => health(null));
    assert.deepEqual(anonymous.slice(-2), [200, 429], 'limit 100 + burst 20 for the missing key');
    assert.equal(health(alice), 200);
    assert.equal(
      health({ provider: 'corp', claims: {} }),
      429,
      'a token without sub shares the missing-key bucket',
    );
    assert.deepEqual(new Set(l.keys), new Set(['per-user:\u0000missing', 'per-user:alice']));
  });

  it('a refused request names the limit; limits are not taken after authz fails', () => {
    const l = limiter();
    const d = decide(
      orders,
      at({ method: 'POST', target: '/v1/admin/orders/9/refund', rateLimiter: l.rateLimiter }),
    );
    assert.equal(d.status, 401);
    assert.deepEqual(l.keys, []);
  });

  it('several limits: the first that refuses is reported', () => {
    const e = engineOf(
      policy({
        rateLimits: [
          { name: 'wide', limit: 100, period: '1s' },
          { name: 'narrow', limit: 1, period: '1s' },
        ],
        routes: [{ name: 'r', path: '/r', public: true, rateLimit: ['wide', 'narrow'] }],
      }),
    );
    const l = limiter();
    const r = () => decide(e, { method: 'GET', target: '/r', rateLimiter: l.rateLimiter });
    assert.equal(r().status, 200);
    const d = r();
    assert.deepEqual([d.status, d.limit, d.limits], [429, 'narrow', ['wide', 'narrow']]);
  });

  it('without a rate limiter the limits are listed, not applied', () => {
    const ds = Array.from({ length: 20 }, () =>
      decide(orders, at({ method: 'POST', target: '/v1/admin/orders/9/refund', identity: admin })),
    );
    assert.ok(ds.every((d) => d.status === 200 && d.limit === null));
    assert.deepEqual(ds[0]?.limits, ['admin']);
  });
});

describe('rateLimitKey', () => {
  const limit = (key: CompiledRateLimit['key']): CompiledRateLimit => ({
    name: 'l',
    key,
    limit: 1,
    periodMs: 1000,
    burst: 0,
    scope: 'Local',
    exposeHeaders: true,
  });
  const facts: RequestFacts = {
    method: 'GET',
    target: '/',
    ip: '10.0.0.1',
    peer: BILLING,
    headers: { 'x-api-key': 'k-1' },
    identity: { provider: 'corp', claims: { sub: 'alice', org: { id: 42 }, admin: true, roles: ['a'] } },
  };

  const cases: [name: string, key: CompiledRateLimit['key'], f: RequestFacts, expected: string | null][] = [
    ['workload: one bucket', { kind: 'workload' }, facts, ''],
    ['ip', { kind: 'ip' }, facts, '10.0.0.1'],
    ['ip: missing', { kind: 'ip' }, { method: 'GET', target: '/' }, null],
    ['peer', { kind: 'peer' }, facts, BILLING],
    ['peer: missing', { kind: 'peer' }, { ...facts, peer: null }, null],
    ['header', { kind: 'header', name: 'x-api-key' }, facts, 'k-1'],
    ['header: missing', { kind: 'header', name: 'x-other' }, facts, null],
    ['claim', { kind: 'claim', claim: 'sub' }, facts, 'alice'],
    ['claim: dotted number', { kind: 'claim', claim: 'org.id' }, facts, '42'],
    ['claim: boolean is not a key', { kind: 'claim', claim: 'admin' }, facts, null],
    ['claim: array is not a key', { kind: 'claim', claim: 'roles' }, facts, null],
    ['claim: missing', { kind: 'claim', claim: 'email' }, facts, null],
    ['claim: no token', { kind: 'claim', claim: 'sub' }, { ...facts, identity: null }, null],
  ];
  for (const [name, key, f, expected] of cases) {
    it(`${name} → ${JSON.stringify(expected)}`, () => {
      assert.equal(rateLimitKey(limit(key), f), expected);
    });
  }
});

describe('decide: malformed bundles fail closed', () => {
  it('a route whose access kind is unknown is refused at load (never run)', () => {
    const r = compilePolicies([policy({ routes: [{ name: 'r', path: '/r', public: true }] })]);
    assert.ok(r.bundle);
    const b: PolicyBundle = structuredClone(r.bundle);
    const route = b.policies[0]?.routes[0];
    assert.ok(route);
    (route as { access: unknown }).access = { kind: 'allow-all' };
    assert.throws(() => PolicyEngine.load(b), { code: 'ERR_BUNDLE_INVALID' });
  });
});
