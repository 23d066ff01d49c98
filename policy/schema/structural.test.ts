/**
 * Tests for checkStructural: a schema that uses every allowed construct passes,
 * and each rule is proven able to fail by one broken copy that yields exactly
 * the expected violation.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkStructural } from './structural.ts';

type Node = Record<string, unknown>;

const GOOD: Node = {
  type: 'object',
  description: 'Root.',
  properties: {
    apiVersion: { type: 'string' },
    kind: { type: 'string' },
    metadata: { type: 'object', properties: { name: { type: 'string', maxLength: 63 } } },
    spec: {
      type: 'object',
      required: ['name'],
      // Value validations under a junctor, on fields the structural part specifies.
      oneOf: [{ required: ['port'] }, { required: ['portName'] }],
      anyOf: [{ properties: { name: { minLength: 2 } } }, { properties: { portName: { maxLength: 5 } } }],
      'x-kubernetes-validations': [
        {
          rule: 'self.name != ""',
          message: 'name is required',
          reason: 'FieldValueRequired',
          fieldPath: '.name',
        },
        {
          rule: 'has(self.port)\n|| has(self.portName)',
          messageExpression: '"no port"',
          optionalOldSelf: false,
        },
      ],
      properties: {
        name: { type: 'string', minLength: 1, pattern: '^[a-z]([-a-z0-9]*)?$', description: 'A name.' },
        port: { type: 'integer', format: 'int32', minimum: 1, maximum: 65535, default: 80 },
        portName: { type: 'string' },
        ratio: { type: 'number', format: 'double' },
        mode: { type: 'string', enum: ['Fast', 'Slow'], default: 'Fast' },
        size: {
          'x-kubernetes-int-or-string': true,
          anyOf: [{ type: 'integer' }, { type: 'string' }],
          pattern: '^[0-9]+(Ki|Mi)?$',
        },
        limit: {
          'x-kubernetes-int-or-string': true,
          allOf: [{ anyOf: [{ type: 'integer' }, { type: 'string' }] }, { maxLength: 10 }],
        },
        free: { 'x-kubernetes-preserve-unknown-fields': true, description: 'Anything.' },
        doc: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
        labels: {
          type: 'object',
          additionalProperties: { type: 'string' },
          'x-kubernetes-map-type': 'atomic',
        },
        ports: {
          type: 'array',
          'x-kubernetes-list-type': 'map',
          'x-kubernetes-list-map-keys': ['name'],
          items: {
            type: 'object',
            required: ['name'],
            properties: { name: { type: 'string' }, number: { type: 'integer' } },
          },
        },
        tags: { type: 'array', 'x-kubernetes-list-type': 'set', items: { type: 'string' } },
        since: { type: 'string', format: 'date-time', nullable: true, default: null },
        retry: {
          type: 'object',
          default: { attempts: 3, backoff: { initial: '1s' } },
          properties: {
            attempts: { type: 'integer' },
            backoff: { type: 'object', properties: { initial: { type: 'string', format: 'duration' } } },
          },
        },
        empty: { type: 'object', properties: {}, additionalProperties: true },
      },
    },
  },
};

/** The node at a dotted path below root (property names here contain no dots). */
function node(root: Node, path: string): Node {
  let cur: unknown = root;
  for (const seg of path.split('.')) {
    assert.ok(typeof cur === 'object' && cur !== null, `no node at ${path}`);
    cur = (cur as Node)[seg];
  }
  assert.ok(typeof cur === 'object' && cur !== null && !Array.isArray(cur), `no node at ${path}`);
  return cur as Node;
}

const R = 'openAPIV3Schema';
const S = `${R}.properties.spec`;
const P = `${S}.properties`;
const spec = (s: Node) => node(s, 'properties.spec');
const prop = (s: Node, name: string) => node(s, `properties.spec.properties.${name}`);
const rule = (s: Node, extra: Node) => {
  spec(s)['x-kubernetes-validations'] = [{ rule: 'true', ...extra }];
};

