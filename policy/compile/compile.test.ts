import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { formatDiagnostic } from '../diagnostics.ts';
import type { ApiPolicy, ApiPolicySpec } from '../schema/api-policy.ts';
import type { CompiledPolicy, PolicyBundle } from './bundle.ts';
import { compilePolicies, compilePolicy, selectPolicies, type Workload } from './compile.ts';
import { contentHash } from './hash.ts';

const ORDERS = parse(
  readFileSync(new URL('../testdata/compile/orders.in.yaml', import.meta.url), 'utf8'),
) as ApiPolicy;

interface Meta {
  name: string;
  namespace?: string;
  creationTimestamp?: string;
  generation?: number;
  labels?: Record<string, string>;
}

function policy(meta: Meta | string, spec: Partial<ApiPolicySpec> = {}): ApiPolicy {
  return {
    apiVersion: 'tollgate.dev/v1alpha1',
    kind: 'ApiPolicy',
    metadata: typeof meta === 'string' ? { name: meta } : meta,
    spec: { routes: [{ name: 'health', path: '/healthz', public: true }], ...spec },
  };
}

function bundleOf(docs: readonly unknown[], workload: Workload = {}): PolicyBundle {
  const r = compilePolicies(docs, workload);
  assert.ok(r.bundle, `expected a bundle: ${r.diagnostics.map(formatDiagnostic).join('; ')}`);
  return r.bundle;
}

function names(docs: readonly unknown[], workload: Workload): string[] {
  return bundleOf(docs, workload).policies.map((p) => `${p.ref.namespace}/${p.ref.name}`);
}

function compiled(spec: Partial<ApiPolicySpec>): CompiledPolicy {
  return compilePolicy(policy('p', spec));
}

describe('compilePolicy: defaults', () => {
  it('applies every default of the contract to a minimal policy', () => {
    const p = compiled({
      jwt: [{ name: 'corp', issuer: 'https://idp/', jwksUri: 'https://idp/jwks' }],
      rateLimits: [{ name: 'all', limit: 10, period: '1s' }],
      routes: [{ name: 'any', path: '/**', allow: [{ jwt: 'corp' }] }],
    });
    assert.deepEqual(
      { ...p, hash: undefined },
      {
        ref: { name: 'p', namespace: 'default', generation: null },
        hash: undefined,
        port: null,
        mode: 'Enforce',
        mtlsMode: 'Permissive',
        unmatched: 'Deny',
        maxBodyBytes: 1024 * 1024,
        jwt: [
          {
            name: 'corp',
            issuer: 'https://idp/',
            jwksUri: 'https://idp/jwks',
            jwks: null,
            audiences: null,
            algorithms: ['RS256', 'PS256', 'ES256', 'EdDSA'],
            from: [{ header: 'authorization', prefix: 'Bearer ' }],
            maxLifetimeMs: null,
            clockSkewMs: 30_000,
            forwardToken: true,
            claimHeaders: [],
          },
        ],
        rateLimits: [
          {
            name: 'all',
            key: { kind: 'workload' },
            limit: 10,
            periodMs: 1000,
            burst: 0,
            scope: 'Local',
            exposeHeaders: true,
          },
        ],
        protection: { authFailures: null, unmatched: null },
        routes: [
          {
            name: 'any',
            methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'],
            path: '/**',
            access: {
              kind: 'rules',
              from: 'route',
              rules: [
                {
                  source: 'spec.routes[0].allow[0]',
                  jwt: 'corp',
                  claims: null,
                  scopes: null,
                  peers: null,
                  namespaces: null,
                  ipBlocks: null,
                  when: null,
                },
              ],
            },
            rateLimits: [],
            timeoutMs: 30_000,
            request: { maxBodyBytes: 1_048_576, contentTypes: null, query: null, body: null },
            response: { omitFields: null },
            deprecation: null,
          },
        ],
      },
    );
    assert.match(p.hash, /^sha256:[0-9a-f]{64}$/);
  });

  it('does not share the default token sources between providers', () => {
    const p = compiled({
      jwt: [
        { name: 'a', issuer: 'a', jwksUri: 'https://a/' },
        { name: 'b', issuer: 'b', jwksUri: 'https://b/' },
      ],
    });
    assert.notEqual(p.jwt[0]?.from, p.jwt[1]?.from);
    assert.notEqual(p.jwt[0]?.from[0], p.jwt[1]?.from[0]);
  });
});

