import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { CompiledRateLimit } from '../compile/bundle.ts';
import { closestToRefusing, type LimitOutcome, RateLimiter } from './rate-limiter.ts';

/** 2026-07-01T00:00:00.250Z: not on a whole second, so rounding shows. */
const T0 = Date.UTC(2026, 6, 1) + 250;

function limit(overrides: Partial<CompiledRateLimit> = {}): CompiledRateLimit {
  return {
    name: 'per-ip',
    key: { kind: 'ip' },
    limit: 2,
    periodMs: 1_000,
    burst: 1,
    scope: 'Local',
    exposeHeaders: true,
    ...overrides,
  };
}

function clock(start = T0) {
  const c = { ms: start, now: () => c.ms };
  return c;
}

const brief = (o: LimitOutcome) => [o.allowed, o.remaining, o.resetMs] as const;

/** One request under one limit. */
class OneLimit {
  readonly #limiter: RateLimiter;
  constructor(options: ConstructorParameters<typeof RateLimiter>[0] = {}) {
    this.#limiter = new RateLimiter(options);
  }
  take(l: CompiledRateLimit, key: string | null): LimitOutcome {
    const [o] = this.#limiter.admit([{ limit: l, key }]);
    assert.ok(o);
    return o;
  }
  get size(): number {
    return this.#limiter.size;
  }
}

describe('RateLimiter: one limit', () => {
  test('a bucket holds limit + burst tokens, then refuses until one refills', () => {
    const c = clock();
    const limiter = new OneLimit({ now: c.now });
    const l = limit();
    // capacity 3, one token every 500 ms
    assert.deepEqual(brief(limiter.take(l, 'a')), [true, 2, 0]);
    assert.deepEqual(brief(limiter.take(l, 'a')), [true, 1, 0]);
    assert.deepEqual(brief(limiter.take(l, 'a')), [true, 0, 500]);
    assert.deepEqual(brief(limiter.take(l, 'a')), [false, 0, 500]);
    c.ms += 200;
    assert.deepEqual(brief(limiter.take(l, 'a')), [false, 0, 300]);
    c.ms += 300;
    assert.deepEqual(brief(limiter.take(l, 'a')), [true, 0, 500]);
    c.ms += 10_000;
    assert.deepEqual(brief(limiter.take(l, 'a')), [true, 2, 0], 'refilled to capacity, never above');
  });

  test('the outcome carries the limit it was taken from', () => {
    const l = limit();
    assert.equal(new OneLimit({ now: clock().now }).take(l, 'a').limit, l);
  });

  test('buckets are per limit and per key; a missing key (null) has one shared bucket of its own', () => {
    const limiter = new OneLimit({ now: clock().now });
    const one = limit({ burst: 0, limit: 1 });
    const other = limit({ burst: 0, limit: 1, name: 'other' });
    assert.equal(limiter.take(one, 'a').allowed, true);
    assert.equal(limiter.take(one, 'a').allowed, false);
    const cases: [what: string, l: CompiledRateLimit, key: string | null][] = [
      ['another key', one, 'b'],
      ['another limit, same key', other, 'a'],
      ['the missing key', one, null],
      ['the empty key (whole workload), distinct from missing', one, ''],
      ['a key that spells a placeholder', one, 'missing'],
    ];
    for (const [what, l, key] of cases) assert.equal(limiter.take(l, key).allowed, true, what);
    assert.equal(limiter.take(one, null).allowed, false, 'every request without the key shares one bucket');
    assert.equal(limiter.size, 6);
  });

  test('a key that is the missing-key placeholder character is not the missing-key bucket', {}, () => {
    const limiter = new OneLimit({ now: clock().now });
    const one = limit({ burst: 0, limit: 1 });
    assert.equal(limiter.take(one, null).allowed, true);
    assert.equal(limiter.take(one, '\u0001').allowed, true);
  });

  test('an edited limit (same name, other numbers) starts with fresh buckets', () => {
    const limiter = new OneLimit({ now: clock().now });
    const before = limit({ limit: 1, burst: 0 });
    assert.equal(limiter.take(before, 'a').allowed, true);
    assert.equal(limiter.take(before, 'a').allowed, false);
    const edits: CompiledRateLimit[] = [
      limit({ limit: 2, burst: 0 }),
      limit({ limit: 1, burst: 1 }),
      limit({ limit: 1, burst: 0, periodMs: 2_000 }),
    ];
    for (const edited of edits) {
      assert.equal(limiter.take(edited, 'a').allowed, true, JSON.stringify(edited));
    }
    assert.equal(limiter.take(before, 'a').allowed, false, 'the unedited limit keeps its bucket');
  });

  test('maxBuckets bounds memory: the least recently used bucket is forgotten and starts full again', () => {
    const limiter = new OneLimit({ now: clock().now, maxBuckets: 2 });
    const l = limit({ limit: 1, burst: 0 });
    limiter.take(l, 'a');
    limiter.take(l, 'b');
    assert.equal(limiter.take(l, 'a').allowed, false, 'a is now the most recently used');
    limiter.take(l, 'c');
    assert.equal(limiter.size, 2);
    assert.equal(limiter.take(l, 'a').allowed, false, 'a was kept');
    assert.equal(limiter.take(l, 'b').allowed, true, 'b was evicted, so it starts full');
  });

  test('the default clock is Date.now', () => {
    const o = new OneLimit().take(limit(), 'a');
    assert.deepEqual(brief(o), [true, 2, 0]);
  });
});

