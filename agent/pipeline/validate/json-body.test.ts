import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DEFAULT_MAX_DEPTH, parseJsonBody, parseJsonBytes, pointerToken } from './json-body.ts';

function problemOf(text: string, maxDepth?: number): { pointer: string; message: string } {
  const r = parseJsonBody(text, maxDepth === undefined ? {} : { maxDepth });
  assert.equal(r.ok, false, text.slice(0, 80));
  return (r as { ok: false; problem: { pointer: string; message: string } }).problem;
}

describe('parseJsonBody', () => {
  test('parses valid JSON exactly as JSON.parse does', () => {
    for (const text of [
      '{"sku":"AB-1","quantity":3}',
      '[1,2,[3,{"a":"}]{[\\"\\\\"}]]',
      '"just a string"',
      '42',
      'null',
      ' { "a" : { "b" : [ ] } , "c" : "\\u0022" } ',
      '{"": 1, "a/b~c": {"": []}}',
    ]) {
      const r = parseJsonBody(text);
      assert.deepEqual(r, { ok: true, value: JSON.parse(text) }, text);
    }
  });

  test('invalid JSON → pointer ""', () => {
    for (const text of ['', '{', '{"a":}', '{"a":1,}', '[1 2]', '"open', '}', '{"a":1}}', 'tru', "{'a':1}"]) {
      assert.deepEqual(problemOf(text), { pointer: '', message: 'must be valid JSON' }, text);
    }
  });

  test('nesting deeper than the limit is refused before parsing, without recursion', () => {
    const deep = `${'['.repeat(10_000)}${']'.repeat(10_000)}`;
    assert.match(problemOf(deep).message, /must not nest deeper than 64 levels/);
    const objects = `${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}`;
    const p = problemOf(objects);
    assert.equal(p.pointer, '/a'.repeat(DEFAULT_MAX_DEPTH));
    // Exactly at the limit is fine; one more is not.
    assert.equal(parseJsonBody(`${'['.repeat(64)}${']'.repeat(64)}`).ok, true);
    assert.equal(parseJsonBody(`${'['.repeat(65)}${']'.repeat(65)}`).ok, false);
    assert.equal(parseJsonBody('[[[]]]', { maxDepth: 2 }).ok, false);
    // Brackets inside strings do not count.
    assert.equal(parseJsonBody(`["${'['.repeat(1000)}"]`).ok, true);
  });

  test('duplicate keys are refused with the pointer of the repeated key', () => {
    assert.deepEqual(problemOf('{"a":1,"a":2}'), { pointer: '/a', message: 'must not repeat a key' });
    assert.deepEqual(problemOf('{"x":[{"k":1},{"k":1,"k":2}]}'), {
      pointer: '/x/1/k',
      message: 'must not repeat a key',
    });
    // Escapes are decoded before comparing.
    assert.deepEqual(problemOf('{"ab":1,"a\\u0062":2}'), {
      pointer: '/ab',
      message: 'must not repeat a key',
    });
    // The same key in sibling objects is fine.
    assert.equal(parseJsonBody('[{"a":1},{"a":2}]').ok, true);
    assert.equal(parseJsonBody('{"a":{"a":{"a":1}}}').ok, true);
    assert.equal(problemOf('{"a/b":{"~":1,"~":2}}').pointer, '/a~1b/~0');
  });

  test('__proto__ keys are refused; constructor/prototype cannot pollute anything', () => {
    assert.deepEqual(problemOf('{"__proto__":{"polluted":true}}'), {
      pointer: '/__proto__',
      message: 'must not use the key __proto__',
    });
    assert.equal(problemOf('{"a":[{"\\u005f_proto__":{"polluted":true}}]}').pointer, '/a/0/__proto__');
    const r = parseJsonBody('{"constructor":{"prototype":{"polluted":true}},"prototype":{"polluted":true}}');
    assert.equal(r.ok, true);
    const value = (r as { value: Record<string, unknown> }).value;
    assert.ok(Object.hasOwn(value, 'constructor'));
    assert.equal(Object.getPrototypeOf(value), Object.prototype);
    assert.equal(Reflect.get(Object.prototype, 'polluted'), undefined);
    assert.equal(Reflect.get({}, 'polluted'), undefined);
  });

  test('huge numbers do not crash: beyond safe integers they are doubles, beyond doubles Infinity', () => {
    const r = parseJsonBody('{"big":123456789012345678901234567890,"huge":1e400,"tiny":-1e-400}');
    assert.equal(r.ok, true);
    const v = (r as { value: Record<string, number> }).value;
    assert.equal(v.big, 1.2345678901234568e29);
    assert.equal(v.huge, Number.POSITIVE_INFINITY);
    const digits = parseJsonBody(`[${'9'.repeat(100_000)}]`);
    assert.equal(digits.ok, true);
  });

  test('a string with many escaped quotes and backslashes is scanned correctly', () => {
    const text = JSON.stringify({ a: '\\"'.repeat(1000), b: ['\\', '"', '\\\\"'] });
    assert.deepEqual(parseJsonBody(text), { ok: true, value: JSON.parse(text) });
  });
});

describe('parseJsonBytes', () => {
  test('strict UTF-8', () => {
    assert.deepEqual(parseJsonBytes(Buffer.from('{"name":"Zoë €"}')), { ok: true, value: { name: 'Zoë €' } });
    const bad = parseJsonBytes(Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d]));
    assert.deepEqual(bad, { ok: false, problem: { pointer: '', message: 'must be valid UTF-8 JSON' } });
  });
});

test('pointerToken escapes ~ and /', () => {
  assert.equal(pointerToken('a/b~c'), 'a~1b~0c');
});