describe('compilePolicy: conversions', () => {
  it('lowercases header names and media types, keeps cookie names and claim paths', () => {
    const p = compiled({
      jwt: [
        {
          name: 'corp',
          issuer: 'i',
          jwksUri: 'https://i/',
          from: [{ header: 'X-Token' }, { header: 'Authorization', prefix: 'JWT ' }, { cookie: 'Session' }],
          claimHeaders: [{ claim: 'https://x.io/Org', header: 'X-Org' }],
        },
      ],
      rateLimits: [{ name: 'k', key: { header: 'X-Api-Key' }, limit: 1, period: '1m' }],
      routes: [
        { name: 'r', path: '/', public: true, request: { contentTypes: ['Application/JSON', 'text/*'] } },
      ],
    });
    assert.deepEqual(p.jwt[0]?.from, [
      { header: 'x-token', prefix: '' },
      { header: 'authorization', prefix: 'JWT ' },
      { cookie: 'Session' },
    ]);
    assert.deepEqual(p.jwt[0]?.claimHeaders, [{ claim: 'https://x.io/Org', header: 'x-org' }]);
    assert.deepEqual(p.rateLimits[0]?.key, { kind: 'header', name: 'x-api-key' });
    assert.deepEqual(p.routes[0]?.request.contentTypes, ['application/json', 'text/*']);
  });

  it('resolves units: durations to ms, sizes to bytes, dates to epoch ms', () => {
    const p = compiled({
      jwt: [{ name: 'c', issuer: 'i', jwksUri: 'https://i/', maxLifetime: '1h', clockSkew: '1m30s' }],
      rateLimits: [{ name: 'r', limit: 5, period: '250ms', burst: 3, scope: 'Global', exposeHeaders: false }],
      defaults: { maxBodyBytes: '2Mi' },
      protection: { unmatched: { threshold: 50, window: '1m', block: '10m' } },
      routes: [
        { name: 'a', path: '/a', public: true, timeout: '5s', request: { maxBodyBytes: '64Ki' } },
        { name: 'b', path: '/b', public: true, request: { maxBodyBytes: 100 } },
        { name: 'c', path: '/c', public: true },
        {
          name: 'd',
          path: '/d',
          public: true,
          deprecation: { since: '2026-06-01', sunset: '2027-01-01T12:00:00+01:00', link: 'https://d/' },
        },
        { name: 'e', path: '/e', public: true, deprecation: { since: '2026-06-01T08:00:00Z' } },
      ],
    });
    assert.equal(p.jwt[0]?.maxLifetimeMs, 3_600_000);
    assert.equal(p.jwt[0]?.clockSkewMs, 90_000);
    assert.deepEqual(p.rateLimits[0], {
      name: 'r',
      key: { kind: 'workload' },
      limit: 5,
      periodMs: 250,
      burst: 3,
      scope: 'Global',
      exposeHeaders: false,
    });
    assert.deepEqual(p.protection, {
      authFailures: null,
      unmatched: { threshold: 50, windowMs: 60_000, blockMs: 600_000 },
    });
    assert.deepEqual(
      p.routes.map((r) => [r.name, r.timeoutMs, r.request.maxBodyBytes]),
      [
        ['a', 5000, 65_536],
        ['b', 30_000, 100],
        ['c', 30_000, 2 * 1_048_576],
        ['d', 30_000, 2 * 1_048_576],
        ['e', 30_000, 2 * 1_048_576],
      ],
    );
    assert.deepEqual(p.routes[3]?.deprecation, {
      since: '2026-06-01',
      sinceMs: Date.UTC(2026, 5, 1),
      sunset: '2027-01-01T12:00:00+01:00',
      sunsetMs: Date.UTC(2027, 0, 1, 11),
      link: 'https://d/',
    });
    assert.deepEqual(p.routes[4]?.deprecation, {
      since: '2026-06-01T08:00:00Z',
      sinceMs: Date.UTC(2026, 5, 1, 8),
      sunset: null,
      sunsetMs: null,
      link: null,
    });
  });

  it('compiles each kind of rate limit key', () => {
    const p = compiled({
      jwt: [{ name: 'c', issuer: 'i', jwksUri: 'https://i/' }],
      rateLimits: [
        { name: 'w', limit: 1, period: '1s' },
        { name: 'i', key: { ip: {} }, limit: 1, period: '1s' },
        { name: 'p', key: { peer: {} }, limit: 1, period: '1s' },
        { name: 'h', key: { header: 'X-Key' }, limit: 1, period: '1s' },
        { name: 'c', key: { claim: 'org.id' }, limit: 1, period: '1s' },
      ],
    });
    assert.deepEqual(
      p.rateLimits.map((l) => l.key),
      [
        { kind: 'workload' },
        { kind: 'ip' },
        { kind: 'peer' },
        { kind: 'header', name: 'x-key' },
        { kind: 'claim', claim: 'org.id' },
      ],
    );
  });

  it('parses an inline JWKS', () => {
    const jwks = { keys: [{ kty: 'EC', crv: 'P-256', x: 'x', y: 'y', kid: 'k1' }] };
    const p = compiled({ jwt: [{ name: 'c', issuer: 'i', jwks: JSON.stringify(jwks), audiences: ['api'] }] });
    assert.deepEqual(p.jwt[0]?.jwks, jwks);
    assert.equal(p.jwt[0]?.jwksUri, null);
    assert.deepEqual(p.jwt[0]?.audiences, ['api']);
  });

  it('picks route access: public, own rules, defaults, or deny', () => {
    const p = compiled({
      jwt: [{ name: 'c', issuer: 'i', jwksUri: 'https://i/' }],
      defaults: { allow: [{ ipBlocks: ['10.0.0.0/8'] }, { jwt: 'Any', scopes: ['read'] }] },
      routes: [
        { name: 'pub', path: '/pub', public: true },
        {
          name: 'own',
          path: '/own/{id}',
          allow: [
            {
              claims: { roles: ['admin'], 'https://x.io/t': ['a', 'b'] },
              peers: ['*'],
              namespaces: ['shop'],
              when: 'true',
            },
          ],
        },
        { name: 'dflt', path: '/dflt' },
        { name: 'priv', path: '/priv', public: false },
      ],
    });
    assert.deepEqual(p.routes[0]?.access, { kind: 'public' });
    assert.deepEqual(p.routes[1]?.access, {
      kind: 'rules',
      from: 'route',
      rules: [
        {
          source: 'spec.routes[1].allow[0]',
          jwt: null,
          claims: [
            { claim: 'https://x.io/t', values: ['a', 'b'] },
            { claim: 'roles', values: ['admin'] },
          ],
          scopes: null,
          peers: ['*'],
          namespaces: ['shop'],
          ipBlocks: null,
          when: 'true',
        },
      ],
    });
    const defaults = {
      kind: 'rules',
      from: 'defaults',
      rules: [
        {
          source: 'spec.defaults.allow[0]',
          jwt: null,
          claims: null,
          scopes: null,
          peers: null,
          namespaces: null,
          ipBlocks: ['10.0.0.0/8'],
          when: null,
        },
        {
          source: 'spec.defaults.allow[1]',
          jwt: 'Any',
          claims: null,
          scopes: ['read'],
          peers: null,
          namespaces: null,
          ipBlocks: null,
          when: null,
        },
      ],
    };
    assert.deepEqual(p.routes[2]?.access, defaults);
    assert.deepEqual(p.routes[3]?.access, defaults, 'public: false is the same as omitting it');
    assert.deepEqual(compiled({ routes: [{ name: 'x', path: '/x' }] }).routes[0]?.access, { kind: 'deny' });
  });

  it("a route's rateLimit (name or list) overrides defaults.rateLimit", () => {
    const p = compiled({
      rateLimits: [
        { name: 'a', limit: 1, period: '1s' },
        { name: 'b', limit: 1, period: '1s' },
      ],
      defaults: { rateLimit: 'a' },
      routes: [
        { name: 'r1', path: '/1', public: true },
        { name: 'r2', path: '/2', public: true, rateLimit: 'b' },
        { name: 'r3', path: '/3', public: true, rateLimit: ['b', 'a'] },
      ],
    });
    assert.deepEqual(
      p.routes.map((r) => r.rateLimits),
      [['a'], ['b'], ['b', 'a']],
    );
    const list = compiled({
      rateLimits: [{ name: 'a', limit: 1, period: '1s' }],
      defaults: { rateLimit: ['a'] },
    });
    assert.deepEqual(list.routes[0]?.rateLimits, ['a']);
  });

  it('does not share arrays with the input policy', () => {
    const input = policy('p', {
      routes: [{ name: 'r', path: '/', methods: ['GET'], public: true, response: { omitFields: ['a'] } }],
    });
    const p = compilePolicy(input);
    p.routes[0]?.methods.push('POST');
    p.routes[0]?.response.omitFields?.push('b');
    assert.deepEqual(input.spec.routes[0]?.methods, ['GET']);
    assert.deepEqual(input.spec.routes[0]?.response?.omitFields, ['a']);
  });
});

