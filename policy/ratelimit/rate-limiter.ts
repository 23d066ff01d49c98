/**
 * Local rate limiting for a request under several limits at once: token buckets
 * per (limit, key) in a bounded LRU, admitted all-or-nothing — a request refused
 * by one limit takes no token from the others. Pure (clock injected): the agent
 * and the offline tester (`tollgate test`) share it. A bucket evicted under a
 * flood of distinct keys starts full again: memory stays bounded at the price
 * of leniency towards the coldest keys.
 */
import { LRUCache } from 'lru-cache';
import type { CompiledRateLimit } from '../compile/bundle.ts';
import { type TakeResult, TokenBucket } from './token-bucket.ts';

export interface LimitOutcome extends TakeResult {
  limit: CompiledRateLimit;
}

/** One limit and the request's key under it (null: the shared "missing key" bucket). */
export interface LimitEntry {
  limit: CompiledRateLimit;
  key: string | null;
  /** The policy the limit belongs to (`namespace/name`): two policies' limits of one name never share buckets. */
  scope?: string;
}

/** What the decision engine needs from a limiter. */
export interface Admitter {
  admit(entries: readonly LimitEntry[]): LimitOutcome[];
}

export interface RateLimiterOptions {
  /** Most buckets kept (default 100,000). */
  maxBuckets?: number;
  /** Clock in ms (default Date.now). */
  now?: () => number;
}

export class RateLimiter implements Admitter {
  readonly #buckets: LRUCache<string, TokenBucket>;
  readonly #now: () => number;

  constructor(options: RateLimiterOptions = {}) {
    this.#buckets = new LRUCache({ max: options.maxBuckets ?? 100_000 });
    this.#now = options.now ?? Date.now;
  }

  /** Admits the request under every entry, or under none (then the refusing outcomes say why). */
  admit(entries: readonly LimitEntry[]): LimitOutcome[] {
    const now = this.#now();
    const buckets = entries.map((e) => this.#bucket(e, now));
    const peeked = buckets.map((b, i) => ({ ...b.peek(now), limit: (entries[i] as LimitEntry).limit }));
    if (peeked.some((o) => !o.allowed)) return peeked;
    return buckets.map((b, i) => ({ ...b.take(now), limit: (entries[i] as LimitEntry).limit }));
  }

  /**
   * What `admit` would answer, taking nothing: lets a caller that also consults
   * another store (the agent's Redis-backed Global limits) check its local limits
   * first, then `admit` them only once the other store has said yes.
   */
  peek(entries: readonly LimitEntry[]): LimitOutcome[] {
    const now = this.#now();
    return entries.map((e) => ({ ...this.#bucket(e, now).peek(now), limit: e.limit }));
  }

  get size(): number {
    return this.#buckets.size;
  }

  #bucket({ limit, key, scope = '' }: LimitEntry, now: number): TokenBucket {
    // The config is part of the id, so an edited limit starts with fresh buckets;
    // a present key and the missing key can never share an id.
    const config = `${limit.limit}/${limit.periodMs}/${limit.burst}`;
    const id = `${scope}\u0000${limit.name}\u0000${config}\u0000${key === null ? 'm' : `k${key}`}`;
    let bucket = this.#buckets.get(id);
    if (!bucket) {
      bucket = new TokenBucket(limit, now);
      this.#buckets.set(id, bucket);
    }
    return bucket;
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
