/**
 * `scope: Global` rate limits (apipolicy.md § Rate limits): token buckets shared
 * by every replica of a workload through Redis, in one Lua script that refills,
 * checks and takes all of a request's Global buckets at once (all-or-nothing,
 * on the server's `TIME`, so replicas agree on the clock): one round trip per
 * request, pipelined with other requests' by the client under load.
 *
 * A route mixing Local and Global limits stays all-or-nothing: its Local limits
 * are peeked first (a refusal there costs no round trip), then the script runs
 * for the Global ones, and the Local ones are taken only once Redis said yes.
 * Between the peek and the take another request of this sidecar may take the
 * last Local token: this one is then refused with its Global tokens already
 * spent (a refund would cost another round trip) — the race errs on refusing.
 *
 * Failure (architecture.md § Failure semantics): a call that fails or takes
 * longer than `timeoutMs` is answered from the sidecar's local buckets instead,
 * counted in `tollgate_ratelimit_fallback_total{limit}`; the store is then
 * marked down (one log line, `tollgate_ratelimit_store_up` 0) and requests stop
 * waiting on it at all, while a background probe pings it every `probeMs` and
 * brings it back (one log line) as soon as it answers. While down, each replica
 * admits up to its own capacity: the workload as a whole admits up to
 * `replicas × (limit + burst)`.
 *
 * Keys: `tollgate:rl:{<namespace>/<policy>}:<limit>:<hash>` — the hash tag puts
 * all of a policy's buckets in one Cluster slot (one script may touch several);
 * the hash covers the limit's config and the key (never stored in clear), so an
 * edited limit starts with fresh buckets, as the local limiter does. Each key
 * expires once its bucket would be full again: idle keys vanish.
 */
import { createHash } from 'node:crypto';
import type { LimitEntry, LimitOutcome, RateLimiter } from '../../../policy/ratelimit/rate-limiter.ts';
import type { BucketConfig, TakeResult } from '../../../policy/ratelimit/token-bucket.ts';
import type { Metrics } from '../../telemetry/metrics.ts';

/** What the pipeline needs from a limiter: the local RateLimiter, or a GlobalLimiter. */
export interface RequestLimiter {
  /** Admits the request under every entry or none; `policy` (`namespace/name`) scopes shared buckets. */
  admit(entries: readonly LimitEntry[], policy?: string): LimitOutcome[] | Promise<LimitOutcome[]>;
}

/** The Redis commands the limiter uses (ioredis' `Redis` and `Cluster` have them). */
export interface ScriptClient {
  evalsha(sha: string, numkeys: number, ...args: (string | number)[]): Promise<unknown>;
  eval(script: string, numkeys: number, ...args: (string | number)[]): Promise<unknown>;
  ping(): Promise<unknown>;
  disconnect(): void;
}

/** The logging calls the limiter makes (pino's shape). */
export interface LimiterLogger {
  info(fields: object, msg: string): void;
  warn(fields: object, msg: string): void;
}

/**
 * KEYS: the buckets. ARGV[1]: the time in ms, '' for the server's `TIME` (tests
 * pass one to step time); then per bucket: limit, periodMs, burst. Buckets are
 * hashes {t: tokens, u: updated at (ms)}; a missing one is full. Returns
 * [all allowed 0|1, then per bucket: allowed 0|1, remaining, reset ms] — what
 * TokenBucket.take answers (policy/ratelimit/token-bucket.ts), refused buckets
 * reporting what a take would leave. Nothing is written unless all are allowed.
 */
