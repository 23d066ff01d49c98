import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { CompiledRateLimit } from '../../../policy/compile/bundle.ts';
import { type LimitOutcome, RateLimiter } from '../../../policy/ratelimit/rate-limiter.ts';
import { rateLimitHeaders } from './rate-limit-headers.ts';

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

describe('rateLimitHeaders', () => {
  const at = (o: Partial<LimitOutcome> & Pick<LimitOutcome, 'allowed' | 'remaining' | 'resetMs'>) => ({
    limit: limit({ limit: 10, burst: 5, periodMs: 60_000 }),
    ...o,
  });
  const T0s = Math.floor(T0 / 1000);

  const cases: [what: string, o: LimitOutcome, expected: Record<string, string>][] = [
    [
      'allowed with tokens left: limit = limit + burst, reset 0, X-RateLimit-Reset now',
      at({ allowed: true, remaining: 7, resetMs: 0 }),
      {
        'ratelimit-limit': '15',
        'ratelimit-remaining': '7',
        'ratelimit-reset': '0',
        'x-ratelimit-limit': '15',
        'x-ratelimit-remaining': '7',
        'x-ratelimit-reset': String(T0s + 1),
      },
    ],
    [
      'allowed, last token taken: reset is the wait for the next one, rounded up',
      at({ allowed: true, remaining: 0, resetMs: 5_200 }),
      {
        'ratelimit-limit': '15',
        'ratelimit-remaining': '0',
        'ratelimit-reset': '6',
        'x-ratelimit-limit': '15',
        'x-ratelimit-remaining': '0',
        'x-ratelimit-reset': String(Math.ceil((T0 + 5_200) / 1000)),
      },
    ],
    [
      'refused: Retry-After plus the same values',
      at({ allowed: false, remaining: 0, resetMs: 2_000 }),
      {
        'retry-after': '2',
        'ratelimit-limit': '15',
        'ratelimit-remaining': '0',
        'ratelimit-reset': '2',
        'x-ratelimit-limit': '15',
        'x-ratelimit-remaining': '0',
        'x-ratelimit-reset': String(Math.ceil((T0 + 2_000) / 1000)),
      },
    ],
    [
      'refused with a sub-second wait: Retry-After is at least 1',
      at({ allowed: false, remaining: 0, resetMs: 1 }),
      {
        'retry-after': '1',
        'ratelimit-limit': '15',
        'ratelimit-remaining': '0',
        'ratelimit-reset': '1',
        'x-ratelimit-limit': '15',
        'x-ratelimit-remaining': '0',
        'x-ratelimit-reset': String(Math.ceil((T0 + 1) / 1000)),
      },
    ],
    [
      'refused with a zero wait still says Retry-After: 1',
      at({ allowed: false, remaining: 0, resetMs: 0 }),
      {
        'retry-after': '1',
        'ratelimit-limit': '15',
        'ratelimit-remaining': '0',
        'ratelimit-reset': '0',
        'x-ratelimit-limit': '15',
        'x-ratelimit-remaining': '0',
        'x-ratelimit-reset': String(T0s + 1),
      },
    ],
    [
      'exposeHeaders false, allowed: nothing',
      { ...at({ allowed: true, remaining: 3, resetMs: 0 }), limit: limit({ exposeHeaders: false }) },
      {},
    ],
    [
      'exposeHeaders false, refused: only Retry-After',
      { ...at({ allowed: false, remaining: 0, resetMs: 3_001 }), limit: limit({ exposeHeaders: false }) },
      { 'retry-after': '4' },
    ],
  ];
  for (const [what, o, expected] of cases) {
    test(what, () => {
      assert.deepEqual(rateLimitHeaders(o, T0), expected);
    });
  }

  test('end to end with the limiter: Remaining never exceeds Limit', () => {
    const limiter = new RateLimiter({ now: () => T0 });
    const l = limit({ limit: 1, burst: 2 });
    for (let i = 0; i < 4; i++) {
      const [o] = limiter.admit([{ limit: l, key: 'k' }]);
      assert.ok(o);
      const h = rateLimitHeaders(o, T0);
      assert.ok(Number(h['ratelimit-remaining']) <= Number(h['ratelimit-limit']), JSON.stringify(h));
      assert.equal(h['ratelimit-limit'], '3');
      assert.equal('retry-after' in h, i === 3);
    }
  });
});
