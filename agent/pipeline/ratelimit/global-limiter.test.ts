import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import type { CompiledRateLimit } from '../../../policy/compile/bundle.ts';
import { type LimitEntry, RateLimiter } from '../../../policy/ratelimit/rate-limiter.ts';
import { TokenBucket } from '../../../policy/ratelimit/token-bucket.ts';
import { REDIS_SKIP_REASON, RedisServer } from '../../../test/support/redis-server.ts';
import { Metrics } from '../../telemetry/metrics.ts';
import {
  bucketKey,
  GlobalLimiter,
  type LimiterLogger,
  type ScriptClient,
  takeBuckets,
} from './global-limiter.ts';
import { connectWithin, createRedisClient, redactRedisUrl } from './redis-client.ts';

const T0 = Date.UTC(2026, 6, 1) + 250;

function limit(overrides: Partial<CompiledRateLimit> = {}): CompiledRateLimit {
  return {
    name: 'shared',
    key: { kind: 'ip' },
    limit: 5,
    periodMs: 60_000,
    burst: 2,
    scope: 'Global',
    exposeHeaders: true,
    ...overrides,
  };
}

function recordingLogger(): LimiterLogger & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    info: (_f, msg) => lines.push(`info ${msg}`),
    warn: (_f, msg) => lines.push(`warn ${msg}`),
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('bucketKey', () => {
  test('namespaced by policy (a Cluster hash tag) and limit; the key and config only hashed', () => {
    const key = bucketKey('shop/orders', { limit: limit(), key: '10.0.0.1' });
    assert.match(key, /^tollgate:rl:\{shop\/orders\}:shared:[A-Za-z0-9_-]{43}$/);
    assert.ok(!key.includes('10.0.0.1'));
  });

  test('distinct for another key, the missing key, another config, another policy', () => {
    const base = bucketKey('shop/orders', { limit: limit(), key: 'a' });
    for (const [policy, entry] of [
      ['shop/orders', { limit: limit(), key: 'b' }],
      ['shop/orders', { limit: limit(), key: null }],
      ['shop/orders', { limit: limit({ burst: 3 }), key: 'a' }],
      ['shop/other', { limit: limit(), key: 'a' }],
    ] as const)
      assert.notEqual(bucketKey(policy, entry), base);
  });
});

describe('redactRedisUrl', () => {
  test('hides the password, keeps the rest', () => {
    assert.equal(redactRedisUrl('rediss://app:s3cret@redis:6380/1'), 'rediss://app:redacted@redis:6380/1');
    assert.equal(redactRedisUrl('redis://127.0.0.1:6379'), 'redis://127.0.0.1:6379');
    assert.equal(redactRedisUrl('not a url'), '(invalid URL)');
  });
});

