/**
 * Local (per-sidecar) rate limiting: token buckets (policy/ratelimit) kept in a
 * bounded LRU, and the response headers of apipolicy.md § Rate limits. A bucket
 * evicted under a flood of distinct keys starts full again: memory stays
 * bounded at the price of leniency towards the coldest keys.
 */
import { LRUCache } from 'lru-cache';
import type { CompiledRateLimit } from '../../../policy/compile/bundle.ts';
import { type TakeResult, TokenBucket } from '../../../policy/ratelimit/token-bucket.ts';

export interface LimitOutcome extends TakeResult {
  limit: CompiledRateLimit;
}

export interface LocalLimiterOptions {
  /** Most buckets kept (default 100,000). */
  maxBuckets?: number;
  /** Clock in ms (default Date.now). */
  now?: () => number;
}

export class LocalLimiter {
  readonly #buckets: LRUCache<string, TokenBucket>;
  readonly #now: () => number;

  constructor(options: LocalLimiterOptions = {}) {
    this.#buckets = new LRUCache({ max: options.maxBuckets ?? 100_000 });
    this.#now = options.now ?? Date.now;
  }

  /** Takes a token from the bucket of `limit` for `key` (null: the shared "missing key" bucket). */
  take(limit: CompiledRateLimit, key: string | null): LimitOutcome {
    // The config is part of the id, so an edited limit starts with fresh buckets.
    const id = `${limit.name}\u0000${limit.limit}/${limit.periodMs}/${limit.burst}\u0000${key === null ? '\u0001' : key}`;
    const now = this.#now();
    let bucket = this.#buckets.get(id);
    if (!bucket) {
      bucket = new TokenBucket(limit, now);
      this.#buckets.set(id, bucket);
    }
    return { ...bucket.take(now), limit };
  }

  get size(): number {
    return this.#buckets.size;
  }
}

/** The outcome that decides the headers: a refusal, else the limit closest to refusing. */
export function closestToRefusing(outcomes: readonly LimitOutcome[]): LimitOutcome | null {
  let best: LimitOutcome | null = null;
  for (const o of outcomes) {
    if (best === null) best = o;
    else if (o.allowed !== best.allowed) best = o.allowed ? best : o;
    else if (o.remaining < best.remaining || (o.remaining === best.remaining && o.resetMs > best.resetMs))
      best = o;
  }
  return best;
}

/**
 * Response headers for a limited route: IETF `RateLimit-*` (limit = the bucket's
 * capacity, reset in seconds until a token is available) and `X-RateLimit-*`
 * (reset as Unix seconds); on refusal
 * `Retry-After` is always sent, the rest only with `exposeHeaders`.
 */
export function rateLimitHeaders(o: LimitOutcome, nowMs: number): Record<string, string> {
  const resetSeconds = Math.ceil(o.resetMs / 1000);
  const headers: Record<string, string> = {};
  if (!o.allowed) headers['retry-after'] = String(Math.max(1, resetSeconds));
  if (!o.limit.exposeHeaders) return headers;
  // The bucket's capacity (limit + burst), as Envoy reports it: Remaining never exceeds Limit.
  const limit = String(o.limit.limit + o.limit.burst);
  const remaining = String(o.remaining);
  headers['ratelimit-limit'] = limit;
  headers['ratelimit-remaining'] = remaining;
  headers['ratelimit-reset'] = String(resetSeconds);
  headers['x-ratelimit-limit'] = limit;
  headers['x-ratelimit-remaining'] = remaining;
  headers['x-ratelimit-reset'] = String(Math.ceil((nowMs + o.resetMs) / 1000));
  return headers;
}