export const TOKEN_BUCKET_SCRIPT = `
local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
else
  now = tonumber(ARGV[1])
end
local n = #KEYS
local tokens, updated, rate, capacity = {}, {}, {}, {}
local all = true
for i = 1, n do
  local base = 1 + (i - 1) * 3
  local limit = tonumber(ARGV[base + 1])
  capacity[i] = limit + tonumber(ARGV[base + 3])
  rate[i] = limit / tonumber(ARGV[base + 2])
  local state = redis.call('HMGET', KEYS[i], 't', 'u')
  local t = tonumber(state[1])
  local u = tonumber(state[2])
  if t == nil or u == nil then
    t = capacity[i]
    u = now
  end
  local elapsed = math.max(0, now - u)
  tokens[i] = math.min(capacity[i], t + elapsed * rate[i])
  updated[i] = math.max(now, u)
  if tokens[i] < 1 then all = false end
end
local out = { all and 1 or 0 }
for i = 1, n do
  local ok = tokens[i] >= 1
  local after = tokens[i]
  if ok then after = after - 1 end
  if all then
    redis.call('HSET', KEYS[i], 't', string.format('%.17g', after), 'u', string.format('%.17g', updated[i]))
    redis.call('PEXPIRE', KEYS[i], math.ceil((capacity[i] - after) / rate[i]) + 1)
  end
  local reset = 0
  if after < 1 then reset = math.ceil((1 - after) / rate[i]) end
  out[#out + 1] = ok and 1 or 0
  out[#out + 1] = math.floor(after)
  out[#out + 1] = reset
end
return out
`;

const SCRIPT_SHA = createHash('sha1').update(TOKEN_BUCKET_SCRIPT).digest('hex');

/** The Redis key of a bucket (see the module comment). */
export function bucketKey(policy: string, { limit, key }: LimitEntry): string {
  const id = `${limit.limit}/${limit.periodMs}/${limit.burst}\u0000${key === null ? 'm' : `k${key}`}`;
  const hash = createHash('sha256').update(id).digest('base64url');
  return `tollgate:rl:{${policy}}:${limit.name}:${hash}`;
}

export interface BucketsResult {
  allowed: boolean;
  outcomes: TakeResult[];
}

/**
 * Runs the script over `keys` (EVALSHA, falling back to EVAL when the server
 * does not know the script yet, e.g. after a restart). `nowMs` replaces the
 * server's clock: for tests only.
 */
export async function takeBuckets(
  client: ScriptClient,
  keys: readonly string[],
  configs: readonly BucketConfig[],
  nowMs?: number,
): Promise<BucketsResult> {
  const args: (string | number)[] = [...keys, nowMs === undefined ? '' : String(nowMs)];
  for (const c of configs) args.push(c.limit, c.periodMs, c.burst);
  let reply: unknown;
  try {
    reply = await client.evalsha(SCRIPT_SHA, keys.length, ...args);
  } catch (e) {
    if (!String((e as Error).message).startsWith('NOSCRIPT')) throw e;
    reply = await client.eval(TOKEN_BUCKET_SCRIPT, keys.length, ...args);
  }
  if (
    !Array.isArray(reply) ||
    reply.length !== 1 + 3 * keys.length ||
    !reply.every((v) => typeof v === 'number')
  )
    throw new Error('unexpected reply from the rate limit script');
  const n = reply as number[];
  const outcomes: TakeResult[] = keys.map((_, i) => ({
    allowed: n[1 + 3 * i] === 1,
    remaining: n[2 + 3 * i] ?? 0,
    resetMs: n[3 + 3 * i] ?? 0,
  }));
  return { allowed: n[0] === 1, outcomes };
}

export interface GlobalLimiterOptions {
  client: ScriptClient;
  /** The sidecar's own buckets: Local limits always, Global ones while the store is down. */
  local: RateLimiter;
  logger: LimiterLogger;
  metrics: Metrics;
  /** Longest wait for Redis before a request falls back (default 50 ms). */
  timeoutMs?: number;
  /** How often a down store is pinged (default 500 ms). */
  probeMs?: number;
}

export class GlobalLimiter implements RequestLimiter {
  readonly #client: ScriptClient;
  readonly #local: RateLimiter;
  readonly #logger: LimiterLogger;
  readonly #metrics: Metrics;
  readonly #timeoutMs: number;
  readonly #probeMs: number;
  readonly #fallbacks = new Map<string, { value: number }>();
  #up = true;
  #probe: ReturnType<typeof setInterval> | undefined;
  #probing = false;

