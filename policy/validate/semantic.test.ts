import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { formatPath } from '../diagnostics.ts';
import type { AllowRule, ApiPolicy, ApiPolicySpec, JwtProvider, Route } from '../schema/api-policy.ts';
import { validateSemantics } from './semantic.ts';

type Row = [severity: 'error' | 'warning', path: string, message: string];

function check(spec: ApiPolicySpec): Row[] {
  return validateSemantics(spec).map((d) => [d.severity, formatPath(d.path), d.message]);
}

const corp: JwtProvider = {
  name: 'corp',
  issuer: 'https://login.example.com/',
  jwksUri: 'https://login.example.com/jwks',
};

/** A valid spec with one provider and one route; `over` replaces top-level fields. */
function spec(over: Partial<ApiPolicySpec> = {}): ApiPolicySpec {
  return { jwt: [corp], routes: [{ name: 'r', path: '/v1/{id}', allow: [{ jwt: 'corp' }] }], ...over };
}

/** A spec whose only route is `route` (name and path defaulted). */
function withRoute(route: Partial<Route>, over: Partial<ApiPolicySpec> = {}): ApiPolicySpec {
  return spec({ routes: [{ name: 'r', path: '/v1/{id}', ...route }], ...over });
}

function withRule(rule: AllowRule, over: Partial<ApiPolicySpec> = {}): ApiPolicySpec {
  return withRoute({ allow: [rule] }, over);
}

function withProvider(p: Partial<JwtProvider>): ApiPolicySpec {
  return spec({ jwt: [{ ...corp, ...p }] });
}

const LONG_DURATION = `${'1'.repeat(63)}s0s`;

interface Case {
  name: string;
  spec: ApiPolicySpec;
  expect: Row[];
}

function table(title: string, cases: Case[]): void {
  describe(title, () => {
    for (const c of cases) {
      it(c.name, () => {
        assert.deepEqual(check(c.spec), c.expect);
      });
    }
  });
}

describe('validateSemantics: valid policies', () => {
  it('accepts the minimal spec', () => {
    assert.deepEqual(check(spec()), []);
  });

  it('accepts the orders example', () => {
    const policy = parse(
      readFileSync(new URL('../../examples/orders-policy.yaml', import.meta.url), 'utf8'),
    ) as ApiPolicy;
    assert.deepEqual(check(policy.spec), []);
  });
});

table('validateSemantics: selector', [
  {
    name: 'In without values',
    spec: spec({ selector: { matchExpressions: [{ key: 'app', operator: 'In' }] } }),
    expect: [['error', 'spec.selector.matchExpressions[0].values', 'operator In needs at least one value']],
  },
  {
    name: 'NotIn with an empty list',
    spec: spec({ selector: { matchExpressions: [{ key: 'app', operator: 'NotIn', values: [] }] } }),
    expect: [
      ['error', 'spec.selector.matchExpressions[0].values', 'operator NotIn needs at least one value'],
    ],
  },
  {
    name: 'Exists with values (second expression)',
    spec: spec({
      selector: {
        matchExpressions: [
          { key: 'app', operator: 'In', values: ['a'] },
          { key: 'tier', operator: 'Exists', values: ['x'] },
        ],
      },
    }),
    expect: [['error', 'spec.selector.matchExpressions[1].values', 'operator Exists takes no values']],
  },
  {
    name: 'DoesNotExist with values',
    spec: spec({ selector: { matchExpressions: [{ key: 'a', operator: 'DoesNotExist', values: ['x'] }] } }),
    expect: [['error', 'spec.selector.matchExpressions[0].values', 'operator DoesNotExist takes no values']],
  },
  {
    name: 'Exists and DoesNotExist without values, NotIn with values',
    spec: spec({
      selector: {
        matchExpressions: [
          { key: 'a', operator: 'Exists' },
          { key: 'b', operator: 'DoesNotExist', values: [] },
          { key: 'c', operator: 'NotIn', values: ['x'] },
        ],
      },
    }),
    expect: [],
  },
]);

