import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { WhenContext } from '../cel/when.ts';
import type { CompiledAllowRule, RouteAccess } from '../compile/bundle.ts';
import { AccessRuntime, type AuthzInput, type AuthzResult, type Identity } from './authorize.ts';
import { parsePeer } from './peer.ts';

let ruleCount = 0;
function rule(fields: Partial<CompiledAllowRule>): CompiledAllowRule {
  return {
    source: `spec.routes[0].allow[${ruleCount++}]`,
    jwt: null,
    claims: null,
    scopes: null,
    peers: null,
    namespaces: null,
    ipBlocks: null,
    when: null,
    ...fields,
  };
}

function rules(...list: Partial<CompiledAllowRule>[]): RouteAccess {
  ruleCount = 0;
  return { kind: 'rules', from: 'route', rules: list.map(rule) };
}

interface Facts {
  identity?: Identity | null;
  peer?: string | null;
  ip?: string;
  params?: Record<string, string>;
}

function input(f: Facts = {}): AuthzInput {
  const peer = f.peer ? parsePeer(f.peer) : null;
  const ip = f.ip ?? '10.0.0.1';
  return {
    identity: f.identity ?? null,
    peer,
    ip,
    whenContext: (): WhenContext => ({
      request: { method: 'GET', path: '/', host: 'h', headers: {}, query: {} },
      params: f.params ?? {},
      claims: f.identity?.claims ?? {},
      peer,
      source: { ip },
    }),
  };
}

const corp = (claims: Record<string, unknown> = { sub: 'alice' }): Identity => ({ provider: 'corp', claims });
const partner: Identity = { provider: 'partner', claims: { sub: 'p-1' } };
const billing = 'spiffe://cluster.local/ns/shop/sa/billing';

function authorize(access: RouteAccess, f: Facts = {}): AuthzResult {
  return new AccessRuntime(access).authorize(input(f));
}

/** Short form of a result: 'allow <rule>' or '<status>'. */
function verdict(r: AuthzResult): string {
  return r.allowed ? `allow ${r.rule}` : String(r.status);
}

describe('AccessRuntime: public and deny', () => {
  it('a public route allows anyone', () => {
    const access = new AccessRuntime({ kind: 'public' });
    assert.equal(access.isPublic, true);
    assert.deepEqual(access.authorize(input()), { allowed: true, rule: null, reason: 'public route' });
  });

  it('a route without rules denies with 403, token or not', () => {
    const access = new AccessRuntime({ kind: 'deny' });
    assert.equal(access.isPublic, false);
    const expected = {
      allowed: false,
      status: 403,
      reason: 'route has no allow rules and there is no defaults.allow',
      notes: [],
    };
    assert.deepEqual(access.authorize(input()), expected);
    assert.deepEqual(access.authorize(input({ identity: corp() })), expected);
  });
});

