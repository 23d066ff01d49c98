/** backoffDelay's doubling, cap and jitter; sleep's early return on abort. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { backoffDelay, DEFAULT_BACKOFF, sleep } from './backoff.ts';

describe('backoffDelay', () => {
  test('doubles from 250 ms to a 30 s cap by default, jittered into [base/2, base)', () => {
    const low = [0, 1, 2, 3, 7, 8, 20, 5000].map((n) => backoffDelay(n, {}, () => 0));
    assert.deepEqual(low, [125, 250, 500, 1000, 15_000, 15_000, 15_000, 15_000]);
    const high = [0, 1, 7, 5000].map((n) => Math.round(backoffDelay(n, {}, () => 0.999_999)));
    assert.deepEqual(high, [250, 500, 30_000, 30_000]);
    assert.deepEqual(DEFAULT_BACKOFF, { initialMs: 250, maxMs: 30_000 });
  });

  test('honours the given bounds; the default jitter stays in range', () => {
    assert.equal(
      backoffDelay(3, { initialMs: 10, maxMs: 50 }, () => 0.5),
      37.5,
    );
    for (let i = 0; i < 100; i++) {
      const d = backoffDelay(2, { initialMs: 100 });
      assert.ok(d >= 200 && d < 400);
    }
  });
});

describe('sleep', () => {
  test('waits, or returns as soon as the signal aborts', async () => {
    const t0 = Date.now();
    await sleep(30, new AbortController().signal);
    assert.ok(Date.now() - t0 >= 25);

    const controller = new AbortController();
    const t1 = Date.now();
    const pending = sleep(10_000, controller.signal);
    setTimeout(() => controller.abort(), 20);
    await pending;
    assert.ok(Date.now() - t1 < 1000);

    const t2 = Date.now();
    await sleep(10_000, AbortSignal.abort());
    assert.ok(Date.now() - t2 < 100);
  });
});