table('validateSemantics: jwt providers', [
  {
    name: 'duplicate provider name',
    spec: spec({ jwt: [corp, { ...corp }] }),
    expect: [['error', 'spec.jwt[1].name', 'duplicate provider name "corp"']],
  },
  {
    name: '"any" is reserved',
    spec: spec({ jwt: [corp, { ...corp, name: 'any' }] }),
    expect: [['error', 'spec.jwt[1].name', '"any" is reserved (allow rules say jwt: Any)']],
  },
  {
    name: 'both jwksUri and jwks',
    spec: withProvider({ jwks: '{"keys":[{"kty":"RSA","n":"x","e":"AQAB"}]}' }),
    expect: [['error', 'spec.jwt[0]', 'exactly one of jwksUri or jwks must be set']],
  },
  {
    name: 'neither jwksUri nor jwks',
    spec: spec({ jwt: [{ name: 'corp', issuer: 'i' }] }),
    expect: [['error', 'spec.jwt[0]', 'exactly one of jwksUri or jwks must be set']],
  },
  {
    name: 'jwksUri that is not a URL',
    spec: withProvider({ jwksUri: 'login.example.com/jwks' }),
    expect: [['error', 'spec.jwt[0].jwksUri', 'is not a valid URL']],
  },
  {
    name: 'jwksUri with another scheme',
    spec: withProvider({ jwksUri: 'ftp://login.example.com/jwks' }),
    expect: [['error', 'spec.jwt[0].jwksUri', 'must be an https:// URL']],
  },
  {
    name: 'plain http jwksUri is a warning',
    spec: withProvider({ jwksUri: 'http://login.example.com/jwks' }),
    expect: [
      ['warning', 'spec.jwt[0].jwksUri', 'plain http lets anyone on the path swap the keys; use https'],
    ],
  },
  ...['http://localhost:8080/jwks', 'http://127.0.0.1/jwks', 'http://[::1]:9000/jwks'].map(
    (uri): Case => ({
      name: `plain http on loopback is fine: ${uri}`,
      spec: withProvider({ jwksUri: uri }),
      expect: [],
    }),
  ),
  {
    name: 'inline JWKS that is not JSON',
    spec: spec({ jwt: [{ name: 'corp', issuer: 'i', jwks: '{keys: [' }] }),
    expect: [['error', 'spec.jwt[0].jwks', 'is not valid JSON']],
  },
  ...['{}', 'null', '{"keys": []}', '{"keys": {}}', '[]'].map(
    (jwks): Case => ({
      name: `inline JWKS without keys: ${jwks}`,
      spec: spec({ jwt: [{ name: 'corp', issuer: 'i', jwks }] }),
      expect: [['error', 'spec.jwt[0].jwks', 'must be a JWKS: {"keys": [...]} with at least one key']],
    }),
  ),
  {
    name: 'inline JWKS with a symmetric key and a private key',
    spec: spec({
      jwt: [
        {
          name: 'corp',
          issuer: 'i',
          jwks: JSON.stringify({
            keys: [
              { kty: 'EC', crv: 'P-256', x: 'x', y: 'y' },
              { kty: 'oct', k: 'c2VjcmV0' },
              { kty: 'RSA', n: 'n', e: 'AQAB', d: 'private' },
              null,
              { kty: 'OKP', crv: 'Ed25519', x: 'x' },
            ],
          }),
        },
      ],
    }),
    expect: [
      ['error', 'spec.jwt[0].jwks', 'key 1: kty must be RSA, EC or OKP (symmetric keys are never accepted)'],
      ['error', 'spec.jwt[0].jwks', 'key 2: contains a private key; publish only public keys'],
      ['error', 'spec.jwt[0].jwks', 'key 3: kty must be RSA, EC or OKP (symmetric keys are never accepted)'],
    ],
  },
  {
    name: 'durations too long to parse',
    spec: withProvider({ maxLifetime: LONG_DURATION, clockSkew: LONG_DURATION }),
    expect: [
      ['error', 'spec.jwt[0].maxLifetime', 'must be a Go-style duration such as 30s, 5m or 1h'],
      ['error', 'spec.jwt[0].clockSkew', 'must be a Go-style duration such as 30s, 5m or 1h'],
    ],
  },
  {
    name: 'token sources: both header and cookie, bad header name, prefix on a cookie',
    spec: withProvider({
      from: [
        { header: 'Authorization', prefix: 'Bearer ' },
        { header: 'x-token', cookie: 'session' },
        { header: 'Bad Header' },
        { cookie: 'session', prefix: 'Bearer ' },
        { cookie: 'ok' },
      ],
    }),
    expect: [
      ['error', 'spec.jwt[0].from[1]', 'exactly one of header or cookie must be set'],
      ['error', 'spec.jwt[0].from[2].header', 'is not a valid header name'],
      ['error', 'spec.jwt[0].from[3].prefix', 'prefix only applies to a header'],
    ],
  },
  {
    name: 'claim headers: bad name, reserved names, proxy-*, set twice',
    spec: withProvider({
      claimHeaders: [
        { claim: 'sub', header: 'X-User-Id' },
        { claim: 'sub', header: 'x user' },
        { claim: 'sub', header: 'Authorization' },
        { claim: 'sub', header: 'Cookie' },
        { claim: 'sub', header: 'Host' },
        { claim: 'sub', header: 'X-Forwarded-For' },
        { claim: 'sub', header: 'Proxy-Foo' },
        { claim: 'email', header: 'x-user-id' },
      ],
    }),
    expect: [
      ['error', 'spec.jwt[0].claimHeaders[1].header', 'is not a valid header name'],
      ['error', 'spec.jwt[0].claimHeaders[2].header', '"authorization" cannot carry claims'],
      ['error', 'spec.jwt[0].claimHeaders[3].header', '"cookie" cannot carry claims'],
      ['error', 'spec.jwt[0].claimHeaders[4].header', '"host" cannot carry claims'],
      ['error', 'spec.jwt[0].claimHeaders[5].header', '"x-forwarded-for" cannot carry claims'],
      ['error', 'spec.jwt[0].claimHeaders[6].header', '"proxy-foo" cannot carry claims'],
      ['error', 'spec.jwt[0].claimHeaders[7].header', 'header "x-user-id" is set twice'],
    ],
  },
]);

