import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import type { CompiledPolicy, CompiledRoute, PolicyBundle } from '../compile/bundle.ts';
import { compilePolicies, compilePolicy } from '../compile/compile.ts';
import type { ApiPolicy, ApiPolicySpec } from '../schema/api-policy.ts';
import { BundleLoadError, PolicyEngine, type RouteOutcome } from './engine.ts';

const ORDERS = parse(
  readFileSync(new URL('../testdata/compile/orders.in.yaml', import.meta.url), 'utf8'),
) as ApiPolicy;

function policy(name: string, spec: Partial<ApiPolicySpec>): ApiPolicy {
  return {
    apiVersion: 'tollgate.dev/v1alpha1',
    kind: 'ApiPolicy',
    metadata: { name, namespace: 'shop' },
    spec: { routes: [{ name: 'health', path: '/healthz', methods: ['GET'], public: true }], ...spec },
  };
}

function bundle(...docs: ApiPolicy[]): PolicyBundle {
  const r = compilePolicies(docs);
  assert.ok(r.bundle, JSON.stringify(r.diagnostics));
  return r.bundle;
}

const orders = bundle(ORDERS);

/** The orders bundle with its first policy's first route replaced. */
function withRoute(change: (r: CompiledRoute) => CompiledRoute): unknown {
  const b = structuredClone(orders);
  const p = b.policies[0] as CompiledPolicy;
  p.routes[0] = change(p.routes[0] as CompiledRoute);
  return b;
}

function withPolicy(change: Record<string, unknown>): unknown {
  const b = structuredClone(orders);
  return { ...b, policies: [{ ...b.policies[0], ...change }] };
}

function loadError(value: unknown): BundleLoadError {
  try {
    PolicyEngine.load(value);
  } catch (e) {
    assert.ok(e instanceof BundleLoadError, `expected a BundleLoadError, got ${String(e)}`);
    return e;
  }
  assert.fail('expected PolicyEngine.load to throw');
}

