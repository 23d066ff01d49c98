import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatPath } from '../diagnostics.ts';
import { createAjv, validateSchema } from './schema-validator.ts';

type Row = [path: string, message: string];

function rows(doc: unknown): Row[] {
  return validateSchema(doc).map((d) => {
    assert.equal(d.severity, 'error');
    return [formatPath(d.path), d.message];
  });
}

function doc(spec: unknown, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { apiVersion: 'tollgate.dev/v1alpha1', kind: 'ApiPolicy', metadata: { name: 'p' }, spec, ...extra };
}

const corp = { name: 'corp', issuer: 'https://idp/', jwksUri: 'https://idp/jwks' };
const route = { name: 'r', path: '/a', public: true };

describe('validateSchema: valid documents', () => {
  const cases: [name: string, value: unknown][] = [
    ['minimal', doc({ routes: [] })],
    [
      'a route and a provider',
      doc({ jwt: [corp], routes: [{ name: 'r', path: '/a', allow: [{ jwt: 'corp' }] }] }),
    ],
    [
      'server-side metadata is tolerated',
      doc({ routes: [] }, { metadata: { name: 'p', managedFields: [{}], uid: 'u' } }),
    ],
    [
      'a status written by the operator',
      doc({ routes: [] }, { status: { observedGeneration: 2, policyHash: 'sha256:x' } }),
    ],
    ['a size as an integer', doc({ defaults: { maxBodyBytes: 1024 }, routes: [] })],
    ['a size as a string', doc({ defaults: { maxBodyBytes: '64Ki' }, routes: [] })],
    ['rateLimit as a name', doc({ routes: [{ ...route, rateLimit: 'a' }] })],
    ['rateLimit as a list', doc({ routes: [{ ...route, rateLimit: ['a', 'b'] }] })],
    [
      'a free-form JSON Schema',
      doc({ routes: [{ ...route, request: { body: { type: 'object', anything: 1 } } }] }),
    ],
  ];
  for (const [name, value] of cases) {
    it(name, () => {
      assert.deepEqual(rows(value), []);
    });
  }
});