table('validateSemantics: rate limits', [
  {
    name: 'duplicate limit name',
    spec: spec({
      rateLimits: [
        { name: 'per-ip', key: { ip: {} }, limit: 1, period: '1s' },
        { name: 'per-ip', limit: 2, period: '1s' },
      ],
    }),
    expect: [['error', 'spec.rateLimits[1].name', 'duplicate rate limit name "per-ip"']],
  },
  {
    name: 'period below 1ms, and too long to parse',
    spec: spec({
      rateLimits: [
        { name: 'a', limit: 1, period: '999us' },
        { name: 'b', limit: 1, period: '1000us' },
        { name: 'c', limit: 1, period: LONG_DURATION },
      ],
    }),
    expect: [
      ['error', 'spec.rateLimits[0].period', 'must be at least 1ms'],
      ['error', 'spec.rateLimits[2].period', 'must be a Go-style duration such as 30s, 5m or 1h'],
    ],
  },
  {
    name: 'bad header key',
    spec: spec({ rateLimits: [{ name: 'a', key: { header: 'x:y' }, limit: 1, period: '1s' }] }),
    expect: [['error', 'spec.rateLimits[0].key.header', 'is not a valid header name']],
  },
  {
    name: 'claim key without a provider',
    spec: {
      routes: [{ name: 'r', path: '/', public: true }],
      rateLimits: [{ name: 'a', key: { claim: 'sub' }, limit: 1, period: '1s' }],
    },
    expect: [['error', 'spec.rateLimits[0].key.claim', 'a claim key needs at least one jwt provider']],
  },
  {
    name: 'peer key with mTLS disabled is a warning',
    spec: spec({
      mtls: { mode: 'Disabled' },
      rateLimits: [{ name: 'a', key: { peer: {} }, limit: 1, period: '1s' }],
    }),
    expect: [
      [
        'warning',
        'spec.rateLimits[0].key.peer',
        'mTLS is disabled: every request shares the missing-key bucket',
      ],
    ],
  },
  {
    name: 'peer key with mTLS permissive is fine',
    spec: spec({
      mtls: { mode: 'Permissive' },
      rateLimits: [{ name: 'a', key: { peer: {} }, limit: 1, period: '1s' }],
    }),
    expect: [],
  },
  {
    name: 'unknown limit in defaults (string form)',
    spec: spec({ rateLimits: [{ name: 'a', limit: 1, period: '1s' }], defaults: { rateLimit: 'b' } }),
    expect: [['error', 'spec.defaults.rateLimit', 'unknown rate limit "b"']],
  },
  {
    name: 'unknown limit in defaults (list form: the index of the bad name)',
    spec: spec({ rateLimits: [{ name: 'a', limit: 1, period: '1s' }], defaults: { rateLimit: ['a', 'b'] } }),
    expect: [['error', 'spec.defaults.rateLimit[1]', 'unknown rate limit "b"']],
  },
  {
    name: 'unknown limit in a route (string form)',
    spec: withRoute({ allow: [{ jwt: 'corp' }], rateLimit: 'nope' }),
    expect: [['error', 'spec.routes[0].rateLimit', 'unknown rate limit "nope"']],
  },
  {
    name: 'unknown limits in a route (list form)',
    spec: withRoute(
      { allow: [{ jwt: 'corp' }], rateLimit: ['x', 'a', 'y'] },
      { rateLimits: [{ name: 'a', limit: 1, period: '1s' }] },
    ),
    expect: [
      ['error', 'spec.routes[0].rateLimit[0]', 'unknown rate limit "x"'],
      ['error', 'spec.routes[0].rateLimit[2]', 'unknown rate limit "y"'],
    ],
  },
]);