describe('AccessRuntime: each kind of rule', () => {
  const cases: [name: string, access: RouteAccess, facts: Facts, expected: string][] = [
    [
      'jwt NAME: token from it',
      rules({ jwt: 'corp' }),
      { identity: corp() },
      'allow spec.routes[0].allow[0]',
    ],
    ['jwt NAME: token from another provider', rules({ jwt: 'corp' }), { identity: partner }, '403'],
    ['jwt NAME: no token', rules({ jwt: 'corp' }), {}, '401'],
    ['jwt Any: any provider', rules({ jwt: 'Any' }), { identity: partner }, 'allow spec.routes[0].allow[0]'],
    ['jwt Any: no token', rules({ jwt: 'Any' }), {}, '401'],
    [
      'claims: equal',
      rules({ claims: [{ claim: 'role', values: ['admin'] }] }),
      { identity: corp({ role: 'admin' }) },
      'allow spec.routes[0].allow[0]',
    ],
    [
      'claims: array contains, namespaced key',
      rules({ claims: [{ claim: 'https://x.io/roles', values: ['admin', 'ops'] }] }),
      { identity: corp({ 'https://x.io/roles': ['user', 'ops'] }) },
      'allow spec.routes[0].allow[0]',
    ],
    [
      'claims: dotted path into an object',
      rules({ claims: [{ claim: 'org.tier', values: ['3'] }] }),
      { identity: corp({ org: { tier: 3 } }) },
      'allow spec.routes[0].allow[0]',
    ],
    [
      'claims: every claim must hold',
      rules({
        claims: [
          { claim: 'a', values: ['1'] },
          { claim: 'b', values: ['2'] },
        ],
      }),
      { identity: corp({ a: '1', b: '3' }) },
      '403',
    ],
    [
      'claims: missing claim',
      rules({ claims: [{ claim: 'role', values: ['admin'] }] }),
      { identity: corp() },
      '403',
    ],
    ['claims: no token', rules({ claims: [{ claim: 'role', values: ['admin'] }] }), {}, '401'],
    [
      'scopes: all present (scope)',
      rules({ scopes: ['a', 'b'] }),
      { identity: corp({ scope: 'b c a' }) },
      'allow spec.routes[0].allow[0]',
    ],
    [
      'scopes: all present (scp)',
      rules({ scopes: ['a', 'b'] }),
      { identity: corp({ scp: ['a', 'b'] }) },
      'allow spec.routes[0].allow[0]',
    ],
    ['scopes: one missing', rules({ scopes: ['a', 'b'] }), { identity: corp({ scope: 'a' }) }, '403'],
    ['scopes: no token', rules({ scopes: ['a'] }), {}, '401'],
    ['peers: exact', rules({ peers: [billing] }), { peer: billing }, 'allow spec.routes[0].allow[0]'],
    [
      'peers: * segment',
      rules({ peers: ['spiffe://cluster.local/ns/*/sa/billing'] }),
      { peer: billing },
      'allow spec.routes[0].allow[0]',
    ],
    [
      'peers: other peer',
      rules({ peers: ['spiffe://cluster.local/ns/shop/sa/gateway'] }),
      { peer: billing },
      '403',
    ],
    ['peers: no mTLS', rules({ peers: ['*'] }), {}, '403'],
    ['peers: no mTLS, even with a token', rules({ peers: ['*'] }), { identity: corp() }, '403'],
    [
      'namespaces: match',
      rules({ namespaces: ['billing', 'shop'] }),
      { peer: billing },
      'allow spec.routes[0].allow[0]',
    ],
    ['namespaces: other', rules({ namespaces: ['cart'] }), { peer: billing }, '403'],
    [
      'namespaces: a peer outside Kubernetes',
      rules({ namespaces: [''] }),
      { peer: 'spiffe://x.org/vm/1' },
      'allow spec.routes[0].allow[0]',
    ],
    ['namespaces: no mTLS', rules({ namespaces: ['shop'] }), {}, '403'],
    [
      'ipBlocks: IPv4 CIDR',
      rules({ ipBlocks: ['10.0.0.0/8'] }),
      { ip: '10.200.3.4' },
      'allow spec.routes[0].allow[0]',
    ],
    ['ipBlocks: outside', rules({ ipBlocks: ['10.0.0.0/8'] }), { ip: '11.0.0.1' }, '403'],
    [
      'ipBlocks: bare IPv4',
      rules({ ipBlocks: ['192.168.1.7'] }),
      { ip: '192.168.1.7' },
      'allow spec.routes[0].allow[0]',
    ],
    ['ipBlocks: bare IPv4 is /32', rules({ ipBlocks: ['192.168.1.7'] }), { ip: '192.168.1.8' }, '403'],
    [
      'ipBlocks: IPv4-mapped IPv6 client',
      rules({ ipBlocks: ['10.0.0.0/8'] }),
      { ip: '::ffff:10.1.2.3' },
      'allow spec.routes[0].allow[0]',
    ],
    [
      'ipBlocks: IPv6 CIDR',
      rules({ ipBlocks: ['2001:db8::/32'] }),
      { ip: '2001:db8:1::5' },
      'allow spec.routes[0].allow[0]',
    ],
    ['ipBlocks: bare IPv6 is /128', rules({ ipBlocks: ['::1'] }), { ip: '::2' }, '403'],
    ['ipBlocks: IPv4 client, IPv6 block', rules({ ipBlocks: ['::/0'] }), { ip: '10.0.0.1' }, '403'],
    [
      'ipBlocks: any of several',
      rules({ ipBlocks: ['10.0.0.0/8', '::1'] }),
      { ip: '::1' },
      'allow spec.routes[0].allow[0]',
    ],
    [
      'ipBlocks: an unparsable client address',
      rules({ ipBlocks: ['0.0.0.0/0'] }),
      { ip: 'unix:/tmp/s' },
      '403',
    ],
    [
      'when: true',
      rules({ jwt: 'corp', when: 'params.id == claims.sub' }),
      { identity: corp(), params: { id: 'alice' } },
      'allow spec.routes[0].allow[0]',
    ],
    [
      'when: false',
      rules({ jwt: 'corp', when: 'params.id == claims.sub' }),
      { identity: corp(), params: { id: 'bob' } },
      '403',
    ],
    ['when: runtime error denies', rules({ when: 'claims.sub == "alice"' }), {}, '403'],
    ['when: non-bool denies', rules({ when: 'claims.x' }), { identity: corp({ x: 'yes' }) }, '403'],
    [
      'when alone needs no token',
      rules({ when: 'source.ip == "10.0.0.1"' }),
      {},
      'allow spec.routes[0].allow[0]',
    ],
    [
      'all fields of one entry must hold',
      rules({
        jwt: 'corp',
        claims: [{ claim: 'role', values: ['admin'] }],
        scopes: ['s'],
        ipBlocks: ['10.0.0.0/8'],
      }),
      { identity: corp({ role: 'admin', scope: 's' }), ip: '10.0.0.1' },
      'allow spec.routes[0].allow[0]',
    ],
    [
      'any entry may hold: the first that holds is reported',
      rules({ jwt: 'partner' }, { ipBlocks: ['10.0.0.0/8'] }, { jwt: 'corp' }),
      { identity: corp() },
      'allow spec.routes[0].allow[1]',
    ],
  ];
  for (const [name, access, facts, expected] of cases) {
    it(`${name} → ${expected}`, () => {
      assert.equal(verdict(authorize(access, facts)), expected);
    });
  }
});