describe('compilePolicy: hashes', () => {
  it('the policy hash covers content, not the object it came from', () => {
    const a = compilePolicy(policy({ name: 'a', namespace: 'x', generation: 1 }));
    const b = compilePolicy(policy({ name: 'b', namespace: 'y', generation: 7, labels: { l: 'v' } }));
    assert.equal(a.hash, b.hash);
    const { ref: _ref, hash: _hash, ...content } = a;
    assert.equal(a.hash, contentHash(content));
  });

  it('the policy hash changes with what is enforced', () => {
    const base = compilePolicy(policy('p')).hash;
    assert.notEqual(compilePolicy(policy('p', { mode: 'Audit' })).hash, base);
    assert.notEqual(compilePolicy(policy('p', { port: 8080 })).hash, base);
    assert.notEqual(
      compilePolicy(policy('p', { routes: [{ name: 'health', path: '/health', public: true }] })).hash,
      base,
    );
  });

  it('writing a default explicitly does not change the hash', () => {
    assert.equal(
      compilePolicy(policy('p', { mode: 'Enforce', unmatched: 'Deny', mtls: { mode: 'Permissive' } })).hash,
      compilePolicy(policy('p')).hash,
    );
  });

  it('claims written in another key order do not change the hash', () => {
    const jwt = [{ name: 'c', issuer: 'i', jwksUri: 'https://i/' }];
    const one = compiled({
      jwt,
      routes: [{ name: 'r', path: '/', allow: [{ claims: { a: ['1'], b: ['2'] } }] }],
    });
    const two = compiled({
      jwt,
      routes: [{ name: 'r', path: '/', allow: [{ claims: { b: ['2'], a: ['1'] } }] }],
    });
    assert.equal(one.hash, two.hash);
  });
});