  constructor(options: GlobalLimiterOptions) {
    this.#client = options.client;
    this.#local = options.local;
    this.#logger = options.logger;
    this.#metrics = options.metrics;
    this.#timeoutMs = options.timeoutMs ?? 50;
    this.#probeMs = options.probeMs ?? 500;
    this.#metrics.set('tollgate_ratelimit_store_up', {}, 1, 'Whether the global rate limit store answers');
  }

  /** True while Global limits are shared through the store. */
  get up(): boolean {
    return this.#up;
  }

  admit(entries: readonly LimitEntry[], policy = ''): LimitOutcome[] | Promise<LimitOutcome[]> {
    const global = entries.filter((e) => e.limit.scope === 'Global');
    if (global.length === 0) return this.#local.admit(entries);
    if (!this.#up) return this.#fallback(entries, global);
    return this.#admitShared(entries, global, policy);
  }

  /** Pings the store once: marks it up or down accordingly (e.g. at start). */
  async check(): Promise<boolean> {
    try {
      await withTimeout(this.#client.ping(), this.#timeoutMs);
      this.#markUp();
    } catch (e) {
      this.#markDown(e);
    }
    return this.#up;
  }

  /** Stops probing and closes the connection. */
  close(): void {
    this.#stopProbe();
    this.#client.disconnect();
  }

  async #admitShared(
    entries: readonly LimitEntry[],
    global: readonly LimitEntry[],
    policy: string,
  ): Promise<LimitOutcome[]> {
    const local = entries.filter((e) => e.limit.scope !== 'Global');
    if (local.length > 0) {
      const peeked = this.#local.peek(local);
      if (peeked.some((o) => !o.allowed)) return peeked;
    }
    let shared: BucketsResult;
    try {
      shared = await withTimeout(
        takeBuckets(
          this.#client,
          global.map((e) => bucketKey(policy, e)),
          global.map((e) => e.limit),
        ),
        this.#timeoutMs,
      );
    } catch (e) {
      this.#markDown(e);
      return this.#fallback(entries, global);
    }
    const sharedOutcomes = shared.outcomes.map((o, i) => ({ ...o, limit: (global[i] as LimitEntry).limit }));
    // Refused by Redis: the Local buckets keep their tokens. Allowed: take them now.
    const localOutcomes = shared.allowed ? this.#local.admit(local) : this.#local.peek(local);
    return [...localOutcomes, ...sharedOutcomes];
  }

  #fallback(entries: readonly LimitEntry[], global: readonly LimitEntry[]): LimitOutcome[] {
    for (const { limit } of global) {
      let series = this.#fallbacks.get(limit.name);
      if (!series) {
        series = this.#metrics.counter(
          'tollgate_ratelimit_fallback_total',
          { limit: limit.name },
          'Requests whose Global limits were decided on local buckets (store unreachable)',
        );
        this.#fallbacks.set(limit.name, series);
      }
      series.value++;
    }
    return this.#local.admit(entries);
  }

  #markDown(e: unknown): void {
    if (!this.#up) return;
    this.#up = false;
    this.#metrics.set('tollgate_ratelimit_store_up', {}, 0);
    this.#logger.warn(
      { err: (e as Error).message ?? String(e) },
      'global rate limit store unreachable, using local buckets',
    );
    this.#probe = setInterval(() => void this.#tryProbe(), this.#probeMs);
    this.#probe.unref();
  }

  #markUp(): void {
    if (this.#up) return;
    this.#up = true;
    this.#stopProbe();
    this.#metrics.set('tollgate_ratelimit_store_up', {}, 1);
    this.#logger.info({}, 'global rate limit store back');
  }

  async #tryProbe(): Promise<void> {
    if (this.#probing) return;
    this.#probing = true;
    try {
      await withTimeout(this.#client.ping(), Math.max(this.#timeoutMs, this.#probeMs));
      this.#markUp();
    } catch {
      // Still down: the next tick tries again.
    } finally {
      this.#probing = false;
    }
  }

  #stopProbe(): void {
    if (this.#probe) clearInterval(this.#probe);
    this.#probe = undefined;
  }
}

/** `p`, or a rejection once `ms` have passed (the call itself is not cancelled). */
function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });
}
