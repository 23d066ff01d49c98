import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TokenCache } from './token-cache.ts';

const T0 = 1_800_000_000_000;
const setup = (options: { max?: number; maxTtlMs?: number } = {}) => {
  const clock = { t: T0 };
  return { clock, cache: new TokenCache({ now: () => clock.t, ...options }) };
};
const exp = (inMs: number) => ({ sub: 'u', exp: (T0 + inMs) / 1000 });

test('serves a verified token until its exp, never after', () => {
  const { clock, cache } = setup();
  cache.set('corp', 'tok', exp(60_000));
  assert.equal(cache.get('corp', 'tok')?.sub, 'u');
  clock.t += 59_999;
  assert.ok(cache.get('corp', 'tok'));
  clock.t += 1;
  assert.equal(cache.get('corp', 'tok'), undefined);
  assert.equal(cache.size, 0);
});

test('the provider is part of the key', () => {
  const { cache } = setup();
  cache.set('corp', 'tok', exp(60_000));
  assert.equal(cache.get('partner', 'tok'), undefined);
  assert.equal(cache.get('corp', 'tok2'), undefined);
});

test('capped at maxTtlMs', () => {
  const { clock, cache } = setup({ maxTtlMs: 1000 });
  cache.set('corp', 'tok', exp(3_600_000));
  clock.t += 1000;
  assert.equal(cache.get('corp', 'tok'), undefined);
});

test('tokens without exp, or already expired, are not cached', () => {
  const { cache } = setup();
  cache.set('corp', 'a', { sub: 'u' });
  cache.set('corp', 'b', exp(-1));
  cache.set('corp', 'c', { exp: '9999999999' });
  assert.equal(cache.size, 0);
});

test('bounded: least recently used evicted', () => {
  const { cache } = setup({ max: 2 });
  cache.set('corp', 'a', exp(60_000));
  cache.set('corp', 'b', exp(60_000));
  cache.get('corp', 'a');
  cache.set('corp', 'c', exp(60_000));
  assert.deepEqual(
    ['a', 'b', 'c'].map((t) => cache.get('corp', t) !== undefined),
    [true, false, true],
  );
});

test('cached claims are deep-frozen', () => {
  const { cache } = setup();
  cache.set('corp', 'tok', { ...exp(60_000), roles: ['a'], org: { id: 1 } });
  const claims = cache.get('corp', 'tok');
  assert.ok(Object.isFrozen(claims) && Object.isFrozen(claims?.roles) && Object.isFrozen(claims?.org));
});
