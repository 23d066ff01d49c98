/**
 * omitFields tries: dotted paths, `*`, arrays at every level (and at the top),
 * missing paths, odd JSON shapes, prototype-looking keys, deep documents, and
 * the per-route cache.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { CompiledRoute } from '../../../policy/compile/bundle.ts';
import { compileOmitFields, omitFieldsFor } from './omit-fields.ts';

function omitted(paths: string[], value: unknown): { value: unknown; removed: boolean } {
  const copy: unknown = structuredClone(value);
  const removed = compileOmitFields(paths).omit(copy);
  return { value: copy, removed };
}

describe('omitFields', () => {
  test('removes top-level and nested fields', () => {
    const r = omitted(['internalCost', 'supplier.contact'], {
      id: 1,
      internalCost: 3,
      supplier: { name: 'acme', contact: { email: 'a@b' } },
    });
    assert.deepEqual(r.value, { id: 1, supplier: { name: 'acme' } });
    assert.equal(r.removed, true);
  });

  test('a missing path changes nothing and reports it', () => {
    const doc = { a: { b: 1 }, c: [1, 2] };
    const r = omitted(['x', 'a.x', 'a.b.c', 'c.d', 'x.y.z'], doc);
    assert.deepEqual(r.value, doc);
    assert.equal(r.removed, false);
  });

  test('arrays are traversed at every level', () => {
    const r = omitted(['items.cost', 'items.parts.secret'], {
      items: [
        { id: 1, cost: 5, parts: [{ secret: 1, n: 'a' }, [{ secret: 2, n: 'b' }]] },
        { id: 2, cost: 6 },
        7,
        null,
        'x',
      ],
    });
    assert.deepEqual(r.value, {
      items: [{ id: 1, parts: [{ n: 'a' }, [{ n: 'b' }]] }, { id: 2 }, 7, null, 'x'],
    });
  });

  test('a top-level array: each element is filtered', () => {
    const r = omitted(
      ['cost', 'meta.internal'],
      [{ id: 1, cost: 1, meta: { internal: true, ok: 1 } }, [{ cost: 2 }], { id: 3 }],
    );
    assert.deepEqual(r.value, [{ id: 1, meta: { ok: 1 } }, [{}], { id: 3 }]);
  });

  test('* matches every key of an object', () => {
    const r = omitted(['users.*.ssn', 'config.*'], {
      users: { alice: { ssn: 1, name: 'a' }, bob: { ssn: 2 }, carol: 3 },
      config: { a: 1, b: { c: 2 } },
      keep: 1,
    });
    assert.deepEqual(r.value, { users: { alice: { name: 'a' }, bob: {}, carol: 3 }, config: {}, keep: 1 });
  });

  test('* at an array level matches its elements', () => {
    assert.deepEqual(omitted(['tags.*'], { tags: ['a', 'b'], n: 1 }).value, { tags: [], n: 1 });
    assert.deepEqual(omitted(['*'], [1, { a: 1 }]).value, []);
    assert.deepEqual(omitted(['*'], { a: 1, b: [1] }).value, {});
    // Each element, and each object-valued key of each element (errs toward removing more).
    assert.deepEqual(omitted(['items.*.secret'], { items: [{ secret: 1, a: { secret: 2, b: 1 } }] }).value, {
      items: [{ a: { b: 1 } }],
    });
    assert.equal(omitted(['tags.*'], { tags: [] }).removed, false);
  });

  test('a shorter path wins over a longer one through the same field', () => {
    assert.deepEqual(omitted(['a.b', 'a'], { a: { b: 1 }, c: 1 }).value, { c: 1 });
    assert.deepEqual(omitted(['a', 'a.b'], { a: { b: 1 }, c: 1 }).value, { c: 1 });
    assert.deepEqual(omitted(['*.x', 'a.y'], { a: { x: 1, y: 2, z: 3 }, b: { x: 1 } }).value, {
      a: { z: 3 },
      b: {},
    });
  });

  test('scalars, null and weird shapes never throw', () => {
    const f = compileOmitFields(['a.b', '*', 'x.*.y']);
    for (const v of [null, undefined, 0, 1.5, '', 'str', true, false, [], {}, [[[]]], [null, [null]]]) {
      assert.doesNotThrow(() => f.omit(v));
    }
    assert.deepEqual(omitted(['a.b'], { a: 'text' }).value, { a: 'text' });
    assert.deepEqual(omitted(['a.b'], { a: null }).value, { a: null });
    assert.deepEqual(omitted(['a.b'], { a: [1, null, 'x', { b: 1 }] }).value, { a: [1, null, 'x', {}] });
  });

  test('prototype-looking keys are ordinary keys', () => {
    const doc = JSON.parse(
      '{"__proto__":{"polluted":1},"constructor":{"prototype":{"x":1}},"a":1}',
    ) as object;
    const f = compileOmitFields([
      '__proto__.polluted',
      'constructor.prototype',
      'toString',
      'hasOwnProperty.x',
    ]);
    assert.equal(f.omit(doc), true);
    assert.equal(JSON.stringify(doc), '{"__proto__":{},"constructor":{},"a":1}');
    assert.equal(({} as { polluted?: number }).polluted, undefined);
    assert.equal(compileOmitFields(['__proto__']).omit(doc), true);
    assert.equal(JSON.stringify(doc), '{"constructor":{},"a":1}');
    // A key inherited from Object.prototype is not a field of the document.
    assert.equal(compileOmitFields(['toString', 'valueOf.x']).omit({ a: 1 }), false);
  });

  test('deeply nested arrays and objects: no recursion on the depth', () => {
    let deep: unknown = { secret: 1, keep: 2 };
    for (let i = 0; i < 100_000; i++) deep = [deep];
    const f = compileOmitFields(['secret']);
    assert.equal(f.omit(deep), true);
    let chain: Record<string, unknown> = {};
    const top = chain;
    for (let i = 0; i < 100_000; i++) {
      const next: Record<string, unknown> = {};
      chain.a = next;
      chain = next;
    }
    assert.doesNotThrow(() => compileOmitFields(['*.*.*.*.*.*.*.*.*.*.*.*']).omit(top));
  });

  test('empty segments are ignored; an empty list removes nothing', () => {
    assert.deepEqual(omitted(['', '.', 'a..b'], { a: { b: 1 } }).value, { a: {} });
    assert.equal(omitted([], { a: 1 }).removed, false);
  });

  test('omitFieldsFor compiles once per route and returns null without fields', () => {
    const route = { response: { omitFields: ['a'] } } as unknown as CompiledRoute;
    const first = omitFieldsFor(route);
    assert.ok(first);
    assert.equal(omitFieldsFor(route), first);
    assert.deepEqual(first.paths, ['a']);
    assert.equal(omitFieldsFor({ response: { omitFields: null } } as unknown as CompiledRoute), null);
    assert.equal(omitFieldsFor({ response: { omitFields: [] } } as unknown as CompiledRoute), null);
  });
});