table('validateSemantics: defaults and protection', [
  {
    name: 'defaults.maxBodyBytes that is not a whole non-negative byte size',
    spec: spec({ defaults: { maxBodyBytes: '100m' } }),
    expect: [
      ['error', 'spec.defaults.maxBodyBytes', 'must be a whole, non-negative byte size such as 64Ki or 1Mi'],
    ],
  },
  {
    name: 'negative defaults.maxBodyBytes',
    spec: spec({ defaults: { maxBodyBytes: -5 } }),
    expect: [
      ['error', 'spec.defaults.maxBodyBytes', 'must be a whole, non-negative byte size such as 64Ki or 1Mi'],
    ],
  },
  {
    name: 'defaults.allow is checked like a route allow list',
    spec: spec({ defaults: { allow: [{ jwt: 'other' }] } }),
    expect: [
      [
        'error',
        'spec.defaults.allow[0].jwt',
        'unknown jwt provider "other" (declare it in spec.jwt, or use Any)',
      ],
    ],
  },
  {
    name: 'protection durations too long to parse',
    spec: spec({
      protection: {
        authFailures: { threshold: 1, window: LONG_DURATION, block: '1m' },
        unmatched: { threshold: 1, window: '1m', block: LONG_DURATION },
      },
    }),
    expect: [
      ['error', 'spec.protection.authFailures.window', 'must be a Go-style duration such as 30s, 5m or 1h'],
      ['error', 'spec.protection.unmatched.block', 'must be a Go-style duration such as 30s, 5m or 1h'],
    ],
  },
]);

