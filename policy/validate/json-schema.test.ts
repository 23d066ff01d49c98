import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkJsonSchema } from './json-schema.ts';

describe('checkJsonSchema: schemas that compile', () => {
  const cases: [name: string, schema: Record<string, unknown>][] = [
    [
      'the orders body',
      {
        type: 'object',
        required: ['sku', 'quantity'],
        additionalProperties: false,
        properties: {
          sku: { type: 'string', pattern: '^[A-Z0-9-]{3,32}$' },
          quantity: { type: 'integer', minimum: 1, maximum: 100 },
        },
      },
    ],
    [
      'a query of strings',
      { type: 'object', properties: { dryRun: { type: 'string', enum: ['true', 'false'] } } },
    ],
    ['a known format', { type: 'string', format: 'email' }],
    ['a unicode property escape', { type: 'string', pattern: '^\\p{L}+$' }],
    ['nested arrays', { type: 'array', items: { type: 'object', properties: { a: { type: 'number' } } } }],
    [
      'property names that look like keywords are user names',
      {
        type: 'object',
        properties: { if: { type: 'string' }, $ref: { type: 'string' }, $defs: { type: 'string' } },
      },
    ],
    ['keyword-looking keys inside enum values', { enum: [{ $ref: 'x' }, { if: 1 }] }],
    [
      'keyword-looking keys inside const, default and examples',
      {
        type: 'object',
        const: { $ref: 'a' },
        default: { if: true },
        examples: [{ $defs: {} }],
      },
    ],
    ['Kubernetes annotations', { type: 'object', 'x-kubernetes-preserve-unknown-fields': true }],
  ];
  for (const [name, schema] of cases) {
    it(name, () => {
      assert.deepEqual(checkJsonSchema(schema), []);
    });
  }

  it('can check the same schema (with an $id) again and again', () => {
    const schema = { $id: 'https://example.com/order', type: 'object' };
    assert.deepEqual(checkJsonSchema(schema), []);
    assert.deepEqual(checkJsonSchema(schema), []);
    assert.deepEqual(checkJsonSchema({ $id: 'https://example.com/order', type: 'string' }), []);
  });

  it('can check a valid schema after an invalid one with the same $id', () => {
    assert.equal(checkJsonSchema({ $id: 'https://example.com/x', type: 'strin' }).length, 1);
    assert.deepEqual(checkJsonSchema({ $id: 'https://example.com/x', type: 'string' }), []);
  });
});

describe('checkJsonSchema: unsupported keywords (outside the Kubernetes structural subset)', () => {
  const cases: [name: string, schema: Record<string, unknown>, problems: string[]][] = [
    ['$ref at the root', { $ref: '#/x' }, ['JSON Schema keyword "$ref" at / is not supported']],
    [
      '$ref under properties',
      { type: 'object', properties: { a: { $ref: '#' } } },
      ['JSON Schema keyword "$ref" at /properties/a is not supported'],
    ],
    [
      '$ref under patternProperties',
      { type: 'object', patternProperties: { '^x-': { $ref: '#' } } },
      ['JSON Schema keyword "$ref" at /patternProperties/^x- is not supported'],
    ],
    [
      '$defs and definitions',
      { $defs: { a: {} }, definitions: { b: {} } },
      [
        'JSON Schema keyword "$defs" at / is not supported',
        'JSON Schema keyword "definitions" at / is not supported',
      ],
    ],
    [
      'if/then/else inside anyOf',
      // biome-ignore lint/suspicious/noThenProperty: a JSON Schema keyword, never awaited
      { anyOf: [{ type: 'string' }, { if: {}, then: {}, else: {} }] },
      [
        'JSON Schema keyword "if" at /anyOf/1 is not supported',
        'JSON Schema keyword "then" at /anyOf/1 is not supported',
        'JSON Schema keyword "else" at /anyOf/1 is not supported',
      ],
    ],
    [
      '$dynamicRef and dependentSchemas in items',
      { type: 'array', items: { $dynamicRef: '#a', dependentSchemas: { a: {} } } },
      [
        'JSON Schema keyword "$dynamicRef" at /items is not supported',
        'JSON Schema keyword "dependentSchemas" at /items is not supported',
      ],
    ],
  ];
  for (const [name, schema, problems] of cases) {
    it(name, () => {
      assert.deepEqual(checkJsonSchema(schema), problems);
    });
  }
});

describe('checkJsonSchema: schemas strict Ajv refuses', () => {
  const cases: [name: string, schema: Record<string, unknown>, problem: string][] = [
    [
      'a bad regex',
      { type: 'string', pattern: '^[A-Z' },
      'invalid JSON Schema: Invalid regular expression: /^[A-Z/u: Unterminated character class',
    ],
    [
      'a bad regex in a nested property',
      { type: 'object', properties: { a: { type: 'string', pattern: '(' } } },
      'invalid JSON Schema: Invalid regular expression: /(/u: Unterminated group',
    ],
    [
      'an unknown keyword',
      { type: 'object', requird: ['a'] },
      'invalid JSON Schema: strict mode: unknown keyword: "requird"',
    ],
    [
      'an unknown format',
      { type: 'string', format: 'nope' },
      'invalid JSON Schema: unknown format "nope" ignored in schema at path "#"',
    ],
    [
      'a type that does not exist',
      { type: 'strin' },
      'invalid JSON Schema: schema is invalid: data/type must be equal to one of the allowed values, data/type must be array, data/type must match a schema in anyOf',
    ],
    [
      'a property schema that is not a schema',
      { type: 'object', properties: { a: 5 } },
      'invalid JSON Schema: schema is invalid: data/properties/a must be object,boolean',
    ],
  ];
  for (const [name, schema, problem] of cases) {
    it(name, () => {
      const problems = checkJsonSchema(schema);
      assert.deepEqual(problems, [problem]);
      assert.ok(!problem.includes('\n'));
    });
  }

  it('reports properties: null as a problem instead of throwing', () => {
    const problems = checkJsonSchema({ type: 'object', properties: null });
    assert.equal(problems.length, 1);
  });

  it("accepts a schema that declares the contract's dialect (draft 2020-12)", () => {
    assert.deepEqual(
      checkJsonSchema({ $schema: 'https://json-schema.org/draft/2020-12/schema', type: 'object' }),
      [],
    );
  });
});

describe('checkJsonSchema: patterns that could take exponential time (ReDoS)', () => {
  const cases: [name: string, schema: Record<string, unknown>, problems: string[]][] = [
    ['a linear pattern is fine', { type: 'string', pattern: '^[A-Z0-9-]{3,32}$' }, []],
    [
      'nested quantifiers in a property pattern',
      { type: 'object', properties: { sku: { type: 'string', pattern: '^(a+)+$' } } },
      ['pattern at /properties/sku could take exponential time (nested quantifiers); rewrite it'],
    ],
    [
      'a starred group of words',
      { type: 'array', items: { type: 'string', pattern: '^(\\w+\\s?)*$' } },
      ['pattern at /items could take exponential time (nested quantifiers); rewrite it'],
    ],
    [
      'a patternProperties key',
      { type: 'object', patternProperties: { '^(x*)*y$': { type: 'string' } } },
      ['patternProperties key at / could take exponential time (nested quantifiers)'],
    ],
    [
      'a property named "pattern" is a name, not a regex',
      { type: 'object', properties: { pattern: { type: 'string' } } },
      [],
    ],
  ];
  for (const [name, schema, problems] of cases) {
    it(name, () => {
      assert.deepEqual(checkJsonSchema(schema), problems);
    });
  }
});