describe('PolicyEngine.load', () => {
  it('loads a compiled bundle', () => {
    const engine = PolicyEngine.load(orders);
    assert.equal(engine.bundle, orders);
    assert.equal(engine.policyFor(8080)?.policy.ref.name, 'orders');
  });

  it('loads a bundle that went through JSON (what the agent receives)', () => {
    const engine = PolicyEngine.load(JSON.parse(JSON.stringify(orders)));
    assert.equal(engine.policyFor(8080)?.route('GET', '/healthz').kind, 'matched');
  });

  it('loads an empty bundle, which has no policy for any port', () => {
    const engine = PolicyEngine.load({
      kind: 'tollgate.dev/PolicyBundle',
      schemaVersion: 1,
      version: 'v',
      policies: [],
    });
    assert.equal(engine.policyFor(null), null);
    assert.equal(engine.policyFor(8080), null);
  });

  const malformed: [name: string, value: unknown, message: RegExp][] = [
    ['null', null, /^not a valid tollgate\.dev\/PolicyBundle v1: /],
    ['a string', 'bundle', /^not a valid tollgate\.dev\/PolicyBundle v1: /],
    ['an empty object', {}, /^not a valid tollgate\.dev\/PolicyBundle v1: /],
    [
      'the wrong kind',
      { ...orders, kind: 'tollgate.dev/Bundle' },
      /^not a valid tollgate\.dev\/PolicyBundle v1: /,
    ],
    [
      'another schema version',
      { ...orders, schemaVersion: 2 },
      /^not a valid tollgate\.dev\/PolicyBundle v1: /,
    ],
    [
      'policies that are not a list',
      { ...orders, policies: {} },
      /^not a valid tollgate\.dev\/PolicyBundle v1: /,
    ],
    ['a bad path template', withRoute((r) => ({ ...r, path: '/v1//x' })), /^route get-order: empty segment/],
    [
      'an unknown rate limit',
      withRoute((r) => ({ ...r, rateLimits: ['nope'] })),
      /^route get-order: unknown rate limit nope$/,
    ],
    [
      'CEL that does not compile',
      withRoute((r) => ({
        ...r,
        access: {
          kind: 'rules',
          from: 'route',
          rules: [
            {
              source: 'spec.routes[0].allow[0]',
              jwt: null,
              claims: null,
              scopes: null,
              peers: null,
              namespaces: null,
              ipBlocks: null,
              when: 'claims.sub ==',
            },
          ],
        },
      })),
      /^route get-order: spec\.routes\[0\]\.allow\[0\]\.when: invalid CEL/,
    ],
    [
      'CEL that is not a bool',
      withRoute((r) => ({
        ...r,
        access: {
          kind: 'rules',
          from: 'route',
          rules: [
            {
              source: 's',
              jwt: null,
              claims: null,
              scopes: null,
              peers: null,
              namespaces: null,
              ipBlocks: null,
              when: '1 + 2',
            },
          ],
        },
      })),
      /^route get-order: s\.when: CEL expression must be of type bool, not int$/,
    ],
    [
      'an ipBlock that does not parse',
      withRoute((r) => ({
        ...r,
        access: {
          kind: 'rules',
          from: 'route',
          rules: [
            {
              source: 's',
              jwt: null,
              claims: null,
              scopes: null,
              peers: null,
              namespaces: null,
              ipBlocks: ['300.0.0.0/8'],
              when: null,
            },
          ],
        },
      })),
      /^route get-order: /,
    ],
    [
      'a route without access',
      withRoute((r) => ({ ...r, access: undefined as unknown as CompiledRoute['access'] })),
      /^not a valid tollgate\.dev\/PolicyBundle v1: \/policies\/0\/routes\/0 must have required property 'access'/,
    ],
  ];
  for (const [name, value, message] of malformed) {
    it(`rejects ${name} with BundleLoadError`, () => {
      const e = loadError(value);
      assert.equal(e.code, 'ERR_BUNDLE_INVALID');
      assert.match(e.message, message);
    });
  }

  const structurallyBroken: [name: string, value: unknown][] = [
    ['a null policy', { ...orders, policies: [null] }],
    ['a policy without routes', withPolicy({ routes: undefined })],
    ['a policy without rateLimits', withPolicy({ rateLimits: 'x' })],
  ];
  for (const [name, value] of structurallyBroken) {
    it(`rejects ${name} with BundleLoadError`, () => {
      loadError(value);
    });
  }

  const failOpen: [name: string, value: unknown][] = [
    ['mode "enforce" (not Enforce)', withPolicy({ mode: 'enforce' })],
    ['unmatched "deny" (not Deny)', withPolicy({ unmatched: 'deny' })],
  ];
  for (const [name, value] of failOpen) {
    it(`rejects ${name} instead of running it`, () => {
      loadError(value);
    });
  }

  it('rejects two policies for the same port', () => {
    const b = structuredClone(orders);
    loadError({
      ...b,
      policies: [b.policies[0], { ...b.policies[0], ref: { ...b.policies[0]?.ref, name: 'twin' } }],
    });
  });
});

describe('PolicyEngine.policyFor', () => {
  // Built by hand: the compiler lets a port-less policy conflict with every port policy.
  const handBuilt = (...docs: ApiPolicy[]): PolicyEngine =>
    PolicyEngine.load({ ...bundle(), policies: docs.map(compilePolicy) });
  const engine = handBuilt(
    policy('p8080', { port: 8080 }),
    policy('p9090', { port: 9090 }),
    policy('any', {}),
  );
  const onlyPorts = handBuilt(policy('p8080', { port: 8080 }));
  const onlyAny = handBuilt(policy('any', {}));

  const cases: [name: string, e: PolicyEngine, port: number | null, expected: string | null][] = [
    ['the port’s own policy', engine, 8080, 'p8080'],
    ['another port’s own policy', engine, 9090, 'p9090'],
    ['no policy of its own: the port-less one', engine, 7070, 'any'],
    ['no port: the port-less one', engine, null, 'any'],
    ['no port-less policy and no policy for the port', onlyPorts, 7070, null],
    ['no port-less policy and no port', onlyPorts, null, null],
    ['only a port-less policy', onlyAny, 8080, 'any'],
  ];
  for (const [name, e, port, expected] of cases) {
    it(`${name}: ${port} → ${expected}`, () => {
      assert.equal(e.policyFor(port)?.policy.ref.name ?? null, expected);
    });
  }
});