describe('validateSchema: diagnostics', () => {
  const cases: [name: string, value: unknown, expected: Row[]][] = [
    ['not an object', null, [['(root)', 'must be of type object']]],
    [
      'wrong apiVersion and kind',
      { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'x' }, spec: { routes: [] } },
      [
        ['apiVersion', 'must be "tollgate.dev/v1alpha1"'],
        ['kind', 'must be "ApiPolicy"'],
      ],
    ],
    ['missing spec.routes', doc({}), [['spec.routes', 'is required']]],
    ['missing metadata.name', doc({ routes: [] }, { metadata: {} }), [['metadata.name', 'is required']]],
    ['unknown top-level field', doc({ routes: [] }, { extra: 1 }), [['extra', 'unknown field "extra"']]],
    ['unknown spec field', doc({ routes: [], x: 1 }), [['spec.x', 'unknown field "x"']]],
    [
      'unknown field deep in a route',
      doc({ routes: [route, { ...route, name: 's', request: { maxBody: 1 } }] }),
      [['spec.routes[1].request.maxBody', 'unknown field "maxBody"']],
    ],
    [
      'unknown field in status',
      doc({ routes: [] }, { status: { foo: 1 } }),
      [['status.foo', 'unknown field "foo"']],
    ],
    ['route without a name', doc({ routes: [{ path: '/a' }] }), [['spec.routes[0].name', 'is required']]],
    [
      'wrong enum: mode',
      doc({ mode: 'enforce', routes: [] }),
      [['spec.mode', 'must be one of Enforce, Audit']],
    ],
    [
      'wrong enum: mtls mode',
      doc({ mtls: { mode: 'STRICT' }, routes: [] }),
      [['spec.mtls.mode', 'must be one of Strict, Permissive, Disabled']],
    ],
    [
      'wrong enum: a method',
      doc({ routes: [{ ...route, methods: ['GET', 'get'] }] }),
      [
        [
          'spec.routes[0].methods[1]',
          'must be one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, TRACE, CONNECT',
        ],
      ],
    ],
    [
      'HS256 is never accepted',
      doc({ jwt: [{ ...corp, algorithms: ['HS256'] }], routes: [] }),
      [
        [
          'spec.jwt[0].algorithms[0]',
          'must be one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA',
        ],
      ],
    ],
    [
      'an empty methods list',
      doc({ routes: [{ ...route, methods: [] }] }),
      [['spec.routes[0].methods', 'must have at least 1 item']],
    ],
    ['port out of range', doc({ port: 0, routes: [] }), [['spec.port', 'must be >= 1']]],
    ['port not an integer', doc({ port: 80.5, routes: [] }), [['spec.port', 'must be an integer']]],
    [
      'public not a boolean',
      doc({ routes: [{ ...route, public: 'yes' }] }),
      [['spec.routes[0].public', 'must be of type boolean']],
    ],
    [
      'a route name that is not a DNS label',
      doc({ routes: [{ ...route, name: 'Get_Order' }] }),
      [['spec.routes[0].name', 'must be a lowercase name of letters, digits and "-" (a DNS label)']],
    ],
    [
      'a duration that is not Go-style',
      doc({ routes: [{ ...route, timeout: '5 s' }] }),
      [['spec.routes[0].timeout', 'must be a Go-style duration such as 30s, 5m or 1h']],
    ],
    [
      'a duration without a unit',
      doc({ rateLimits: [{ name: 'a', limit: 1, period: '60' }], routes: [] }),
      [['spec.rateLimits[0].period', 'must be a Go-style duration such as 30s, 5m or 1h']],
    ],
    [
      'a size with a bad unit',
      doc({ defaults: { maxBodyBytes: '1MB' }, routes: [] }),
      [['spec.defaults.maxBodyBytes', 'must be a size such as 64Ki, 1Mi or a byte count']],
    ],
    [
      'a size that is a fraction',
      doc({ defaults: { maxBodyBytes: 1.5 }, routes: [] }),
      [['spec.defaults.maxBodyBytes', 'must be a size such as 64Ki, 1Mi or a byte count']],
    ],
    [
      'a size that is a boolean',
      doc({ routes: [{ ...route, request: { maxBodyBytes: true } }] }),
      [['spec.routes[0].request.maxBodyBytes', 'must be a size such as 64Ki, 1Mi or a byte count']],
    ],
    [
      'an empty allow entry',
      doc({ routes: [{ name: 'r', path: '/a', allow: [{}] }] }),
      [['spec.routes[0].allow[0]', 'must not be empty']],
    ],
    [
      'a rate limit key with two fields',
      doc({
        rateLimits: [{ name: 'a', limit: 1, period: '1s', key: { ip: {}, header: 'x-api-key' } }],
        routes: [],
      }),
      [['spec.rateLimits[0].key', 'must set only one of its fields (found more than 1)']],
    ],
    [
      'an empty rate limit key',
      doc({ rateLimits: [{ name: 'a', limit: 1, period: '1s', key: {} }], routes: [] }),
      [['spec.rateLimits[0].key', 'must not be empty']],
    ],
    [
      'ip key with a field',
      doc({ rateLimits: [{ name: 'a', limit: 1, period: '1s', key: { ip: { v6: true } } }], routes: [] }),
      [['spec.rateLimits[0].key.ip.v6', 'unknown field "v6"']],
    ],
    [
      'limit, burst and scope out of range',
      doc({ rateLimits: [{ name: 'a', limit: 0, period: '1s', burst: -1, scope: 'global' }], routes: [] }),
      [
        ['spec.rateLimits[0].limit', 'must be >= 1'],
        ['spec.rateLimits[0].burst', 'must be >= 0'],
        ['spec.rateLimits[0].scope', 'must be one of Local, Global'],
      ],
    ],
    [
      'rateLimit that is a list with an empty name',
      doc({ routes: [{ ...route, rateLimit: [''] }] }),
      [['spec.routes[0].rateLimit', 'must be a name or a list of names']],
    ],
    [
      'rateLimit that is a number',
      doc({ routes: [{ ...route, rateLimit: 3 }] }),
      [['spec.routes[0].rateLimit', 'must be a name or a list of names']],
    ],
    [
      'an empty token source',
      doc({ jwt: [{ ...corp, from: [{}] }], routes: [] }),
      [['spec.jwt[0].from[0]', 'must not be empty']],
    ],
    [
      'a claims entry that is not a list',
      doc({ jwt: [corp], routes: [{ name: 'r', path: '/a', allow: [{ claims: { roles: 'admin' } }] }] }),
      [['spec.routes[0].allow[0].claims.roles', 'must be of type array']],
    ],
    [
      'a name longer than 63 characters',
      doc({ routes: [{ ...route, name: 'a'.repeat(64) }] }),
      [['spec.routes[0].name', 'must NOT have more than 63 characters']],
    ],
    [
      'a selector operator that does not exist',
      doc({ selector: { matchExpressions: [{ key: 'a', operator: 'Is' }] }, routes: [] }),
      [['spec.selector.matchExpressions[0].operator', 'must be one of In, NotIn, Exists, DoesNotExist']],
    ],
    [
      'every problem at once',
      doc({
        mode: 'Shadow',
        routes: [{ path: '/a', timeout: 'soon' }],
        protection: { authFailures: { threshold: 0 } },
      }),
      [
        ['spec.mode', 'must be one of Enforce, Audit'],
        ['spec.protection.authFailures.window', 'is required'],
        ['spec.protection.authFailures.block', 'is required'],
        ['spec.protection.authFailures.threshold', 'must be >= 1'],
        ['spec.routes[0].name', 'is required'],
        ['spec.routes[0].timeout', 'must be a Go-style duration such as 30s, 5m or 1h'],
      ],
    ],
  ];
  for (const [name, value, expected] of cases) {
    it(name, () => {
      assert.deepEqual(rows(value).sort(), [...expected].sort());
    });
  }

  it('keys are JSON Pointer decoded, so a claim name with "/" is one path segment', () => {
    const value = doc({
      jwt: [corp],
      routes: [{ name: 'r', path: '/a', allow: [{ claims: { 'https://x.io/roles': 'admin' } }] }],
    });
    assert.deepEqual(
      validateSchema(value).map((d) => d.path),
      [['spec', 'routes', 0, 'allow', 0, 'claims', 'https://x.io/roles']],
    );
  });

  it('reports each bad item at its own index', () => {
    const value = doc({ routes: [{ ...route, methods: ['get', 'get'] }] });
    assert.deepEqual(rows(value), [
      [
        'spec.routes[0].methods[0]',
        'must be one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, TRACE, CONNECT',
      ],
      [
        'spec.routes[0].methods[1]',
        'must be one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, TRACE, CONNECT',
      ],
    ]);
  });
});

describe('createAjv', () => {
  it('knows the Kubernetes annotations and is strict about anything else', () => {
    const ajv = createAjv();
    const validate = ajv.compile({
      type: 'object',
      'x-kubernetes-preserve-unknown-fields': true,
      'x-kubernetes-validations': [{ rule: 'true' }],
      properties: { a: { type: 'string', format: 'date-time' } },
    });
    assert.equal(validate({ a: '2026-06-01T00:00:00Z' }), true);
    assert.equal(validate({ a: 'yesterday' }), false);
    assert.throws(() => createAjv().compile({ type: 'object', 'x-custom': 1 }), /unknown keyword/);
  });
});