describe('the token bucket script, against redis-server', { skip: REDIS_SKIP_REASON }, () => {
  let server: RedisServer;
  let redis: Redis;
  before(async () => {
    server = await RedisServer.start();
    redis = new Redis(server.url, { lazyConnect: true });
    await redis.connect();
  });
  after(async () => {
    redis.disconnect();
    await server.stop();
  });
  beforeEach(async () => {
    await redis.flushall();
  });

  const cfg = { limit: 5, periodMs: 60_000, burst: 2 };
  const take = async (key: string, at: number, config = cfg) => {
    const r = await takeBuckets(redis, [key], [config], at);
    const [o] = r.outcomes;
    assert.ok(o);
    return [o.allowed, o.remaining, o.resetMs] as const;
  };

  test('exact boundary: the (limit + burst)-th request is allowed, the next refused', async () => {
    for (let i = 6; i >= 0; i--) assert.deepEqual(await take('b', T0), [true, i, i === 0 ? 12_000 : 0]);
    assert.deepEqual(await take('b', T0), [false, 0, 12_000]);
  });

  test('refill: one token per period / limit, nothing before', async () => {
    for (let i = 0; i < 7; i++) await take('b', T0);
    assert.deepEqual(await take('b', T0 + 6_000), [false, 0, 6_000]);
    assert.deepEqual(await take('b', T0 + 11_999), [false, 0, 1]);
    assert.deepEqual(await take('b', T0 + 12_000), [true, 0, 12_000]);
    assert.deepEqual(await take('b', T0 + 12_000), [false, 0, 12_000]);
    assert.deepEqual(await take('b', T0 + 36_000), [true, 1, 0], 'two tokens in 24 s, one taken');
  });

  test('burst: an idle bucket holds limit + burst, never more', async () => {
    for (let i = 0; i < 7; i++) await take('b', T0);
    const later = T0 + 3_600_000;
    for (let i = 6; i >= 0; i--) assert.equal((await take('b', later))[1], i);
    assert.equal((await take('b', later))[0], false);
  });

  test('a clock that goes back refills nothing and takes from the newest state', async () => {
    for (let i = 0; i < 7; i++) await take('b', T0);
    assert.deepEqual(await take('b', T0 - 60_000), [false, 0, 12_000]);
  });

  test('keys expire once their bucket would be full again', async () => {
    await take('b', T0);
    const one = await redis.pttl('b');
    assert.ok(one > 11_000 && one <= 12_001, `pttl ${one}`);
    for (let i = 0; i < 6; i++) await take('b', T0);
    const seven = await redis.pttl('b');
    assert.ok(seven > 83_000 && seven <= 84_001, `pttl ${seven}`);
    assert.equal(await redis.exists('refused-only'), 0);
    await takeBuckets(redis, ['refused-only', 'b'], [cfg, cfg], T0);
    assert.equal(await redis.exists('refused-only'), 0, 'a refused request writes nothing');
  });

  test('several buckets: all or nothing', async () => {
    const tight = { limit: 1, periodMs: 60_000, burst: 0 };
    const both = () => takeBuckets(redis, ['user', 'ip'], [tight, cfg], T0);
    assert.equal((await both()).allowed, true);
    const refused = await both();
    assert.equal(refused.allowed, false);
    assert.deepEqual(
      refused.outcomes.map((o) => o.allowed),
      [false, true],
    );
    assert.equal(refused.outcomes[1]?.remaining, 5, 'reports what a take would leave');
    assert.equal(Number(await redis.hget('ip', 't')), 6, 'the refusal took nothing from ip');
  });

  test('agrees with the local TokenBucket, fractional refills included', async () => {
    const config = { limit: 3, periodMs: 1_000, burst: 1 };
    const local = new TokenBucket(config, T0);
    let at = T0;
    for (const step of [0, 0, 0, 0, 0, 100, 250, 333, 1, 0, 334, 999, 2_000, 0, 0, 0, 0, 17, 316]) {
      at += step;
      const r = local.take(at);
      assert.deepEqual(await take('eq', at, config), [r.allowed, r.remaining, r.resetMs], `at +${at - T0}`);
    }
  });

  test('without a clock override it runs on the server TIME', async () => {
    const fast = { limit: 10, periodMs: 200, burst: 0 };
    const now = async () => (await takeBuckets(redis, ['t'], [fast])).allowed;
    for (let i = 0; i < 10; i++) assert.equal(await now(), true);
    // A token every 20 ms: the 11th is refused unless the ten calls took that long.
    const start = Date.now();
    const eleventh = await now();
    if (Date.now() - start < 15) assert.equal(eleventh, false);
    await sleep(60);
    assert.equal(await now(), true, 'refilled by the server clock');
  });

  test('EVALSHA falls back to EVAL once the server forgot the script', async () => {
    await take('b', T0);
    await redis.script('FLUSH');
    assert.deepEqual(await take('b', T0), [true, 5, 0]);
  });
});