describe('compilePolicies', () => {
  it('compiles the orders example into a bundle', () => {
    const r = compilePolicies([ORDERS], { namespace: 'shop', labels: { app: 'orders' }, port: 8080 });
    assert.deepEqual(r.diagnostics, []);
    assert.deepEqual(r.conflicts, []);
    assert.ok(r.bundle);
    assert.equal(r.bundle.kind, 'tollgate.dev/PolicyBundle');
    assert.equal(r.bundle.schemaVersion, 1);
    assert.equal(r.bundle.version, contentHash(r.bundle.policies));
    assert.deepEqual(
      r.bundle.policies.map((p) => [p.ref, p.port, p.routes.length]),
      [[{ name: 'orders', namespace: 'shop', generation: null }, 8080, 9]],
    );
  });

  it('leaves an invalid policy out and returns its diagnostics', () => {
    const bad = policy('bad', { mode: 'Shadow' as 'Audit' });
    const r = compilePolicies([policy('good'), bad]);
    assert.deepEqual(
      r.bundle.policies.map((p) => p.ref.name),
      ['good'],
    );
    assert.deepEqual(r.conflicts, []);
    assert.deepEqual(r.diagnostics.map(formatDiagnostic), ['spec.mode: must be one of Enforce, Audit']);
  });

  it('keeps warnings next to a bundle', () => {
    const r = compilePolicies([policy('p', { routes: [{ name: 'r', path: '/' }] })]);
    assert.ok(r.bundle);
    assert.deepEqual(
      r.diagnostics.map((d) => d.severity),
      ['warning'],
    );
  });

  it('an empty list compiles to an empty bundle', () => {
    const b = bundleOf([]);
    assert.deepEqual(b.policies, []);
    assert.equal(b.version, contentHash([]));
  });

  it('an invalid policy that the workload does not select does not block its bundle', () => {
    const other = policy(
      { name: 'other', namespace: 'shop' },
      { selector: { matchLabels: { app: 'cart' } }, mode: 'Shadow' as 'Audit' },
    );
    const mine = policy(
      { name: 'mine', namespace: 'shop' },
      { selector: { matchLabels: { app: 'orders' } } },
    );
    const r = compilePolicies([other, mine], { namespace: 'shop', labels: { app: 'orders' } });
    assert.ok(r.bundle);
    assert.deepEqual(
      r.bundle.policies.map((p) => p.ref.name),
      ['mine'],
    );
  });
});