table('validateSemantics: allow rules', [
  {
    name: 'token rules without any provider',
    spec: {
      routes: [
        {
          name: 'r',
          path: '/',
          allow: [
            { jwt: 'Any' },
            { claims: { roles: ['admin'] } },
            { scopes: ['read'] },
            { ipBlocks: ['10.0.0.0/8'] },
          ],
        },
      ],
    },
    expect: [
      ['error', 'spec.routes[0].allow[0]', 'needs a token, but spec.jwt declares no provider'],
      ['error', 'spec.routes[0].allow[1]', 'needs a token, but spec.jwt declares no provider'],
      ['error', 'spec.routes[0].allow[2]', 'needs a token, but spec.jwt declares no provider'],
    ],
  },
  {
    name: 'unknown jwt provider; Any is fine',
    spec: withRoute({ allow: [{ jwt: 'Any' }, { jwt: 'other' }] }),
    expect: [
      [
        'error',
        'spec.routes[0].allow[1].jwt',
        'unknown jwt provider "other" (declare it in spec.jwt, or use Any)',
      ],
    ],
  },
  {
    name: 'claim path with an empty segment',
    spec: withRule({ claims: { 'org..id': ['1'], 'https://x.io/roles': ['a'], '.a': ['x'] } }),
    expect: [
      ['error', 'spec.routes[0].allow[0].claims["org..id"]', 'has an empty path segment'],
      ['error', 'spec.routes[0].allow[0].claims[".a"]', 'has an empty path segment'],
    ],
  },
  {
    name: 'peers: SPIFFE IDs, "*" only as a whole segment',
    spec: withRule({
      peers: [
        '*',
        'spiffe://cluster.local/ns/shop/sa/billing',
        'spiffe://cluster.local/ns/*/sa/*',
        'spiffe://*/ns/shop/sa/billing',
        'spiffe://cluster.local',
        'spiffe://cluster.local/ns/sh*p/sa/billing',
        'https://cluster.local/ns/shop',
        'spiffe://Cluster.Local/ns/shop',
        'spiffe://cluster.local/ns//sa/x',
        'billing',
      ],
    }),
    expect: [5, 6, 7, 8, 9].map(
      (j): Row => [
        'error',
        `spec.routes[0].allow[0].peers[${j}]`,
        'must be a SPIFFE ID (spiffe://trust-domain/path, "*" as a whole segment)',
      ],
    ),
  },
  {
    name: 'ipBlocks: CIDRs and bare IPs, v4 and v6',
    spec: withRule({
      ipBlocks: [
        '10.0.0.0/8',
        '192.168.1.7',
        '2001:db8::/32',
        '::1',
        '::ffff:10.0.0.1',
        '10.0.0.0/33',
        'ten',
        '10.0.0.0/',
      ],
    }),
    expect: [5, 6, 7].map(
      (j): Row => ['error', `spec.routes[0].allow[0].ipBlocks[${j}]`, 'is not an IP address or CIDR block'],
    ),
  },
  {
    name: 'CEL that does not parse',
    spec: withRule({ jwt: 'corp', when: 'claims.sub ==' }),
    expect: [['error', 'spec.routes[0].allow[0].when', 'invalid CEL: Unexpected token: EOF']],
  },
  {
    name: 'CEL with an unknown variable',
    spec: withRule({ jwt: 'corp', when: 'user.id == "x"' }),
    expect: [['error', 'spec.routes[0].allow[0].when', 'invalid CEL: Unknown variable: user']],
  },
  {
    name: 'CEL that is not a bool',
    spec: withRule({ jwt: 'corp', when: 'size(params.id) + 1' }),
    expect: [['error', 'spec.routes[0].allow[0].when', 'CEL expression must be of type bool, not int']],
  },
  {
    name: 'params.x that is not in the template',
    spec: withRule({ jwt: 'corp', when: 'params.id == claims.sub && params.userId == claims.sub' }),
    expect: [['error', 'spec.routes[0].allow[0].when', 'params.userId is not a parameter of /v1/{id}']],
  },
  {
    name: 'params.x in the template is fine, as are params of a /** route that declares them',
    spec: spec({
      routes: [
        { name: 'a', path: '/v1/{id}', allow: [{ jwt: 'corp', when: 'params.id == claims.sub' }] },
        { name: 'b', path: '/v2/{org}/**', allow: [{ jwt: 'corp', when: 'has(params.org)' }] },
      ],
    }),
    expect: [],
  },
  {
    name: 'params in defaults.allow are checked against the routes that inherit them',
    spec: spec({
      defaults: { allow: [{ jwt: 'corp', when: 'params.userId == claims.sub' }] },
      routes: [
        { name: 'r', path: '/v1/{id}' },
        { name: 'ok', path: '/v1/users/{userId}' },
        { name: 'own', path: '/v2/{id}', allow: [{ jwt: 'corp' }] },
      ],
    }),
    expect: [
      [
        'error',
        'spec.routes[0].path',
        'inherits spec.defaults.allow[0].when, which uses params.userId: not a parameter here',
      ],
    ],
  },
]);

