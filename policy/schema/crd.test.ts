/**
 * Tests for the generated ApiPolicy CRD: the committed YAML is current, the CRD
 * is a valid apiextensions.k8s.io/v1 object (kubernetes-models validator) with a
 * structural schema (checkStructural), the expected names, subresource and
 * printer columns, documented spec fields, and CEL rules that compile against
 * the schema and behave as intended when evaluated with `self` bound to samples.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { Environment } from '@marcbachmann/cel-js';
import {
  CustomResourceDefinition,
  type ICustomResourceDefinition,
} from 'kubernetes-models/apiextensions.k8s.io/v1/CustomResourceDefinition';
import { parse } from 'yaml';
import { GROUP, KIND, PLURAL, SHORT_NAMES, SINGULAR, VERSION } from './api-policy.ts';
import { buildCrd, renderCrdYaml } from './crd.ts';
import { checkStructural } from './structural.ts';

type Node = Record<string, unknown>;
type CelSchema = { [field: string]: string | CelSchema };

const CRD_FILE = new URL('../../crds/apipolicies.tollgate.dev.yaml', import.meta.url);
const crd = buildCrd() as unknown as ICustomResourceDefinition;
const isNode = (v: unknown): v is Node => typeof v === 'object' && v !== null && !Array.isArray(v);
const map = (v: unknown): Node => (isNode(v) ? v : {});

function rootSchema(version = crd.spec.versions[0]): Node {
  const schema: unknown = version?.schema?.openAPIV3Schema;
  assert.ok(isNode(schema), 'version without an openAPIV3Schema');
  return schema;
}

/** Every schema node below `n` with its path: properties, items and additionalProperties. */
function* nodes(n: Node, path: string): Generator<[Node, string, boolean]> {
  for (const [k, v] of Object.entries(map(n.properties))) {
    if (!isNode(v)) continue;
    yield [v, `${path}.${k}`, true];
    yield* nodes(v, `${path}.${k}`);
  }
  for (const [child, suffix] of [
    [n.items, '[]'],
    [n.additionalProperties, '{}'],
  ] as const) {
    if (!isNode(child)) continue;
    yield [child, `${path}${suffix}`, false];
    yield* nodes(child, `${path}${suffix}`);
  }
}

describe('ApiPolicy CRD', () => {
  it('matches the committed crds/apipolicies.tollgate.dev.yaml byte for byte', () => {
    const committed = readFileSync(CRD_FILE, 'utf8');
    const rendered = renderCrdYaml();
    const a = rendered.split('\n');
    const line = a.findIndex((l, i) => l !== committed.split('\n')[i]);
    assert.ok(
      rendered === committed,
      `crds/apipolicies.tollgate.dev.yaml is stale (first difference at line ${line + 1}): run \`npm run gen:crd\``,
    );
  });

  it('validates against the Kubernetes CustomResourceDefinition v1 schema', () => {
    const committed: unknown = parse(readFileSync(CRD_FILE, 'utf8'));
    assert.doesNotThrow(() => new CustomResourceDefinition(crd).validate());
    assert.doesNotThrow(() =>
      new CustomResourceDefinition(committed as ICustomResourceDefinition).validate(),
    );
  });

  it('has a validator that rejects broken CRDs (so the check above means something)', () => {
    const noPlural = structuredClone(crd) as unknown as { spec: { names: Node } };
    delete noPlural.spec.names.plural;
    const badType = structuredClone(crd);
    map(map(rootSchema(badType.spec.versions[0]).properties).spec).type = 5;
    const validate = (c: unknown) => () =>
      new CustomResourceDefinition(c as ICustomResourceDefinition).validate();
    assert.throws(validate(noPlural), /plural/);
    assert.throws(validate(badType), /openAPIV3Schema\/properties\/spec\/type/);
  });

  it('has a structural schema in every version (checkStructural)', () => {
    assert.ok(crd.spec.versions.length > 0);
    for (const version of crd.spec.versions) assert.deepEqual(checkStructural(rootSchema(version)), []);
  });

  it('has the expected names, scope, versions, status subresource and printer columns', () => {
    const { spec } = crd;
    assert.equal(crd.metadata?.name, `${PLURAL}.${GROUP}`);
    assert.equal(spec.group, GROUP);
    assert.equal(spec.scope, 'Namespaced');
    assert.deepEqual(
      {
        kind: spec.names.kind,
        listKind: spec.names.listKind,
        plural: spec.names.plural,
        singular: spec.names.singular,
      },
      { kind: KIND, listKind: `${KIND}List`, plural: PLURAL, singular: SINGULAR },
    );
    assert.deepEqual(spec.names.shortNames, SHORT_NAMES);
    assert.ok(SHORT_NAMES.includes('apol'));
    assert.deepEqual(
      spec.versions.map((v) => v.name),
      [VERSION],
    );
    assert.equal(spec.versions.filter((v) => v.storage).length, 1, 'exactly one storage version');
    for (const version of spec.versions) {
      assert.equal(version.served, true);
      assert.deepEqual(version.subresources?.status, {});
      const columns = new Map((version.additionalPrinterColumns ?? []).map((c) => [c.name, c]));
      for (const name of ['Accepted', 'Programmed']) {
        assert.deepEqual(
          { type: columns.get(name)?.type, jsonPath: columns.get(name)?.jsonPath },
          { type: 'string', jsonPath: `.status.conditions[?(@.type=="${name}")].status` },
        );
      }
      assert.deepEqual(
        { type: columns.get('Age')?.type, jsonPath: columns.get('Age')?.jsonPath },
        { type: 'date', jsonPath: '.metadata.creationTimestamp' },
      );
      const props = map(rootSchema(version).properties);
      assert.ok(isNode(props.spec) && isNode(props.status), 'spec and status are declared');
    }
  });

  it('documents every property of the spec schema', () => {
    const spec = map(map(rootSchema().properties).spec);
    assert.equal(typeof spec.description, 'string');
    const undocumented = [...nodes(spec, 'spec')]
      .filter(
        ([n, , isProperty]) =>
          isProperty && (typeof n.description !== 'string' || n.description.trim() === ''),
      )
      .map(([, path]) => path);
    assert.deepEqual(undocumented, [], 'add a description in policy/schema/api-policy.ts');
  });
});