describe('compilePolicies: selection', () => {
  const a = policy(
    { name: 'a', namespace: 'shop' },
    { selector: { matchLabels: { app: 'orders' } }, port: 8080 },
  );
  const b = policy(
    { name: 'b', namespace: 'shop' },
    { selector: { matchLabels: { app: 'cart' } }, port: 8080 },
  );
  const c = policy({ name: 'c', namespace: 'other' }, { selector: {}, port: 9090 });
  const d = policy({ name: 'd' }, { port: 7070 });
  const all = [a, b, c, d];

  const cases: [name: string, workload: Workload, expected: string[]][] = [
    ['no filter: every policy, oldest first then by namespace/name', {}, ['default/d', 'other/c', 'shop/a']],
    ['by namespace', { namespace: 'shop' }, ['shop/a']],
    ['by namespace: an omitted namespace is "default"', { namespace: 'default' }, ['default/d']],
    ['by labels', { namespace: 'shop', labels: { app: 'cart' } }, ['shop/b']],
    [
      'by labels: an empty selector selects every pod',
      { labels: { app: 'anything' } },
      ['default/d', 'other/c'],
    ],
    ['by port', { port: 9090 }, ['other/c']],
    ['by port: no policy for it', { namespace: 'shop', labels: { app: 'orders' }, port: 9090 }, []],
    ['everything', { namespace: 'shop', labels: { app: 'orders', tier: 'x' }, port: 8080 }, ['shop/a']],
  ];
  for (const [name, workload, expected] of cases) {
    it(name, () => {
      assert.deepEqual(names(all, workload), expected);
    });
  }

  it('a port-less policy applies to a workload on any port', () => {
    const any = policy({ name: 'any', namespace: 'shop' });
    assert.deepEqual(names([any], { namespace: 'shop', port: 1234 }), ['shop/any']);
  });
});

describe('compilePolicies: conflicts', () => {
  const ts = (day: number) => `2026-01-${String(day).padStart(2, '0')}T00:00:00Z`;
  const at = (name: string, day: number | null, spec: Partial<ApiPolicySpec> = {}) =>
    policy({ name, namespace: 'shop', ...(day === null ? {} : { creationTimestamp: ts(day) }) }, spec);
  const workload = { namespace: 'shop', labels: { app: 'orders' } };

  const cases: [
    name: string,
    docs: ApiPolicy[],
    winners: string[],
    losers: [loser: string, winner: string][],
  ][] = [
    [
      'the oldest wins',
      [at('new', 3), at('old', 1), at('mid', 2)],
      ['old'],
      [
        ['mid', 'old'],
        ['new', 'old'],
      ],
    ],
    ['same timestamp: the first name wins', [at('zeta', 1), at('alpha', 1)], ['alpha'], [['zeta', 'alpha']]],
    [
      'timestamps compare as instants, not text',
      [at('a', null, {}), at('b', null)].map((p, i) => ({
        ...p,
        metadata: {
          ...p.metadata,
          creationTimestamp: i === 0 ? '2026-01-01T10:00:00+09:00' : '2026-01-01T02:00:00Z',
        },
      })),
      ['a'],
      [['b', 'a']],
    ],
    [
      'no timestamp sorts first',
      [at('stamped', 1), at('unstamped', null)],
      ['unstamped'],
      [['stamped', 'unstamped']],
    ],
    ['different ports do not conflict', [at('a', 2, { port: 80 }), at('b', 1, { port: 81 })], ['b', 'a'], []],
    [
      'a port-less policy overlaps every port',
      [at('ported', 2, { port: 80 }), at('portless', 1)],
      ['portless'],
      [['ported', 'portless']],
    ],
    [
      'policies that do not select the workload never conflict',
      [at('cart', 1, { selector: { matchLabels: { app: 'cart' } } }), at('orders', 2)],
      ['orders'],
      [],
    ],
  ];
  for (const [name, docs, winners, losers] of cases) {
    it(name, () => {
      const r = compilePolicies(docs, workload);
      assert.ok(r.bundle);
      assert.deepEqual(
        r.bundle.policies.map((p) => p.ref.name),
        winners,
      );
      assert.deepEqual(
        r.conflicts.map((c) => [c.policy.name, c.winner.name]),
        losers,
      );
      assert.deepEqual(
        r.diagnostics.map(formatDiagnostic),
        losers.map(
          ([l, w]) =>
            `metadata.name: warning: Conflicted: shop/${l} selects the same workload and port as the older shop/${w}, which wins`,
        ),
      );
    });
  }

  it('a newer port-less policy still governs the ports an older port policy does not take', () => {
    const r = compilePolicies(
      [at('portless', 2), at('p80', 1, { port: 80 }), at('p81', 3, { port: 81 })],
      workload,
    );
    assert.ok(r.bundle);
    assert.deepEqual(
      r.bundle.policies.map((p) => p.ref.name),
      ['p80', 'portless'],
    );
    assert.ok(r.conflicts.some((c) => c.policy.name === 'p81' && c.winner.name === 'portless'));
  });

  it('the same instant written two ways is a tie, broken by name', () => {
    const zeta = {
      ...at('zeta', null),
      metadata: { name: 'zeta', namespace: 'shop', creationTimestamp: '2026-01-01T00:00:00.000Z' },
    };
    const alpha = {
      ...at('alpha', null),
      metadata: { name: 'alpha', namespace: 'shop', creationTimestamp: '2026-01-01T00:00:00Z' },
    };
    assert.deepEqual(names([zeta, alpha], workload), ['shop/alpha']);
  });

  it('the winner does not depend on input order', () => {
    const docs = [at('b', 1), at('a', 1), at('c', 1)];
    for (const order of [docs, [...docs].reverse(), [docs[2], docs[0], docs[1]]]) {
      assert.deepEqual(names(order, workload), ['shop/a']);
    }
  });

  it('selectPolicies reports the same conflicts', () => {
    const r = selectPolicies([at('new', 2), at('old', 1)], workload);
    assert.deepEqual(
      r.winners.map((p) => p.metadata.name),
      ['old'],
    );
    assert.deepEqual(r.conflicts, [
      {
        policy: { name: 'new', namespace: 'shop', generation: null },
        winner: { name: 'old', namespace: 'shop', generation: null },
        port: null,
      },
    ]);
  });
});