table('validateSemantics: routes', [
  {
    name: 'duplicate route name',
    spec: spec({
      routes: [
        { name: 'r', path: '/a', public: true },
        { name: 's', path: '/b', public: true },
        { name: 'r', path: '/c', public: true },
      ],
    }),
    expect: [['error', 'spec.routes[2].name', 'duplicate route name "r" (also routes[0])']],
  },
  {
    name: 'a method listed twice',
    spec: withRoute({ public: true, methods: ['GET', 'POST', 'GET'] }),
    expect: [['error', 'spec.routes[0].methods', 'lists a method twice']],
  },
  {
    name: 'a bad path template',
    spec: withRoute({ public: true, path: '/a//b' }),
    expect: [['error', 'spec.routes[0].path', 'empty segment ("//") is not allowed']],
  },
  {
    name: 'template conflict when methods overlap (parameter names do not matter)',
    spec: spec({
      routes: [
        { name: 'a', path: '/v1/{id}', methods: ['GET', 'PUT'], public: true },
        { name: 'b', path: '/v1/{key}', methods: ['PUT', 'GET', 'DELETE'], public: true },
      ],
    }),
    expect: [['error', 'spec.routes[1].path', 'conflicts with route "a": same template and method GET, PUT']],
  },
  {
    name: 'no conflict when methods are disjoint',
    spec: spec({
      routes: [
        { name: 'a', path: '/v1/{id}', methods: ['GET', 'HEAD'], public: true },
        { name: 'b', path: '/v1/{key}', methods: ['POST'], public: true },
        { name: 'c', path: '/v1/{key}/x', public: true },
      ],
    }),
    expect: [],
  },
  {
    name: 'omitted methods mean every method but TRACE and CONNECT',
    spec: spec({
      routes: [
        { name: 'a', path: '/x', public: true },
        { name: 'b', path: '/x', methods: ['TRACE', 'CONNECT'], public: true },
        { name: 'c', path: '/x', methods: ['PATCH'], public: true },
      ],
    }),
    expect: [['error', 'spec.routes[2].path', 'conflicts with route "a": same template and method PATCH']],
  },
  {
    name: 'public and allow are exclusive',
    spec: withRoute({ public: true, allow: [{ jwt: 'corp' }] }),
    expect: [['error', 'spec.routes[0].public', 'public and allow are exclusive']],
  },
  {
    name: 'a route without allow, public or defaults.allow is a warning',
    spec: withRoute({ public: false }),
    expect: [
      [
        'warning',
        'spec.routes[0]',
        'has neither allow nor public and there is no defaults.allow: every request is denied',
      ],
    ],
  },
  {
    name: 'a route without allow takes defaults.allow',
    spec: withRoute({}, { defaults: { allow: [{ jwt: 'corp' }] } }),
    expect: [],
  },
  {
    name: 'timeout too long to parse',
    spec: withRoute({ public: true, timeout: LONG_DURATION }),
    expect: [['error', 'spec.routes[0].timeout', 'must be a Go-style duration such as 30s, 5m or 1h']],
  },
  {
    name: 'request: maxBodyBytes and contentTypes',
    spec: withRoute({
      public: true,
      request: {
        maxBodyBytes: '1.5m',
        contentTypes: [
          'application/json',
          'application/*',
          '*/*',
          'text/plain',
          'json',
          'application/json; charset=utf-8',
          '*/json',
        ],
      },
    }),
    expect: [
      [
        'error',
        'spec.routes[0].request.maxBodyBytes',
        'must be a whole, non-negative byte size such as 64Ki or 1Mi',
      ],
      ['error', 'spec.routes[0].request.contentTypes[4]', 'is not a media type such as application/json'],
      ['error', 'spec.routes[0].request.contentTypes[6]', 'is not a media type such as application/json'],
    ],
  },
  {
    name: 'request: bad JSON Schemas for query and body',
    spec: withRoute({
      public: true,
      request: {
        query: { type: 'object', properties: { q: { type: 'string', pattern: '^[a-' } } },
        body: { type: 'object', properties: { a: { $ref: '#/x' } } },
      },
    }),
    expect: [
      [
        'error',
        'spec.routes[0].request.query',
        'invalid JSON Schema: Invalid regular expression: /^[a-/u: Unterminated character class',
      ],
      [
        'error',
        'spec.routes[0].request.body',
        'JSON Schema keyword "$ref" at /properties/a is not supported',
      ],
    ],
  },
  {
    name: 'request: unknown JSON Schema keyword',
    spec: withRoute({ public: true, request: { body: { type: 'object', requird: ['a'] } } }),
    expect: [
      [
        'error',
        'spec.routes[0].request.body',
        'invalid JSON Schema: strict mode: unknown keyword: "requird"',
      ],
    ],
  },
  {
    name: 'deprecation: malformed dates and link',
    spec: withRoute({
      public: true,
      deprecation: { since: 'June 2026', sunset: '2027-02-30', link: 'docs/migrate' },
    }),
    expect: [
      ['error', 'spec.routes[0].deprecation.since', 'must be a date (YYYY-MM-DD) or RFC 3339 instant'],
      ['error', 'spec.routes[0].deprecation.sunset', 'must be a date (YYYY-MM-DD) or RFC 3339 instant'],
      ['error', 'spec.routes[0].deprecation.link', 'is not a valid URL'],
    ],
  },
  {
    name: 'deprecation: sunset equal to since',
    spec: withRoute({ public: true, deprecation: { since: '2026-06-01', sunset: '2026-06-01T00:00:00Z' } }),
    expect: [['error', 'spec.routes[0].deprecation.sunset', 'must be after since']],
  },
  {
    name: 'deprecation: sunset before since',
    spec: withRoute({ public: true, deprecation: { since: '2026-06-01', sunset: '2026-05-31' } }),
    expect: [['error', 'spec.routes[0].deprecation.sunset', 'must be after since']],
  },
  {
    name: 'deprecation: sunset after since, with a link',
    spec: withRoute({
      public: true,
      deprecation: {
        since: '2026-06-01T00:00:00+02:00',
        sunset: '2026-06-01',
        link: 'https://docs.example.com/m',
      },
    }),
    expect: [],
  },
  {
    name: 'deprecation: an invalid since skips the ordering check',
    spec: withRoute({ public: true, deprecation: { since: 'soon', sunset: '2020-01-01' } }),
    expect: [
      ['error', 'spec.routes[0].deprecation.since', 'must be a date (YYYY-MM-DD) or RFC 3339 instant'],
    ],
  },
  {
    name: 'response.omitFields with an empty segment',
    spec: withRoute({ public: true, response: { omitFields: ['a.b', '*.secret', 'a..b', '.x'] } }),
    expect: [
      ['error', 'spec.routes[0].response.omitFields[2]', 'has an empty path segment'],
      ['error', 'spec.routes[0].response.omitFields[3]', 'has an empty path segment'],
    ],
  },
]);

describe('validateSemantics: known gaps', () => {
  it('reports a body schema whose properties is null, and the route checks after it', () => {
    const body = { type: 'object', properties: null } as unknown as Record<string, unknown>;
    const rows = check(withRoute({ public: true, request: { body }, deprecation: { since: 'soon' } }));
    assert.deepEqual(
      rows.map((r) => r[1]),
      ['spec.routes[0].request.body', 'spec.routes[0].deprecation.since'],
    );
  });

  it('rejects non-canonical IPv4 forms that parse as another address', () => {
    assert.deepEqual(check(withRule({ ipBlocks: ['010.0.0.1', '10/8', '127.1'] })), [
      ['error', 'spec.routes[0].allow[0].ipBlocks[0]', 'is not an IP address or CIDR block'],
      ['error', 'spec.routes[0].allow[0].ipBlocks[1]', 'is not an IP address or CIDR block'],
      ['error', 'spec.routes[0].allow[0].ipBlocks[2]', 'is not an IP address or CIDR block'],
    ]);
  });
});