/** [rule, how to break GOOD, the exact violations]. */
const CASES: [string, (s: Node) => void, string[]][] = [
  // type must be set at the root, on properties, items and additionalProperties
  ['type at the root', (s) => delete s.type, [`${R}.type: must not be empty at the root`]],
  [
    'type on a property',
    (s) => delete prop(s, 'portName').type,
    [`${P}.portName.type: must not be empty for specified object fields`],
  ],
  [
    'type on items',
    (s) => delete node(prop(s, 'tags'), 'items').type,
    [`${P}.tags.items.type: must not be empty for specified array items`],
  ],
  [
    'type on additionalProperties',
    (s) => delete node(prop(s, 'labels'), 'additionalProperties').type,
    [`${P}.labels.additionalProperties.type: must not be empty for specified object fields`],
  ],
  [
    'type must be known',
    (s) => (prop(s, 'portName').type = 'null'),
    [`${P}.portName.type: must be one of array,boolean,integer,number,object,string`],
  ],
  // junctors carry value validations only
  [
    'type under anyOf',
    (s) => (spec(s).anyOf = [{ type: 'object' }]),
    [`${S}.anyOf[0].type: must be undefined to be structural`],
  ],
  [
    'description under allOf',
    (s) => (spec(s).allOf = [{ description: 'x' }]),
    [`${S}.allOf[0].description: must be undefined to be structural`],
  ],
  [
    'default under oneOf',
    (s) => (spec(s).oneOf = [{ default: {} }]),
    [`${S}.oneOf[0].default: must be undefined to be structural`],
  ],
  [
    'nullable under not',
    (s) => (spec(s).not = { nullable: true }),
    [`${S}.not.nullable: must be undefined to be structural`],
  ],
  [
    'additionalProperties under anyOf',
    (s) => (spec(s).anyOf = [{ additionalProperties: { type: 'string' } }]),
    [`${S}.anyOf[0].additionalProperties: must be undefined to be structural`],
  ],
  [
    'x-kubernetes-* under allOf',
    (s) => (spec(s).allOf = [{ 'x-kubernetes-validations': [{ rule: 'true' }] }]),
    [`${S}.allOf[0].x-kubernetes-validations: must be undefined to be structural`],
  ],
  [
    'int-or-string anyOf only in its exact form',
    (s) => (prop(s, 'size').anyOf = [{ type: 'string' }, { type: 'integer' }]),
    [
      `${P}.size.anyOf[0].type: must be undefined to be structural`,
      `${P}.size.anyOf[1].type: must be undefined to be structural`,
    ],
  ],
  [
    'junctor fields are specified structurally',
    (s) => (spec(s).anyOf = [{ properties: { nope: { minLength: 1 } } }]),
    [`${P}.nope: required because it is defined in ${S}.anyOf[0].properties.nope`],
  ],
  [
    'metadata not in a nested context',
    (s) => (spec(s).anyOf = [{ properties: { metadata: {} } }]),
    [
      `${S}.anyOf[0].properties.metadata: must not be specified in a nested context`,
      `${P}.metadata: required because it is defined in ${S}.anyOf[0].properties.metadata`,
    ],
  ],
  // properties / additionalProperties / items
  [
    'properties and additionalProperties exclusive',
    (s) => (prop(s, 'retry').additionalProperties = { type: 'string' }),
    [`${P}.retry.additionalProperties: additionalProperties and properties are mutual exclusive`],
  ],
  [
    'additionalProperties not false',
    (s) => (prop(s, 'labels').additionalProperties = false),
    [`${P}.labels.additionalProperties: cannot be set to false`],
  ],
  [
    'items a single schema',
    (s) => (prop(s, 'tags').items = [{ type: 'string' }]),
    [`${P}.tags.items: must be a schema object and not an array`],
  ],
  ['items on arrays', (s) => delete prop(s, 'tags').items, [`${P}.tags.items: must be specified`]],
  // unsupported and unknown keywords
  ['$ref', (s) => (prop(s, 'portName').$ref = '#/x'), [`${P}.portName.$ref: $ref is not supported`]],
  ['$schema', (s) => (spec(s).$schema = 'x'), [`${S}.$schema: $schema is not supported`]],
  [
    'definitions',
    (s) => (spec(s).definitions = { a: {} }),
    [`${S}.definitions: definitions is not supported`],
  ],
  [
    'dependencies',
    (s) => (spec(s).dependencies = { a: ['b'] }),
    [`${S}.dependencies: dependencies is not supported`],
  ],
  [
    'patternProperties',
    (s) => (prop(s, 'labels').patternProperties = {}),
    [`${P}.labels.patternProperties: patternProperties is not supported`],
  ],
  [
    'additionalItems',
    (s) => (prop(s, 'tags').additionalItems = false),
    [`${P}.tags.additionalItems: additionalItems is not supported`],
  ],
  ['$id', (s) => (spec(s).$id = 'x'), [`${S}.$id: unknown field (not in v1 JSONSchemaProps)`]],
  [
    'const',
    (s) => (prop(s, 'mode').const = 'Fast'),
    [`${P}.mode.const: unknown field (not in v1 JSONSchemaProps)`],
  ],
  [
    'examples',
    (s) => (prop(s, 'mode').examples = ['Fast']),
    [`${P}.mode.examples: unknown field (not in v1 JSONSchemaProps)`],
  ],
  [
    'uniqueItems',
    (s) => (prop(s, 'tags').uniqueItems = true),
    [`${P}.tags.uniqueItems: cannot be set to true (quadratic complexity)`],
  ],
  // vendor extensions
  [
    'int-or-string excludes type',
    (s) => (prop(s, 'size').type = 'string'),
    [`${P}.size.type: must be empty if x-kubernetes-int-or-string is true`],
  ],
  [
    'int-or-string excludes preserve-unknown-fields',
    (s) => (prop(s, 'size')['x-kubernetes-preserve-unknown-fields'] = true),
    [`${P}.size.x-kubernetes-preserve-unknown-fields: must be false if x-kubernetes-int-or-string`],
  ],
  [
    'preserve-unknown-fields true',
    (s) => (prop(s, 'doc')['x-kubernetes-preserve-unknown-fields'] = false),
    [`${P}.doc.x-kubernetes-preserve-unknown-fields: must be true or undefined`],
  ],
  [
    'list-type value',
    (s) => (prop(s, 'tags')['x-kubernetes-list-type'] = 'bag'),
    [`${P}.tags.x-kubernetes-list-type: must be atomic, set or map`],
  ],
  [
    'list-type on arrays',
    (s) => (prop(s, 'portName')['x-kubernetes-list-type'] = 'atomic'),
    [`${P}.portName.type: must be array if x-kubernetes-list-type is set`],
  ],
  [
    'list-type map needs keys',
    (s) => delete prop(s, 'ports')['x-kubernetes-list-map-keys'],
    [`${P}.ports.x-kubernetes-list-map-keys: must not be empty if x-kubernetes-list-type is map`],
  ],
  [
    'list-map-keys need list-type map',
    (s) => (prop(s, 'ports')['x-kubernetes-list-type'] = 'atomic'),
    [`${P}.ports.x-kubernetes-list-map-keys: must be empty unless x-kubernetes-list-type is map`],
  ],
  [
    'map-type value',
    (s) => (prop(s, 'labels')['x-kubernetes-map-type'] = 'flat'),
    [`${P}.labels.x-kubernetes-map-type: must be atomic or granular`],
  ],
  [
    'map-type on objects',
    (s) => (prop(s, 'tags')['x-kubernetes-map-type'] = 'atomic'),
    [`${P}.tags.type: must be object if x-kubernetes-map-type is set`],
  ],
  // x-kubernetes-validations
  [
    'validations a list',
    (s) => (spec(s)['x-kubernetes-validations'] = { rule: 'true' }),
    [`${S}.x-kubernetes-validations: must be a list of rules`],
  ],
  [
    'rule non-empty',
    (s) => rule(s, { rule: ' ' }),
    [`${S}.x-kubernetes-validations[0].rule: rule is not specified`],
  ],
  [
    'message non-empty',
    (s) => rule(s, { message: ' ' }),
    [`${S}.x-kubernetes-validations[0].message: must be non-empty if specified`],
  ],
  [
    'message one line',
    (s) => rule(s, { message: 'a\nb' }),
    [`${S}.x-kubernetes-validations[0].message: must not have line breaks`],
  ],
  [
    'multi-line rule has a message',
    (s) => rule(s, { rule: 'true ||\nfalse' }),
    [`${S}.x-kubernetes-validations[0].message: must be specified if rule has line breaks`],
  ],
  [
    'reason known',
    (s) => rule(s, { reason: 'Nope' }),
    [
      `${S}.x-kubernetes-validations[0].reason: must be one of FieldValueInvalid,FieldValueForbidden,FieldValueRequired,FieldValueDuplicate`,
    ],
  ],
  [
    'fieldPath resolves',
    (s) => rule(s, { fieldPath: '.nope' }),
    [`${S}.x-kubernetes-validations[0].fieldPath: must be a valid field path`],
  ],
  [
    'optionalOldSelf boolean',
    (s) => rule(s, { optionalOldSelf: 'yes' }),
    [`${S}.x-kubernetes-validations[0].optionalOldSelf: must be a boolean`],
  ],
  [
    'rule fields known',
    (s) => rule(s, { severity: 'high' }),
    [`${S}.x-kubernetes-validations[0].severity: unknown field`],
  ],
  // root, apiVersion/kind and metadata
  ['root is an object', (s) => (s.type = 'string'), [`${R}.type: must be object at the root`]],
  ['root not nullable', (s) => (s.nullable = true), [`${R}.nullable: cannot be true at the root`]],
  [
    'no additionalProperties at the root',
    (s) => {
      s.additionalProperties = true;
    },
    [`${R}.additionalProperties: must not be used at the root`],
  ],
  [
    'kind is a string',
    (s) => (node(s, 'properties.kind').type = 'object'),
    [`${R}.properties.kind.type: must be string`],
  ],
  [
    'metadata is an object',
    (s) => (node(s, 'properties.metadata').type = 'string'),
    [`${R}.properties.metadata.type: must be object`],
  ],
  [
    'metadata restricts name/generateName only',
    (s) => (node(s, 'properties.metadata.properties').labels = { type: 'object' }),
    [`${R}.properties.metadata: must not specify anything but name and generateName`],
  ],
  [
    'metadata has no description',
    (s) => (node(s, 'properties.metadata').description = 'x'),
    [`${R}.properties.metadata: must not specify anything but name and generateName`],
  ],
  [
    'no default in metadata',
    (s) => (node(s, 'properties.metadata.properties.name').default = 'x'),
    [`${R}.properties.metadata.properties.name.default: must not be set in top-level metadata`],
  ],
  // enum, default, format, pattern
  ['enum matches type', (s) => (prop(s, 'mode').enum = ['Fast', 1]), [`${P}.mode.enum[1]: must be a string`]],
  [
    'default matches type',
    (s) => (prop(s, 'port').default = '80'),
    [`${P}.port.default: must be of type integer`],
  ],
  [
    'default in enum',
    (s) => (prop(s, 'mode').default = 'Medium'),
    [`${P}.mode.default: must be one of the enum values`],
  ],
  [
    'default null needs nullable',
    (s) => delete prop(s, 'since').nullable,
    [`${P}.since.default: must be of type string`],
  ],
  [
    'default survives pruning',
    (s) => (prop(s, 'retry').default = { attempts: 3, jitter: true }),
    [`${P}.retry.default: must not have unknown fields (jitter would be pruned)`],
  ],
  [
    'format known',
    (s) => (prop(s, 'portName').format = 'binary'),
    [`${P}.portName.format: unsupported format "binary"`],
  ],
  [
    'numeric format on numbers',
    (s) => (prop(s, 'portName').format = 'int32'),
    [`${P}.portName.format: unsupported format "int32"`],
  ],
  [
    'pattern compiles in RE2',
    (s) => (prop(s, 'name').pattern = '^(?!x)'),
    [`${P}.name.pattern: must be a valid (RE2) regular expression`],
  ],
  ['schemas are objects', (s) => (node(s, 'properties').spec = 'object'), [`${S}: must be a schema object`]],
];

describe('checkStructural', () => {
  it('accepts a schema using every allowed construct', () => {
    assert.deepEqual(checkStructural(GOOD), []);
  });

  it('names the root as asked', () => {
    assert.deepEqual(checkStructural({}, 'spec'), ['spec.type: must not be empty at the root']);
  });

  for (const [name, mutate, expected] of CASES) {
    it(`rejects: ${name}`, () => {
      const schema = structuredClone(GOOD);
      mutate(schema);
      assert.deepEqual(checkStructural(schema), expected);
    });
  }
});
