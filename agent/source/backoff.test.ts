import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Backoff, DEFAULT_BACKOFF } from './backoff.ts';

/** A random source that replays `values`, then repeats the last one. */
function replay(...values: number[]): () => number {
  let i = 0;
  return () => values[Math.min(i++, values.length - 1)] ?? 0;
}

describe('Backoff', () => {
  test('defaults: 500 ms doubling to 30 s', () => {
    assert.deepEqual({ ...DEFAULT_BACKOFF }, { minMs: 500, maxMs: 30_000 });
    const b = new Backoff({ random: () => 0.999999 });
    const waits = Array.from({ length: 9 }, () => b.next());
    assert.deepEqual(waits, [499, 999, 1999, 3999, 7999, 15_999, 29_999, 29_999, 29_999]);
  });

  const table: [name: string, random: number, expected: number[]][] = [
    ['full jitter can wait nothing at all', 0, [0, 0, 0, 0, 0]],
    ['half the ceiling', 0.5, [50, 100, 200, 400, 400]],
    ['just under the ceiling', 0.9999, [99, 199, 399, 799, 799]],
  ];
  for (const [name, r, expected] of table) {
    test(`${name}: min 100, max 800`, () => {
      const b = new Backoff({ minMs: 100, maxMs: 800, random: () => r });
      assert.deepEqual(
        expected.map(() => b.next()),
        expected,
      );
    });
  }

  test('each wait is drawn below a ceiling that doubles per failure (full jitter)', () => {
    const b = new Backoff({ minMs: 10, maxMs: 1000, random: replay(0.3, 0.9, 0.1, 0.75) });
    const seen: [ceiling: number, wait: number][] = [];
    for (let i = 0; i < 4; i++) {
      const ceiling = b.ceilingMs;
      seen.push([ceiling, b.next()]);
    }
    assert.deepEqual(seen, [
      [10, 3],
      [20, 18],
      [40, 4],
      [80, 60],
    ]);
    assert.equal(b.failures, 4);
  });

  test('with Math.random, waits stay within [0, ceiling)', () => {
    const b = new Backoff({ minMs: 7, maxMs: 300 });
    for (let i = 0; i < 200; i++) {
      const ceiling = b.ceilingMs;
      const wait = b.next();
      assert.ok(Number.isInteger(wait) && wait >= 0 && wait < ceiling, `${wait} < ${ceiling}`);
    }
    assert.equal(b.ceilingMs, 300);
  });

  test('reset starts again from the minimum', () => {
    const b = new Backoff({ minMs: 100, maxMs: 10_000, random: () => 0.5 });
    for (let i = 0; i < 5; i++) b.next();
    assert.equal(b.ceilingMs, 3200);
    b.reset();
    assert.equal(b.failures, 0);
    assert.equal(b.ceilingMs, 100);
    assert.equal(b.next(), 50);
  });

  test('a maximum below the minimum is raised to it; thousands of failures do not overflow', () => {
    const b = new Backoff({ minMs: 400, maxMs: 100, random: () => 0.5 });
    assert.equal(b.next(), 200);
    const long = new Backoff({ minMs: 1, maxMs: 60_000, random: () => 0.5 });
    for (let i = 0; i < 5000; i++) long.next();
    assert.equal(long.ceilingMs, 60_000);
    assert.equal(long.next(), 30_000);
  });
});
