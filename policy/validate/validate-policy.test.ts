import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { type Diagnostic, formatDiagnostic } from '../diagnostics.ts';
import { loadPolicyText, validatePolicy } from './validate-policy.ts';

/** A frozen copy of examples/orders-policy.yaml (positions below depend on its layout). */
const ORDERS = readFileSync(new URL('../testdata/compile/orders.in.yaml', import.meta.url), 'utf8');
const EXAMPLE = readFileSync(new URL('../../examples/orders-policy.yaml', import.meta.url), 'utf8');

function doc(spec: unknown): Record<string, unknown> {
  return { apiVersion: 'tollgate.dev/v1alpha1', kind: 'ApiPolicy', metadata: { name: 'p' }, spec };
}

const lines = (ds: readonly Diagnostic[]): string[] => ds.map(formatDiagnostic);

describe('validatePolicy', () => {
  it('returns the policy when it is valid', () => {
    const value = doc({ routes: [{ name: 'r', path: '/', public: true }] });
    assert.deepEqual(validatePolicy(value), { policy: value, diagnostics: [] });
  });

  it('returns the policy with its warnings', () => {
    const value = doc({ routes: [{ name: 'r', path: '/' }] });
    const r = validatePolicy(value);
    assert.equal(r.policy, value);
    assert.deepEqual(lines(r.diagnostics), [
      'spec.routes[0]: warning: has neither allow nor public and there is no defaults.allow: every request is denied',
    ]);
  });

  it('returns no policy on a semantic error', () => {
    const r = validatePolicy(doc({ routes: [{ name: 'r', path: '/', allow: [{ jwt: 'corp' }] }] }));
    assert.equal(r.policy, null);
    assert.deepEqual(lines(r.diagnostics), [
      'spec.routes[0].allow[0]: needs a token, but spec.jwt declares no provider',
      'spec.routes[0].allow[0].jwt: unknown jwt provider "corp" (declare it in spec.jwt, or use Any)',
    ]);
  });

  it('reports schema and semantic problems in one pass, schema first', () => {
    const r = validatePolicy(
      doc({
        mode: 'Shadow',
        routes: [
          { name: 'a', path: '/x', public: true },
          { name: 'a', path: '/y', public: true },
        ],
      }),
    );
    assert.equal(r.policy, null);
    assert.deepEqual(lines(r.diagnostics), [
      'spec.mode: must be one of Enforce, Audit',
      'spec.routes[1].name: duplicate route name "a" (also routes[0])',
    ]);
  });

  it('does not repeat a problem inside a field the schema rejected', () => {
    const r = validatePolicy(
      doc({
        routes: [{ name: 'r', path: '/a', public: true, request: { maxBodyBytes: '1MB' } }],
        defaults: { rateLimit: ['nope'], extra: 1 },
      }),
    );
    assert.deepEqual(lines(r.diagnostics), [
      'spec.defaults.extra: unknown field "extra"',
      'spec.routes[0].request.maxBodyBytes: must be a size such as 64Ki, 1Mi or a byte count',
      'spec.defaults.rateLimit[0]: unknown rate limit "nope"',
    ]);
  });

  it('a missing required field does not hide the problems next to it', () => {
    const corp = { name: 'corp', issuer: 'i', jwksUri: 'https://i/' };
    assert.deepEqual(lines(validatePolicy(doc({ jwt: [corp, corp] })).diagnostics), [
      'spec.routes: is required',
      'spec.jwt[1].name: duplicate provider name "corp"',
    ]);
    assert.deepEqual(
      lines(
        validatePolicy(doc({ jwt: [corp], routes: [{ path: '/a', allow: [{ jwt: 'nope' }] }] })).diagnostics,
      ),
      [
        'spec.routes[0].name: is required',
        'spec.routes[0].allow[0].jwt: unknown jwt provider "nope" (declare it in spec.jwt, or use Any)',
      ],
    );
  });

  const notObjects: [name: string, value: unknown][] = [
    ['null', null],
    ['a string', 'ApiPolicy'],
    ['a spec that is a list', doc([])],
    ['a spec that is null', doc(null)],
    ['no spec', { apiVersion: 'tollgate.dev/v1alpha1', kind: 'ApiPolicy', metadata: { name: 'p' } }],
  ];
  for (const [name, value] of notObjects) {
    it(`only schema diagnostics when there is no spec object: ${name}`, () => {
      const r = validatePolicy(value);
      assert.equal(r.policy, null);
      assert.ok(r.diagnostics.length > 0);
      for (const d of r.diagnostics) assert.equal(d.severity, 'error');
    });
  }

  it('survives a schema-invalid spec whose parts have the wrong types', () => {
    const r = validatePolicy(
      doc({
        jwt: 'corp',
        rateLimits: { a: 1 },
        routes: [{ name: 5, path: ['/'], allow: 'all' }],
        defaults: 3,
      }),
    );
    assert.equal(r.policy, null);
    assert.deepEqual(lines(r.diagnostics), [
      'spec.jwt: must be of type array',
      'spec.rateLimits: must be of type array',
      'spec.defaults: must be of type object',
      'spec.routes[0].name: must be of type string',
      'spec.routes[0].path: must be of type string',
      'spec.routes[0].allow: must be of type array',
    ]);
  });
});

