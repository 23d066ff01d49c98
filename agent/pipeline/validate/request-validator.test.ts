import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { describe, test } from 'node:test';
import type { CompiledRoute } from '../../../policy/compile/bundle.ts';
import { PolicyError, rescue } from '../../errors.ts';
import {
  checkJsonBody,
  checkRequestHead,
  compileRouteValidators,
  MAX_VIOLATIONS,
  queryObject,
  type RouteValidator,
  violationsOf,
} from './request-validator.ts';

const ORDER_SCHEMA = {
  type: 'object',
  required: ['sku', 'quantity'],
  additionalProperties: false,
  properties: {
    sku: { type: 'string', pattern: '^[A-Z0-9-]{3,32}$' },
    quantity: { type: 'integer', minimum: 1, maximum: 100 },
  },
};

function route(request: Partial<CompiledRoute['request']>, name = 'r'): CompiledRoute {
  return {
    name,
    methods: ['POST'],
    path: '/orders',
    access: { kind: 'public' },
    rateLimits: [],
    timeoutMs: 30_000,
    request: { maxBodyBytes: 1024, contentTypes: null, query: null, body: null, ...request },
    response: { omitFields: null },
    deprecation: null,
  };
}

function validatorFor(request: Partial<CompiledRoute['request']>): RouteValidator {
  const r = route(request);
  const v = compileRouteValidators([r]).get(r);
  assert.ok(v);
  return v;
}

function head(headers: Record<string, string>, method = 'POST'): IncomingMessage {
  return { headers, method } as unknown as IncomingMessage;
}

function codes(errors: PolicyError[]): string[] {
  return errors.map((e) => e.code);
}

function errorsOf(e: PolicyError | null | undefined): unknown {
  assert.ok(e instanceof PolicyError);
  assert.equal(e.code, 'ERR_VALIDATION');
  return e.extensions.errors;
}

const orders = validatorFor({ body: ORDER_SCHEMA, contentTypes: ['application/json'] });
const json = { 'content-type': 'application/json', 'content-length': '10' };

describe('checkRequestHead', () => {
  test('Content-Length over maxBodyBytes → 413; at the limit → fine', () => {
    assert.deepEqual(codes(checkRequestHead(head({ ...json, 'content-length': '1025' }), orders, null)), [
      'ERR_BODY_TOO_LARGE',
    ]);
    assert.deepEqual(codes(checkRequestHead(head({ ...json, 'content-length': '1024' }), orders, null)), []);
    assert.equal(
      rescue(checkRequestHead(head({ 'content-length': '5000' }), orders, null)[0], 'r').status,
      413,
    );
  });

  test('content types: missing, not listed, not JSON for a body schema → 415', () => {
    const chunked = { 'transfer-encoding': 'chunked' };
    assert.deepEqual(codes(checkRequestHead(head(chunked), orders, null)), ['ERR_MEDIA_TYPE']);
    assert.deepEqual(
      codes(checkRequestHead(head({ ...chunked, 'content-type': 'text/plain' }), orders, null)),
      ['ERR_MEDIA_TYPE'],
    );
    assert.deepEqual(
      codes(
        checkRequestHead(head({ ...json, 'content-type': 'Application/JSON; charset=utf-8' }), orders, null),
      ),
      [],
    );
    const textOk = validatorFor({ contentTypes: ['text/*'] });
    assert.deepEqual(
      codes(checkRequestHead(head({ ...json, 'content-type': 'text/csv' }), textOk, null)),
      [],
    );
    assert.deepEqual(codes(checkRequestHead(head({ ...json, 'content-type': 'image/png' }), textOk, null)), [
      'ERR_MEDIA_TYPE',
    ]);
    const schemaOnly = validatorFor({ body: ORDER_SCHEMA });
    assert.deepEqual(
      codes(
        checkRequestHead(head({ ...json, 'content-type': 'application/merge-patch+json' }), schemaOnly, null),
      ),
      [],
    );
    assert.deepEqual(
      codes(checkRequestHead(head({ ...json, 'content-type': 'text/plain' }), schemaOnly, null)),
      ['ERR_MEDIA_TYPE'],
    );
    // No body: no content type needed.
    assert.deepEqual(codes(checkRequestHead(head({ 'content-length': '0' }, 'GET'), orders, null)), []);
    // No contentTypes and no schema: any body goes.
    assert.deepEqual(codes(checkRequestHead(head({ 'content-length': '3' }), validatorFor({}), null)), []);
  });

  test('a POST without a body on a route with a body schema → 400', () => {
    const [e] = checkRequestHead(head({}), orders, null);
    assert.deepEqual(errorsOf(e), [{ in: 'body', pointer: '', message: 'a request body is required' }]);
  });

  test('query schemas see strings, repeated parameters as arrays', () => {
    const v = validatorFor({
      query: {
        type: 'object',
        properties: {
          dryRun: { enum: ['true', 'false'] },
          tag: { type: 'array', items: { type: 'string' }, maxItems: 2 },
          limit: { type: 'string', pattern: '^[0-9]+$' },
        },
        additionalProperties: false,
      },
    });
    assert.deepEqual(codes(checkRequestHead(head({}, 'GET'), v, 'dryRun=true&limit=5')), []);
    assert.deepEqual(codes(checkRequestHead(head({}, 'GET'), v, null)), []);
    const [e] = checkRequestHead(head({}, 'GET'), v, 'dryRun=maybe&limit=x&extra=1&tag=a&tag=b&tag=c');
    assert.deepEqual(errorsOf(e), [
      { in: 'query', pointer: '/extra', message: 'must NOT have additional properties' },
      { in: 'query', pointer: '/dryRun', message: 'must be equal to one of the allowed values' },
      { in: 'query', pointer: '/tag', message: 'must NOT have more than 2 items' },
      { in: 'query', pointer: '/limit', message: 'must match pattern "^[0-9]+$"' },
    ]);
    assert.ok(!JSON.stringify(e?.extensions).includes('maybe'));
  });

  test('queryObject: a __proto__ parameter is a plain key', () => {
    const q = queryObject('__proto__=x&a=1&a=2&b=%20c+d');
    assert.deepEqual(Object.keys(q), ['__proto__', 'a', 'b']);
    assert.equal(Object.getPrototypeOf(q), Object.prototype);
    assert.deepEqual(q.a, ['1', '2']);
    assert.equal(q.b, ' c d');
  });
});

