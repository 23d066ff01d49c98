import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { canonicalJson, contentHash } from './hash.ts';

describe('canonicalJson', () => {
  const cases: [name: string, value: unknown, json: string][] = [
    ['null', null, 'null'],
    ['undefined', undefined, 'null'],
    ['a number', 1.5, '1.5'],
    ['a string', 'a"b', '"a\\"b"'],
    ['a boolean', false, 'false'],
    ['an empty object', {}, '{}'],
    ['an empty array', [], '[]'],
    ['keys sorted', { b: 1, a: 2, c: 3 }, '{"a":2,"b":1,"c":3}'],
    [
      'keys sorted at every level',
      { z: { y: 1, x: [{ d: 1, c: 2 }] }, a: null },
      '{"a":null,"z":{"x":[{"c":2,"d":1}],"y":1}}',
    ],
    ['array order kept', [3, 1, 2], '[3,1,2]'],
    ['undefined properties dropped', { a: undefined, b: 1 }, '{"b":1}'],
    ['undefined array items become null', [undefined, 1], '[null,1]'],
    ['upper case sorts before lower case (code units)', { b: 1, B: 2, a: 3 }, '{"B":2,"a":3,"b":1}'],
    ['keys needing escapes', { 'a"b': 1 }, '{"a\\"b":1}'],
  ];
  for (const [name, value, json] of cases) {
    it(name, () => {
      assert.equal(canonicalJson(value), json);
    });
  }

  it('is valid JSON that parses back to the same value', () => {
    const value = { routes: [{ name: 'r', methods: ['GET'], access: { kind: 'public' } }], port: null };
    assert.deepEqual(JSON.parse(canonicalJson(value)), value);
  });
});

describe('contentHash', () => {
  it('is sha256 of the canonical JSON', () => {
    assert.equal(contentHash({}), 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a');
    assert.equal(
      contentHash({ z: true, a: [1, { c: 'x', b: null }] }),
      'sha256:15bc432f09e5a34d7d11a4c13b4a57bcf0f271cb4bd8c0dec041087fa1917738',
    );
  });

  it('does not depend on key order', () => {
    assert.equal(contentHash({ a: 1, b: { c: 2, d: 3 } }), contentHash({ b: { d: 3, c: 2 }, a: 1 }));
  });

  it('changes when content changes', () => {
    const hashes = new Set([
      contentHash({ a: 1 }),
      contentHash({ a: 2 }),
      contentHash({ a: '1' }),
      contentHash({ a: [1] }),
      contentHash({ b: 1 }),
      contentHash([1, 2]),
      contentHash([2, 1]),
    ]);
    assert.equal(hashes.size, 7);
  });
});
