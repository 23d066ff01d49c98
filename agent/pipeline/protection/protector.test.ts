/**
 * The protector and its registry with an injected clock: the exact threshold
 * boundary, the sliding window, block and release, separate keys and kinds,
 * bounded memory under a flood of keys, and state across bundle reloads.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { CompiledPolicy } from '../../../policy/compile/bundle.ts';
import { blockedError, clientKey, ProtectorRegistry } from './protection.ts';
import { type ProtectionConfig, Protector } from './protector.ts';

const T0 = 1_000_000;

function clock() {
  const c = { ms: T0, now: () => c.ms };
  return c;
}

const AUTH: ProtectionConfig = {
  authFailures: { threshold: 3, windowMs: 60_000, blockMs: 600_000 },
  unmatched: null,
};

function times(n: number, fn: () => void): void {
  for (let i = 0; i < n; i++) fn();
}

describe('Protector', () => {
  test('threshold events within the window are tolerated; the (threshold + 1)-th blocks', () => {
    const c = clock();
    const p = new Protector(AUTH, { now: c.now });
    for (let i = 0; i < 3; i++) {
      assert.deepEqual(p.record('a', 'authFailures'), { blockedNow: false, block: null });
      assert.equal(p.blocked('a'), null);
      c.ms += 1000;
    }
    const r = p.record('a', 'authFailures');
    assert.equal(r.blockedNow, true);
    assert.deepEqual(r.block, { until: c.ms + 600_000, reason: 'authFailures' });
    assert.deepEqual(p.blocked('a'), { until: c.ms + 600_000, reason: 'authFailures' });
  });

  test('the window slides: an event exactly `window` old no longer counts, one a ms younger does', () => {
    const c = clock();
    const p = new Protector(AUTH, { now: c.now });
    p.record('a', 'authFailures'); // T0
    c.ms = T0 + 10;
    p.record('a', 'authFailures');
    c.ms = T0 + 20;
    p.record('a', 'authFailures');
    // At T0 + 60000 the first event has left (T0 + 60000 - 60000 = T0): two remain, this is the third.
    c.ms = T0 + 60_000;
    assert.equal(p.record('a', 'authFailures').blockedNow, false);
    // At T0 + 60009 the events of T0 + 10, T0 + 20 and T0 + 60000 are within: this is the fourth.
    c.ms = T0 + 60_009;
    assert.equal(p.record('a', 'authFailures').blockedNow, true);
  });

  test('events spread wider than the window never block', () => {
    const c = clock();
    const p = new Protector(AUTH, { now: c.now });
    for (let i = 0; i < 100; i++) {
      assert.equal(p.record('a', 'authFailures').blockedNow, false);
      c.ms += 20_000; // 3 events per minute, never 4
    }
    assert.equal(p.blocked('a'), null);
  });

  test('a block lifts by itself after blockMs; counting starts afresh', () => {
    const c = clock();
    const p = new Protector(AUTH, { now: c.now });
    times(4, () => p.record('a', 'authFailures'));
    const until = T0 + 600_000;
    c.ms = until - 1;
    assert.deepEqual(p.blocked('a'), { until, reason: 'authFailures' });
    c.ms = until;
    assert.equal(p.blocked('a'), null);
    assert.equal(p.blockedKeys, 0);
    // The events before the block are forgotten: three more are tolerated again.
    times(3, () => assert.equal(p.record('a', 'authFailures').blockedNow, false));
    assert.equal(p.record('a', 'authFailures').blockedNow, true);
  });

  test('events of a blocked key are not counted and never extend the block', () => {
    const c = clock();
    const p = new Protector(AUTH, { now: c.now });
    times(4, () => p.record('a', 'authFailures'));
    c.ms += 300_000;
    times(10, () => assert.equal(p.record('a', 'authFailures').blockedNow, false));
    assert.equal(p.blocked('a')?.until, T0 + 600_000);
  });

  test('keys and kinds are counted separately; a kind without config is ignored', () => {
    const c = clock();
    const p = new Protector(
      { authFailures: AUTH.authFailures, unmatched: { threshold: 2, windowMs: 1000, blockMs: 5000 } },
      { now: c.now },
    );
    times(3, () => p.record('a', 'authFailures'));
    times(2, () => p.record('a', 'unmatched'));
    times(3, () => p.record('b', 'authFailures'));
    assert.equal(p.blocked('a'), null);
    assert.equal(p.blocked('b'), null);
    assert.deepEqual(p.record('a', 'unmatched').block, { until: T0 + 5000, reason: 'unmatched' });
    assert.equal(p.blocked('b'), null);

    const authOnly = new Protector(AUTH, { now: c.now });
    times(100, () => assert.equal(authOnly.record('a', 'unmatched').blockedNow, false));
    assert.equal(authOnly.trackedKeys, 0);
  });

  test('a log never holds more than threshold timestamps', () => {
    const c = clock();
    const p = new Protector(AUTH, { now: c.now, maxKeys: 10, maxEvents: 3 * 10 + 10 });
    for (let i = 0; i < 10; i++) {
      c.ms += 30_000;
      p.record('a', 'authFailures');
      p.record('a', 'authFailures');
      c.ms += 30_000; // both leave the window before the next pair
    }
    assert.equal(p.blocked('a'), null);
  });

  test('bounded memory: a flood of distinct keys keeps at most maxKeys, forgetting the oldest', () => {
    const c = clock();
    const p = new Protector(AUTH, { now: c.now, maxKeys: 100 });
    times(3, () => p.record('victim-of-eviction', 'authFailures'));
    for (let i = 0; i < 10_000; i++) p.record(`10.0.${i >> 8}.${i & 255}`, 'authFailures');
    assert.equal(p.trackedKeys, 100);
    // Its three failures were forgotten: the next one is the first again, not the fourth.
    assert.equal(p.record('victim-of-eviction', 'authFailures').blockedNow, false);
  });

  test('bounded memory: the event budget evicts the least recently active keys', () => {
    const c = clock();
    const p = new Protector(AUTH, { now: c.now, maxKeys: 1000, maxEvents: 30 });
    // Each key: 1 + 3 events = 4 units; 30 units hold 7 keys.
    for (let i = 0; i < 50; i++) times(3, () => p.record(`k${i}`, 'authFailures'));
    assert.ok(p.trackedKeys <= 7, String(p.trackedKeys));
    assert.equal(p.record('k49', 'authFailures').blockedNow, true);
  });

  test('a flood of counting keys does not lift blocks', () => {
    const c = clock();
    const p = new Protector(AUTH, { now: c.now, maxKeys: 10 });
    times(4, () => p.record('attacker', 'authFailures'));
    for (let i = 0; i < 1000; i++) p.record(`k${i}`, 'authFailures');
    assert.notEqual(p.blocked('attacker'), null);
  });
});

function policy(
  protection: ProtectionConfig,
  name = 'orders',
  mode: CompiledPolicy['mode'] = 'Enforce',
): CompiledPolicy {
  return {
    ref: { name, namespace: 'shop', generation: 1 },
    hash: `sha256:${Math.random()}`,
    port: null,
    mode,
    mtlsMode: 'Permissive',
    unmatched: 'Deny',
    maxBodyBytes: 1024 * 1024,
    jwt: [],
    rateLimits: [],
    protection,
    routes: [],
  };
}

describe('ProtectorRegistry', () => {
  test('state survives a reload that leaves the protection config unchanged', () => {
    const c = clock();
    const registry = new ProtectorRegistry({ now: c.now });
    const v1 = registry.protector(policy(AUTH));
    assert.ok(v1);
    times(4, () => v1.record('a', 'authFailures'));
    // A new bundle: new CompiledPolicy objects (another route, another hash), same protection.
    const v2 = registry.protector(policy({ ...AUTH }));
    assert.equal(v2, v1);
    assert.notEqual(v2?.blocked('a'), null);
    // Another policy of the same bundle has its own state.
    assert.notEqual(registry.protector(policy(AUTH, 'billing')), v1);
  });

  test('a changed config or mode starts afresh; no protection means no protector', () => {
    const c = clock();
    const registry = new ProtectorRegistry({ now: c.now });
    const v1 = registry.protector(policy(AUTH));
    times(4, () => v1?.record('a', 'authFailures'));
    const edited: ProtectionConfig = {
      authFailures: { threshold: 5, windowMs: 60_000, blockMs: 600_000 },
      unmatched: null,
    };
    const v2 = registry.protector(policy(edited));
    assert.notEqual(v2, v1);
    assert.equal(v2?.blocked('a'), null);
    const audit = registry.protector(policy(edited, 'orders', 'Audit'));
    assert.notEqual(audit, v2);
    assert.equal(registry.protector(policy({ authFailures: null, unmatched: null })), null);
    // Removing protection and adding it back starts afresh too.
    assert.notEqual(registry.protector(policy(edited, 'orders', 'Audit')), audit);
  });

  test('the same CompiledPolicy object is looked up once', () => {
    const registry = new ProtectorRegistry();
    const p = policy(AUTH);
    assert.equal(registry.protector(p), registry.protector(p));
  });
});

describe('client key and refusal', () => {
  test('the peer identity when present, else the IP', () => {
    assert.equal(
      clientKey({ peerId: 'spiffe://cluster.local/ns/a/sa/b', clientIp: '10.0.0.1' }),
      'spiffe://cluster.local/ns/a/sa/b',
    );
    assert.equal(clientKey({ peerId: null, clientIp: '10.0.0.1' }), '10.0.0.1');
  });

  test('429 with Retry-After in whole seconds, rounded up, at least 1', () => {
    const e = blockedError({ until: T0 + 1500, reason: 'unmatched' }, T0);
    assert.equal(e.code, 'ERR_PROTECTION_BLOCKED');
    assert.equal(e.headers['retry-after'], '2');
    assert.equal(blockedError({ until: T0 + 10, reason: 'unmatched' }, T0).headers['retry-after'], '1');
    assert.equal(
      blockedError({ until: T0 + 600_000, reason: 'unmatched' }, T0).headers['retry-after'],
      '600',
    );
  });
});