describe('compilePolicies: bundle version', () => {
  const reorder = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(reorder);
    if (value === null || typeof value !== 'object') return value;
    return Object.fromEntries(
      Object.entries(value)
        .reverse()
        .map(([k, v]) => [k, reorder(v)]),
    );
  };

  it('is stable for the same input', () => {
    assert.equal(bundleOf([ORDERS]).version, bundleOf([structuredClone(ORDERS)]).version);
  });

  it('does not change when keys are written in another order (except claims maps)', () => {
    const noClaims = policy(
      { name: 'p', namespace: 'shop', generation: 2, labels: { a: '1', b: '2' } },
      {
        jwt: [{ name: 'c', issuer: 'i', jwksUri: 'https://i/', audiences: ['x'] }],
        rateLimits: [{ name: 'r', limit: 1, period: '1s', key: { ip: {} } }],
        routes: [
          {
            name: 'r',
            path: '/x',
            allow: [{ jwt: 'c', scopes: ['s'] }],
            request: {
              body: { type: 'object', properties: { a: { type: 'string' }, b: { type: 'integer' } } },
            },
          },
        ],
      },
    );
    assert.equal(bundleOf([reorder(noClaims)]).version, bundleOf([noClaims]).version);
  });

  it('does not change with labels or annotations', () => {
    const one = policy({ name: 'p', labels: { a: '1' } });
    const two = { ...one, metadata: { ...one.metadata, labels: { a: '2' }, annotations: { note: 'x' } } };
    assert.equal(bundleOf([one]).version, bundleOf([two]).version);
  });

  it('changes when the content changes', () => {
    const versions = new Set([
      bundleOf([ORDERS]).version,
      bundleOf([{ ...ORDERS, spec: { ...ORDERS.spec, mode: 'Audit' } }]).version,
      bundleOf([{ ...ORDERS, spec: { ...ORDERS.spec, unmatched: 'Allow' } }]).version,
      bundleOf([{ ...ORDERS, spec: { ...ORDERS.spec, routes: ORDERS.spec.routes.slice(1) } }]).version,
    ]);
    assert.equal(versions.size, 4);
  });

  it('changes when the policy identity changes (the bundle says where each policy came from)', () => {
    assert.notEqual(bundleOf([policy('a')]).version, bundleOf([policy('b')]).version);
  });
});
