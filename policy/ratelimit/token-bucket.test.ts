import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type TakeResult, TokenBucket } from './token-bucket.ts';

const T0 = 1_000_000;

/** Takes `n` tokens at the same instant and returns the results. */
function takeMany(bucket: TokenBucket, n: number, now: number): TakeResult[] {
  return Array.from({ length: n }, () => bucket.take(now));
}

describe('TokenBucket: capacity', () => {
  const cases: [limit: number, burst: number][] = [
    [1, 0],
    [5, 0],
    [5, 3],
    [100, 20],
  ];
  for (const [limit, burst] of cases) {
    it(`limit ${limit} + burst ${burst}: ${limit + burst} requests at once, then refused`, () => {
      const bucket = new TokenBucket({ limit, periodMs: 60_000, burst }, T0);
      const results = takeMany(bucket, limit + burst + 1, T0);
      assert.deepEqual(
        results.map((r) => r.allowed),
        [...Array(limit + burst).fill(true), false],
      );
      assert.deepEqual(
        results.map((r) => r.remaining),
        [...Array.from({ length: limit + burst }, (_, i) => limit + burst - 1 - i), 0],
      );
    });
  }
});

describe('TokenBucket: refill', () => {
  it('adds limit tokens per period, continuously', () => {
    const bucket = new TokenBucket({ limit: 10, periodMs: 1000, burst: 0 }, T0);
    takeMany(bucket, 10, T0);
    assert.equal(bucket.take(T0 + 99).allowed, false, '0.99 of a token after 99ms');
    assert.equal(bucket.take(T0 + 100).allowed, true, 'one token after 100ms');
    assert.equal(bucket.take(T0 + 100).allowed, false);
    const later = takeMany(bucket, 6, T0 + 600);
    assert.deepEqual(
      later.map((r) => r.allowed),
      [true, true, true, true, true, false],
    );
  });

  it('never holds more than its capacity', () => {
    const bucket = new TokenBucket({ limit: 2, periodMs: 1000, burst: 1 }, T0);
    takeMany(bucket, 3, T0);
    const results = takeMany(bucket, 4, T0 + 3_600_000);
    assert.deepEqual(
      results.map((r) => r.allowed),
      [true, true, true, false],
    );
  });

  it('reports whole tokens left', () => {
    const bucket = new TokenBucket({ limit: 4, periodMs: 1000, burst: 0 }, T0);
    takeMany(bucket, 4, T0);
    // 1.5 tokens after 375ms: one is taken, 0.5 left → 0 remaining.
    assert.deepEqual(bucket.take(T0 + 375), { allowed: true, remaining: 0, resetMs: 125 });
  });

  it('works with rates that are not whole tokens per ms', () => {
    const bucket = new TokenBucket({ limit: 3, periodMs: 1000, burst: 0 }, T0);
    takeMany(bucket, 3, T0);
    const refused = bucket.take(T0);
    assert.equal(refused.allowed, false);
    assert.equal(refused.resetMs, 334);
    assert.equal(bucket.take(T0 + refused.resetMs).allowed, true);
  });
});

describe('TokenBucket: resetMs', () => {
  it('is 0 while a token is left', () => {
    const bucket = new TokenBucket({ limit: 2, periodMs: 1000, burst: 0 }, T0);
    assert.deepEqual(bucket.take(T0), { allowed: true, remaining: 1, resetMs: 0 });
  });

  it('is the wait for the next token once the last is taken', () => {
    const bucket = new TokenBucket({ limit: 2, periodMs: 1000, burst: 0 }, T0);
    bucket.take(T0);
    assert.deepEqual(bucket.take(T0), { allowed: true, remaining: 0, resetMs: 500 });
  });

  it('counts down while refused, and the request is served when it says', () => {
    const bucket = new TokenBucket({ limit: 1, periodMs: 60_000, burst: 0 }, T0);
    bucket.take(T0);
    assert.deepEqual(bucket.take(T0), { allowed: false, remaining: 0, resetMs: 60_000 });
    assert.deepEqual(bucket.take(T0 + 45_000), { allowed: false, remaining: 0, resetMs: 15_000 });
    assert.deepEqual(bucket.take(T0 + 60_000), { allowed: true, remaining: 0, resetMs: 60_000 });
  });

  it('a refused request does not consume a token', () => {
    const bucket = new TokenBucket({ limit: 1, periodMs: 1000, burst: 0 }, T0);
    bucket.take(T0);
    takeMany(bucket, 50, T0 + 500);
    assert.equal(bucket.take(T0 + 1000).allowed, true);
  });
});

describe('TokenBucket: isFull', () => {
  it('is full when new, not after a take, full again after refilling', () => {
    const bucket = new TokenBucket({ limit: 10, periodMs: 1000, burst: 5 }, T0);
    assert.equal(bucket.isFull(T0), true);
    bucket.take(T0);
    assert.equal(bucket.isFull(T0), false);
    assert.equal(bucket.isFull(T0 + 99), false);
    assert.equal(bucket.isFull(T0 + 100), true);
  });

  it('refills as it checks, so a take after isFull sees the same tokens', () => {
    const bucket = new TokenBucket({ limit: 1, periodMs: 1000, burst: 0 }, T0);
    bucket.take(T0);
    assert.equal(bucket.isFull(T0 + 1000), true);
    assert.equal(bucket.take(T0 + 1000).allowed, true);
    assert.equal(bucket.take(T0 + 1000).allowed, false);
  });
});

describe('TokenBucket: a clock that goes backwards', () => {
  it('neither refills nor drains, and does not count the same time twice', () => {
    const bucket = new TokenBucket({ limit: 10, periodMs: 1000, burst: 0 }, T0);
    takeMany(bucket, 10, T0);
    assert.deepEqual(bucket.take(T0 - 5000), { allowed: false, remaining: 0, resetMs: 100 });
    assert.equal(bucket.isFull(T0 - 10_000), false);
    // Back at T0 + 100ms: exactly one token since T0, not more.
    assert.equal(bucket.take(T0 + 100).allowed, true);
    assert.equal(bucket.take(T0 + 100).allowed, false);
  });

  it('a bucket created at a later time than the first take still works', () => {
    const bucket = new TokenBucket({ limit: 1, periodMs: 1000, burst: 0 }, T0);
    assert.equal(bucket.take(T0 - 1).allowed, true);
    assert.equal(bucket.take(T0 + 999).allowed, false);
    assert.equal(bucket.take(T0 + 1000).allowed, true);
  });
});