describe('PolicyRuntime.route', () => {
  const rt = PolicyEngine.load(orders).policyFor(8080);
  assert.ok(rt);

  function summary(o: RouteOutcome): unknown {
    switch (o.kind) {
      case 'bad-target':
        return [o.kind, o.code];
      case 'matched':
        return [
          o.kind,
          o.route.route.name,
          { ...o.params },
          o.target.path,
          o.route.limits.map((l) => l.name),
        ];
      case 'method-not-allowed':
        return [o.kind, o.allow, o.target.path];
      case 'unmatched':
        return [o.kind, o.target.path];
    }
  }

  const cases: [method: string, target: string, expected: unknown][] = [
    ['GET', '/healthz', ['matched', 'health', {}, '/healthz', []]],
    [
      'GET',
      '/v1/users/alice/orders/7',
      ['matched', 'get-order', { userId: 'alice', orderId: '7' }, '/v1/users/alice/orders/7', ['per-user']],
    ],
    [
      'HEAD',
      '/v1/users/alice/orders/7',
      ['matched', 'get-order', { userId: 'alice', orderId: '7' }, '/v1/users/alice/orders/7', ['per-user']],
    ],
    [
      'DELETE',
      '/v1/users/alice/orders/7',
      [
        'matched',
        'cancel-order',
        { userId: 'alice', orderId: '7' },
        '/v1/users/alice/orders/7',
        ['per-user'],
      ],
    ],
    [
      'POST',
      '/v1/users/a%20b/orders?dryRun=true',
      ['matched', 'create-order', { userId: 'a b' }, '/v1/users/a%20b/orders', ['per-user']],
    ],
    [
      'GET',
      '//v1/./users/x/../alice/orders',
      ['matched', 'list-orders', { userId: 'alice' }, '/v1/users/alice/orders', ['per-user']],
    ],
    [
      'POST',
      '/v1/admin/orders/9/refund',
      ['matched', 'admin-refund', { orderId: '9' }, '/v1/admin/orders/9/refund', ['admin']],
    ],
    [
      'GET',
      '/v1/admin/orders/9/refund',
      ['matched', 'admin-any', {}, '/v1/admin/orders/9/refund', ['per-user']],
    ],
    ['GET', '/v0/orders', ['matched', 'legacy-orders', {}, '/v0/orders', ['per-ip']]],
    [
      'PATCH',
      '/v1/users/alice/orders/7',
      ['method-not-allowed', ['DELETE', 'GET', 'HEAD'], '/v1/users/alice/orders/7'],
    ],
    ['POST', '/healthz', ['method-not-allowed', ['GET'], '/healthz']],
    ['TRACE', '/healthz', ['method-not-allowed', ['GET'], '/healthz']],
    ['GET', '/nope', ['unmatched', '/nope']],
    ['GET', '/HEALTHZ', ['unmatched', '/HEALTHZ']],
    ['OPTIONS', '*', ['unmatched', '*']],
    ['GET', '/v1/users/a%2Fb/orders', ['bad-target', 'ERR_PATH_ENCODED_SLASH']],
    ['GET', '/../etc/passwd', ['bad-target', 'ERR_PATH_ABOVE_ROOT']],
    ['GET', 'http://evil/healthz', ['bad-target', 'ERR_PATH_NOT_ORIGIN_FORM']],
  ];
  for (const [method, target, expected] of cases) {
    it(`${method} ${target}`, () => {
      assert.deepEqual(summary(rt.route(method, target)), expected);
    });
  }
});