describe('closestToRefusing', () => {
  const outcome = (name: string, allowed: boolean, remaining: number, resetMs: number): LimitOutcome => ({
    allowed,
    remaining,
    resetMs,
    limit: limit({ name }),
  });
  const cases: [what: string, outcomes: LimitOutcome[], expected: string | null][] = [
    ['none', [], null],
    ['one', [outcome('a', true, 5, 0)], 'a'],
    ['a refusal wins over allowed', [outcome('a', true, 0, 900), outcome('b', false, 0, 10)], 'b'],
    ['a refusal wins whatever the order', [outcome('b', false, 0, 10), outcome('a', true, 0, 900)], 'b'],
    ['fewest remaining', [outcome('a', true, 5, 0), outcome('b', true, 1, 0), outcome('c', true, 3, 0)], 'b'],
    ['a tie on remaining: the longer reset', [outcome('a', true, 0, 100), outcome('b', true, 0, 900)], 'b'],
    ['two refusals: the longer wait', [outcome('a', false, 0, 100), outcome('b', false, 0, 900)], 'b'],
    ['a full tie keeps the first', [outcome('a', true, 2, 0), outcome('b', true, 2, 0)], 'a'],
  ];
  for (const [what, outcomes, expected] of cases) {
    test(what, () => {
      assert.equal(closestToRefusing(outcomes)?.limit.name ?? null, expected);
    });
  }
});

describe('RateLimiter.admit: several limits at once', () => {
  test('all or nothing: a request refused by one limit takes no token from the others', () => {
    const limiter = new RateLimiter({ now: clock().now });
    const user = limit({ name: 'per-user', limit: 1, burst: 0 });
    const ip = limit({ name: 'per-ip', limit: 2, burst: 0 });
    const both = (u: string) =>
      limiter.admit([
        { limit: user, key: u },
        { limit: ip, key: '10.0.0.1' },
      ]);
    assert.deepEqual(
      both('alice').map((o) => o.allowed),
      [true, true],
    );
    const refused = both('alice');
    assert.deepEqual(
      refused.map((o) => o.allowed),
      [false, true],
    );
    assert.equal(refused[1]?.remaining, 0, 'the per-ip outcome reports what a take would leave');
    assert.deepEqual(
      both('bob').map((o) => o.allowed),
      [true, true],
      "alice's refusal did not spend per-ip",
    );
    assert.deepEqual(
      both('carol').map((o) => o.allowed),
      [true, false],
    );
  });

  test('peek answers what admit would, taking nothing', () => {
    const limiter = new RateLimiter({ now: clock().now });
    const user = limit({ name: 'per-user', limit: 1, burst: 0 });
    const entries = [{ limit: user, key: 'alice' }];
    assert.deepEqual(limiter.peek(entries).map(brief), [[true, 0, 1_000]]);
    assert.deepEqual(limiter.peek(entries).map(brief), [[true, 0, 1_000]], 'a peek spends nothing');
    assert.deepEqual(limiter.admit(entries).map(brief), [[true, 0, 1_000]]);
    assert.deepEqual(limiter.peek(entries).map(brief), [[false, 0, 1_000]]);
  });

  test('no entries: nothing to admit', () => {
    assert.deepEqual(new RateLimiter().admit([]), []);
  });
});

describe('RateLimiter: scopes', () => {
  test('two policies with a limit of the same name never share buckets', () => {
    const limiter = new RateLimiter({ now: clock().now });
    const one = limit({ name: 'per-ip', limit: 1, burst: 0 });
    assert.equal(limiter.admit([{ limit: one, key: 'a', scope: 'shop/orders' }])[0]?.allowed, true);
    assert.equal(limiter.admit([{ limit: one, key: 'a', scope: 'shop/orders' }])[0]?.allowed, false);
    assert.equal(limiter.admit([{ limit: one, key: 'a', scope: 'shop/users' }])[0]?.allowed, true);
  });
});