/** The CEL type of a schema node, as the API server declares `self` (structural schema -> CEL type). */
function celType(n: Node): string | CelSchema {
  if (n['x-kubernetes-int-or-string'] === true || n['x-kubernetes-preserve-unknown-fields'] === true)
    return 'dyn';
  const element = (v: unknown): string => {
    const t = isNode(v) ? celType(v) : 'dyn';
    return typeof t === 'string' ? t : 'dyn';
  };
  switch (n.type) {
    case 'string':
      return 'string';
    case 'boolean':
      return 'bool';
    case 'integer':
      return 'int';
    case 'number':
      return 'double';
    case 'array':
      return `list<${element(n.items)}>`;
    case 'object': {
      const props = Object.entries(map(n.properties));
      if (props.length === 0) return `map<string, ${element(n.additionalProperties)}>`;
      return Object.fromEntries(props.map(([k, v]) => [k, isNode(v) ? celType(v) : 'dyn']));
    }
    default:
      return 'dyn';
  }
}

/** Every x-kubernetes-validations rule in the schema, with the node it applies to. */
function celRules(): { path: string; node: Node; rule: string }[] {
  const root = rootSchema();
  const all: [Node, string][] = [
    [root, 'openAPIV3Schema'],
    ...[...nodes(root, 'openAPIV3Schema')].map(([n, p]): [Node, string] => [n, p]),
  ];
  return all.flatMap(([node, path]) =>
    (Array.isArray(node['x-kubernetes-validations']) ? node['x-kubernetes-validations'] : []).map(
      (r: unknown) => ({
        path,
        node,
        rule: String(map(r).rule),
      }),
    ),
  );
}

/** What each rule must say about sample values of `self`: [sample, expected result]. */
const BEHAVIOUR: Record<string, [Node, boolean][]> = {
  'has(self.jwksUri) != has(self.jwks)': [
    [{ name: 'idp', issuer: 'https://idp', jwksUri: 'https://idp/jwks' }, true],
    [{ name: 'idp', issuer: 'https://idp', jwks: '{"keys":[]}' }, true],
    [{ name: 'idp', issuer: 'https://idp', jwksUri: 'https://idp/jwks', jwks: '{"keys":[]}' }, false],
    [{ name: 'idp', issuer: 'https://idp' }, false],
  ],
  'has(self.header) != has(self.cookie)': [
    [{ header: 'Authorization', prefix: 'Bearer ' }, true],
    [{ cookie: 'session' }, true],
    [{ header: 'Authorization', cookie: 'session' }, false],
    [{ prefix: 'Bearer ' }, false],
  ],
  '!has(self.prefix) || has(self.header)': [
    [{ header: 'Authorization', prefix: 'Bearer ' }, true],
    [{ cookie: 'session' }, true],
    [{ cookie: 'session', prefix: 'Bearer ' }, false],
  ],
  '!(has(self.public) && self.public && has(self.allow))': [
    [{ name: 'health', path: '/healthz', public: true }, true],
    [{ name: 'list', path: '/orders', allow: [{ jwt: 'Any' }] }, true],
    [{ name: 'list', path: '/orders', public: false, allow: [{ jwt: 'Any' }] }, true],
    [{ name: 'list', path: '/orders', public: true, allow: [{ jwt: 'Any' }] }, false],
  ],
};

describe('ApiPolicy CRD CEL rules (@marcbachmann/cel-js)', () => {
  const rules = celRules();

  it('has a behaviour table for exactly the rules in the CRD', () => {
    assert.deepEqual([...new Set(rules.map((r) => r.rule))].sort(), Object.keys(BEHAVIOUR).sort());
  });

  for (const { path, node, rule } of rules) {
    const type = celType(node);
    assert.ok(typeof type !== 'string', `${path}: rules apply to objects with properties`);
    const env = new Environment().registerVariable({ name: 'self', schema: type });

    it(`${path}: \`${rule}\` parses and type-checks to bool against the schema`, () => {
      const checked = env.check(rule);
      assert.equal(checked.valid, true, `${path}: ${String(checked.error)}`);
      assert.equal(checked.type, 'bool');
      // has() is not field-checked by cel-js; the API server rejects has() on undeclared fields.
      for (const [, field] of rule.matchAll(/has\(self\.(\w+)\)/g)) {
        assert.ok(
          field !== undefined && field in type,
          `${path}: has(self.${field}) names no declared field`,
        );
      }
    });

    it(`${path}: \`${rule}\` accepts and rejects the intended samples`, () => {
      for (const [sample, expected] of BEHAVIOUR[rule] ?? []) {
        assert.equal(
          env.evaluate(rule, { self: sample }),
          expected,
          `${rule} with self = ${JSON.stringify(sample)}`,
        );
      }
    });
  }
});