describe('AccessRuntime: 401 or 403', () => {
  const cases: [name: string, access: RouteAccess, facts: Facts, status: 401 | 403][] = [
    ['no token, a token rule could hold', rules({ peers: [billing] }, { jwt: 'corp' }), {}, 401],
    [
      'no token, only peer and ipBlock rules',
      rules({ peers: [billing] }, { ipBlocks: ['192.168.0.0/16'] }),
      {},
      403,
    ],
    [
      'no token, the token rule also needs an address we do not have',
      rules({ jwt: 'corp', ipBlocks: ['192.168.0.0/16'] }),
      {},
      403,
    ],
    [
      'no token, the token rule also needs a peer we have',
      rules({ jwt: 'corp', peers: [billing] }),
      { peer: billing },
      401,
    ],
    ['no token, the token rule also needs a peer we lack', rules({ jwt: 'corp', peers: [billing] }), {}, 403],
    [
      'a token that does not satisfy the rule',
      rules({ claims: [{ claim: 'role', values: ['admin'] }] }),
      { identity: corp() },
      403,
    ],
    ['a token, and the when is false', rules({ jwt: 'corp', when: 'false' }), { identity: corp() }, 403],
  ];
  for (const [name, access, facts, status] of cases) {
    it(`${name} → ${status}`, () => {
      const r = authorize(access, facts);
      assert.equal(r.allowed, false);
      assert.equal(r.allowed ? 0 : r.status, status);
      assert.equal(
        r.allowed ? '' : r.reason,
        status === 401 ? 'a valid token is required' : 'no allow rule holds',
      );
    });
  }
});