describe('loadPolicyText', () => {
  it('loads the orders example without a problem', () => {
    assert.deepEqual(loadPolicyText(EXAMPLE, 'examples/orders-policy.yaml').diagnostics, []);
    const r = loadPolicyText(ORDERS, 'orders-policy.yaml');
    assert.deepEqual(r.diagnostics, []);
    assert.equal(r.policies.length, 1);
    const [loaded] = r.policies;
    assert.ok(loaded);
    assert.equal(loaded.file, 'orders-policy.yaml');
    assert.equal(loaded.document, 0);
    assert.equal(loaded.policy.metadata.name, 'orders');
    assert.equal(loaded.policy.spec.routes.length, 9);
  });

  it('positions an unknown field deep in the document at file:line:col', () => {
    const text = ORDERS.replace('        omitFields: [internalCost', '        omitFeilds: [internalCost');
    const r = loadPolicyText(text, 'orders.yaml');
    assert.deepEqual(r.policies, []);
    const line = text.split('\n').findIndex((l) => l.includes('omitFeilds')) + 1;
    assert.deepEqual(lines(r.diagnostics), [
      `orders.yaml:${line}:9: spec.routes[0].response.omitFeilds: unknown field "omitFeilds"`,
    ]);
  });

  it('positions a semantic error at its field', () => {
    const text = ORDERS.replace(
      'when: params.userId == claims.sub\n        - peers',
      'when: params.user == claims.sub\n        - peers',
    );
    const r = loadPolicyText(text, 'orders.yaml');
    const line = text.split('\n').findIndex((l) => l.includes('params.user ==')) + 1;
    assert.deepEqual(lines(r.diagnostics), [
      `orders.yaml:${line}:11: spec.routes[0].allow[1].when: params.user is not a parameter of /v1/users/{userId}/orders/{orderId}`,
    ]);
  });

  it('positions a missing field at its parent', () => {
    const text =
      'apiVersion: tollgate.dev/v1alpha1\nkind: ApiPolicy\nmetadata:\n  name: p\nspec:\n  routes:\n    - path: /a\n      public: true\n';
    assert.deepEqual(lines(loadPolicyText(text, 'p.yaml').diagnostics), [
      'p.yaml:7:7: spec.routes[0].name: is required',
    ]);
  });

  it('reports YAML syntax errors with positions, and leaves the document out', () => {
    const r = loadPolicyText('apiVersion: tollgate.dev/v1alpha1\nkind: [ApiPolicy\n', 'bad.yaml');
    assert.deepEqual(r.policies, []);
    assert.ok(r.diagnostics.length > 0);
    for (const d of r.diagnostics) {
      assert.equal(d.file, 'bad.yaml');
      assert.match(d.message, /^YAML: /);
    }
  });

  it('reports duplicate keys', () => {
    const text = 'apiVersion: tollgate.dev/v1alpha1\nkind: ApiPolicy\nkind: ApiPolicy\n';
    assert.deepEqual(lines(loadPolicyText(text, 'dup.yaml').diagnostics), [
      'dup.yaml:3:1: (root): YAML: Map keys must be unique',
    ]);
  });

  it('validates every document of a multi-document file, positioned in the file', () => {
    const second =
      'apiVersion: tollgate.dev/v1alpha1\nkind: ApiPolicy\nmetadata:\n  name: two\nspec:\n  port: 0\n  routes: []\n';
    const third = 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: three\n';
    const text = `${ORDERS}---\n${second}---\n# empty\n---\n${third}`;
    const r = loadPolicyText(text, 'all.yaml');
    assert.deepEqual(
      r.policies.map((p) => [p.document, p.policy.metadata.name]),
      [[0, 'orders']],
    );
    const base = ORDERS.split('\n').length; // line of the first "---"
    assert.deepEqual(lines(r.diagnostics), [
      `all.yaml:${base + 6}:3: spec.port: must be >= 1`,
      `all.yaml:${base + 11}:1: spec: is required`,
      `all.yaml:${base + 11}:1: apiVersion: must be "tollgate.dev/v1alpha1"`,
      `all.yaml:${base + 12}:1: kind: must be "ApiPolicy"`,
    ]);
  });

  it('works without a file name', () => {
    const r = loadPolicyText(
      'apiVersion: tollgate.dev/v1alpha1\nkind: ApiPolicy\nmetadata: {name: p}\nspec: {routes: []}\n',
    );
    assert.equal(r.policies.length, 1);
    assert.equal('file' in (r.policies[0] ?? {}), false);
    const bad = loadPolicyText('kind: ApiPolicy\n');
    for (const d of bad.diagnostics) {
      assert.equal('file' in d, false);
      assert.equal(d.line, 1);
    }
  });
});