describe('checkJsonBody', () => {
  const body = orders.body;
  assert.ok(body);

  test('valid body → null', () => {
    assert.equal(checkJsonBody(Buffer.from('{"sku":"AB-1","quantity":3}'), body), null);
  });

  test('violations name the pointer, never the value', () => {
    const e = checkJsonBody(Buffer.from('{"sku":"secret-value","quantity":1000}'), body);
    assert.deepEqual(errorsOf(e), [
      { in: 'body', pointer: '/sku', message: 'must match pattern "^[A-Z0-9-]{3,32}$"' },
      { in: 'body', pointer: '/quantity', message: 'must be <= 100' },
    ]);
    assert.ok(!rescue(e, 'r').body.includes('secret-value'));
    assert.deepEqual(errorsOf(checkJsonBody(Buffer.from('{}'), body)), [
      { in: 'body', pointer: '/sku', message: "must have required property 'sku'" },
      { in: 'body', pointer: '/quantity', message: "must have required property 'quantity'" },
    ]);
  });

  test('parse problems → 400 with their pointer', () => {
    assert.deepEqual(errorsOf(checkJsonBody(Buffer.from('{"sku":'), body)), [
      { in: 'body', pointer: '', message: 'must be valid JSON' },
    ]);
    const deep = Buffer.from(`${'['.repeat(10_000)}${']'.repeat(10_000)}`);
    assert.equal((errorsOf(checkJsonBody(deep, body)) as unknown[]).length, 1);
    assert.deepEqual(errorsOf(checkJsonBody(Buffer.from('{"__proto__":{"x":1}}'), body)), [
      { in: 'body', pointer: '/__proto__', message: 'must not use the key __proto__' },
    ]);
    assert.deepEqual(errorsOf(checkJsonBody(Buffer.from('{"constructor":{"prototype":{"x":1}}}'), body)), [
      { in: 'body', pointer: '/sku', message: "must have required property 'sku'" },
      { in: 'body', pointer: '/quantity', message: "must have required property 'quantity'" },
      { in: 'body', pointer: '/constructor', message: 'must NOT have additional properties' },
    ]);
    assert.equal(Reflect.get({}, 'x'), undefined);
  });

  test('huge numbers are numbers; beyond doubles they fail type checks, no crash', () => {
    const n = validatorFor({ body: { type: 'object', properties: { n: { type: 'number' } } } }).body;
    assert.ok(n);
    assert.equal(checkJsonBody(Buffer.from('{"n":123456789012345678901234567890}'), n), null);
    assert.deepEqual(errorsOf(checkJsonBody(Buffer.from('{"n":1e400}'), n)), [
      { in: 'body', pointer: '/n', message: 'must be number' },
    ]);
  });

  test(`at most ${MAX_VIOLATIONS} violations; a large failing body lists only the first`, () => {
    const items = validatorFor({ body: { type: 'array', items: { type: 'string' } } }).body;
    assert.ok(items);
    const small = errorsOf(checkJsonBody(Buffer.from(JSON.stringify(Array(50).fill(1))), items)) as unknown[];
    assert.equal(small.length, MAX_VIOLATIONS);
    const large = errorsOf(checkJsonBody(Buffer.from(JSON.stringify(Array(100_000).fill(1))), items));
    assert.deepEqual(large, [{ in: 'body', pointer: '/0', message: 'must be string' }]);
  });
});

describe('compileRouteValidators', () => {
  test('routes sharing a schema $id still compile; routes without schemas need no Ajv', () => {
    const a = route({ body: { $id: 'https://x/order', type: 'object' } }, 'a');
    const b = route({ body: { $id: 'https://x/order', type: 'array' } }, 'b');
    const plain = route({}, 'plain');
    const vs = compileRouteValidators([a, b, plain]);
    assert.equal(checkJsonBody(Buffer.from('{}'), vs.get(a)?.body ?? assert.fail()), null);
    assert.equal(checkJsonBody(Buffer.from('[]'), vs.get(b)?.body ?? assert.fail()), null);
    assert.deepEqual(vs.get(plain), { maxBodyBytes: 1024, contentTypes: null, query: null, body: null });
  });

  test('a schema Ajv cannot compile fails closed (500) instead of letting requests through', () => {
    const bad = route({ body: { type: 'object', unknownKeyword: true } });
    const v = compileRouteValidators([bad]).get(bad)?.body;
    assert.ok(v);
    assert.throws(() => checkJsonBody(Buffer.from('{}'), v), { code: 'ERR_INTERNAL' });
  });

  test('violationsOf caps long pointers', () => {
    const long = 'k'.repeat(1000);
    const [v] = violationsOf(
      [
        {
          instancePath: '',
          keyword: 'additionalProperties',
          schemaPath: '#',
          params: { additionalProperty: long },
          message: 'must NOT have additional properties',
        },
      ],
      'body',
    );
    assert.ok(v && v.pointer.length < 300);
  });
});