describe('AccessRuntime: notes explain every rule that did not hold', () => {
  it('lists one note per rule, in order', () => {
    const r = authorize(
      rules(
        { jwt: 'partner' },
        { claims: [{ claim: 'roles', values: ['admin', 'ops'] }] },
        { scopes: ['w', 'x', 'y'] },
        { peers: [billing] },
        { namespaces: ['cart'] },
        { ipBlocks: ['192.168.0.0/16'] },
        { jwt: 'corp', when: 'claims.sub == "bob"' },
        { when: 'claims.missing == "x"' },
      ),
      {
        identity: corp({ sub: 'alice', scope: 'x' }),
        peer: 'spiffe://cluster.local/ns/shop/sa/gateway',
        ip: '10.0.0.1',
      },
    );
    assert.deepEqual(r, {
      allowed: false,
      status: 403,
      reason: 'no allow rule holds',
      notes: [
        'spec.routes[0].allow[0]: token is not from provider partner',
        'spec.routes[0].allow[1]: claim roles is not one of [admin, ops]',
        'spec.routes[0].allow[2]: missing scope w, y',
        'spec.routes[0].allow[3]: peer spiffe://cluster.local/ns/shop/sa/gateway not allowed',
        'spec.routes[0].allow[4]: peer namespace shop not allowed',
        'spec.routes[0].allow[5]: client address 10.0.0.1 not in ipBlocks',
        'spec.routes[0].allow[6]: when: claims.sub == "bob" is false',
        'spec.routes[0].allow[7]: when: No such key: missing (denied)',
      ],
    });
  });

  it('says why without a token or a peer', () => {
    const r = authorize(rules({ jwt: 'corp' }, { peers: ['*'] }, { namespaces: ['shop'] }));
    assert.deepEqual(r.allowed ? [] : r.notes, [
      'spec.routes[0].allow[0]: no valid token',
      'spec.routes[0].allow[1]: no mTLS peer identity',
      'spec.routes[0].allow[2]: no mTLS peer identity',
    ]);
  });

  it('reports the rule that allowed', () => {
    assert.deepEqual(authorize(rules({ jwt: 'corp' }), { identity: corp() }), {
      allowed: true,
      rule: 'spec.routes[0].allow[0]',
      reason: 'spec.routes[0].allow[0] holds',
    });
  });
});

describe('AccessRuntime: evaluation order and laziness', () => {
  it('builds the CEL context only when a when expression runs', () => {
    let built = 0;
    const counting = (f: Facts): AuthzInput => {
      const base = input(f);
      return {
        ...base,
        whenContext: () => {
          built++;
          return base.whenContext();
        },
      };
    };
    const access = new AccessRuntime(
      rules({ jwt: 'corp' }, { ipBlocks: ['192.168.0.0/16'], when: 'true' }, { when: 'true' }),
    );
    assert.equal(access.authorize(counting({ identity: corp() })).allowed, true);
    assert.equal(built, 0, 'the first rule held without CEL');
    assert.equal(access.authorize(counting({})).allowed, true);
    assert.equal(built, 1, 'the second rule failed on its address before its when ran');
  });
});

describe('AccessRuntime: compile errors', () => {
  it('throws on CEL that does not compile, naming the rule', () => {
    assert.throws(
      () => new AccessRuntime(rules({ when: 'claims.sub ==' })),
      /^Error: spec\.routes\[0\]\.allow\[0\]\.when: invalid CEL/,
    );
  });

  it('throws on an ipBlock that does not parse', () => {
    assert.throws(() => new AccessRuntime(rules({ ipBlocks: ['10.0.0.0/33'] })));
  });

  it('compiles nothing for public and deny access', () => {
    assert.doesNotThrow(() => new AccessRuntime({ kind: 'public' }));
    assert.doesNotThrow(() => new AccessRuntime({ kind: 'deny' }));
  });
});

describe('AccessRuntime: known gaps', () => {
  it('an IPv4-mapped IPv6 block matches the IPv4 clients it names', () => {
    const access = rules({ ipBlocks: ['::ffff:10.0.0.0/104'] });
    assert.equal(verdict(authorize(access, { ip: '10.1.2.3' })), 'allow spec.routes[0].allow[0]');
    assert.equal(verdict(authorize(access, { ip: '::ffff:10.1.2.3' })), 'allow spec.routes[0].allow[0]');
  });
});