describe('GlobalLimiter', () => {
  const local = limit({ name: 'per-user', limit: 1, burst: 0, scope: 'Local' });
  const shared = limit();
  const entries = (user: string, ip = '10.0.0.1'): LimitEntry[] => [
    { limit: local, key: user },
    { limit: shared, key: ip },
  ];

  describe('with a store that fails', () => {
    /** A client whose calls fail, hang, or answer PONG, as the test says. */
    function flakyClient(mode: { now: 'fail' | 'hang' | 'ok' }): ScriptClient & { calls: number } {
      const client = {
        calls: 0,
        evalsha: () => {
          client.calls++;
          return mode.now === 'hang'
            ? new Promise<unknown>(() => {})
            : Promise.reject(new Error('ECONNREFUSED'));
        },
        eval: () => Promise.reject(new Error('ECONNREFUSED')),
        ping: () =>
          mode.now === 'ok'
            ? Promise.resolve('PONG')
            : mode.now === 'hang'
              ? new Promise<unknown>(() => {})
              : Promise.reject(new Error('ECONNREFUSED')),
        disconnect: () => {},
      };
      return client;
    }

    test('a slow store: answered locally within the timeout, logged once, counted, recovered', async () => {
      const mode: { now: 'fail' | 'hang' | 'ok' } = { now: 'hang' };
      const client = flakyClient(mode);
      const logger = recordingLogger();
      const metrics = new Metrics();
      const limiter = new GlobalLimiter({
        client,
        local: new RateLimiter(),
        logger,
        metrics,
        timeoutMs: 20,
        probeMs: 10,
      });
      try {
        const start = performance.now();
        const first = await limiter.admit([{ limit: shared, key: 'a' }], 'ns/p');
        assert.ok(performance.now() - start < 500);
        assert.deepEqual(
          first.map((o) => [o.limit.name, o.allowed, o.remaining]),
          [['shared', true, 6]],
        );
        assert.equal(limiter.up, false);
        // While down the store is not asked at all: no waiting.
        for (let i = 0; i < 6; i++) await limiter.admit([{ limit: shared, key: 'a' }], 'ns/p');
        const refused = await limiter.admit([{ limit: shared, key: 'a' }], 'ns/p');
        assert.equal(refused[0]?.allowed, false, 'the local bucket still limits');
        assert.equal(client.calls, 1);
        assert.equal(metrics.get('tollgate_ratelimit_fallback_total', { limit: 'shared' }), 8);
        assert.equal(metrics.get('tollgate_ratelimit_store_up'), 0);
        mode.now = 'ok';
        const end = Date.now() + 2_000;
        while (!limiter.up && Date.now() < end) await sleep(5);
        assert.equal(limiter.up, true, 'the probe brought it back');
        assert.equal(metrics.get('tollgate_ratelimit_store_up'), 1);
        assert.deepEqual(logger.lines, [
          'warn global rate limit store unreachable, using local buckets',
          'info global rate limit store back',
        ]);
      } finally {
        limiter.close();
      }
    });

    test('check() marks the store down or up; Local-only routes never touch it', async () => {
      const mode: { now: 'fail' | 'hang' | 'ok' } = { now: 'fail' };
      const client = flakyClient(mode);
      const logger = recordingLogger();
      const limiter = new GlobalLimiter({ client, local: new RateLimiter(), logger, metrics: new Metrics() });
      try {
        assert.equal(await limiter.check(), false);
        assert.equal(await limiter.check(), false);
        assert.equal(logger.lines.length, 1, 'one line per transition');
        mode.now = 'ok';
        assert.equal(await limiter.check(), true);
        const outcomes = await limiter.admit([{ limit: local, key: 'u' }], 'ns/p');
        assert.equal(outcomes[0]?.allowed, true);
        assert.equal(client.calls, 0);
      } finally {
        limiter.close();
      }
    });
  });

  describe('against redis-server', { skip: REDIS_SKIP_REASON }, () => {
    let server: RedisServer;
    let redis: Redis;
    before(async () => {
      server = await RedisServer.start();
      redis = new Redis(server.url, { lazyConnect: true });
      await redis.connect();
    });
    after(async () => {
      redis.disconnect();
      await server.stop();
    });
    beforeEach(async () => {
      await redis.flushall();
    });

    async function connected(): Promise<GlobalLimiter> {
      const client = createRedisClient(server.url, { timeoutMs: 200 });
      await connectWithin(client, 2_000);
      const limiter = new GlobalLimiter({
        client,
        local: new RateLimiter(),
        logger: recordingLogger(),
        metrics: new Metrics(),
        timeoutMs: 200,
      });
      assert.equal(await limiter.check(), true);
      return limiter;
    }

    test('two sidecars share one Global bucket: limit + burst in all', async () => {
      const a = await connected();
      const b = await connected();
      try {
        const allowed: boolean[] = [];
        for (let i = 0; i < 10; i++) {
          const [o] = await (i % 2 === 0 ? a : b).admit([{ limit: shared, key: 'k' }], 'ns/p');
          allowed.push(o?.allowed ?? false);
        }
        assert.equal(allowed.filter(Boolean).length, 7);
        assert.deepEqual(allowed.slice(7), [false, false, false]);
      } finally {
        a.close();
        b.close();
      }
    });

    test('mixed Local and Global: a Local refusal costs no Global token, and vice versa', async () => {
      const limiter = await connected();
      try {
        const allowed = async (user: string, ip?: string) =>
          closest(await limiter.admit(entries(user, ip), 'ns/p'));
        assert.equal(await allowed('alice'), true);
        assert.equal(await allowed('alice'), false, 'per-user refuses');
        const key = bucketKey('ns/p', { limit: shared, key: '10.0.0.1' });
        assert.equal(Math.floor(Number(await redis.hget(key, 't'))), 6, 'only the allowed request took');
        // Drain the shared bucket with other users; then a new user is refused by it alone.
        for (const u of ['b1', 'b2', 'b3', 'b4', 'b5', 'b6']) assert.equal(await allowed(u), true);
        assert.equal(await allowed('carol'), false, 'shared refuses');
        assert.equal(await allowed('carol', '10.0.0.2'), true, "carol's per-user token was kept");
      } finally {
        limiter.close();
      }
    });
  });
});

/** Whether the outcomes admit the request. */
function closest(outcomes: readonly { allowed: boolean }[]): boolean {
  return outcomes.every((o) => o.allowed);
}
