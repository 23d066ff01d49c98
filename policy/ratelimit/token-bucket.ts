/**
 * The token bucket of apipolicy.md § Rate limits: `limit` tokens per `period`,
 * capacity `limit + burst`, refilled continuously. Pure: the caller passes the
 * clock, so the agent, the offline tester and the benchmarks share one algorithm.
 */

export interface BucketConfig {
  limit: number;
  periodMs: number;
  burst: number;
}

export interface TakeResult {
  allowed: boolean;
  /** Whole tokens left after this request. */
  remaining: number;
  /** Milliseconds until at least one token is available (0 when one is). */
  resetMs: number;
}

export class TokenBucket {
  readonly #ratePerMs: number;
  readonly #capacity: number;
  #tokens: number;
  #updatedAt: number;

  constructor(config: BucketConfig, now: number) {
    this.#ratePerMs = config.limit / config.periodMs;
    this.#capacity = config.limit + config.burst;
    this.#tokens = this.#capacity;
    this.#updatedAt = now;
  }

  /** Takes one token if available, at time `now` (ms). */
  take(now: number): TakeResult {
    return this.#decide(now, true);
  }

  /** What `take` would answer, without taking anything. */
  peek(now: number): TakeResult {
    return this.#decide(now, false);
  }

  #decide(now: number, consume: boolean): TakeResult {
    this.#refill(now);
    const allowed = this.#tokens >= 1;
    // A peek reports what a take would leave, so both read the same.
    const after = allowed ? this.#tokens - 1 : this.#tokens;
    if (consume) this.#tokens = after;
    const remaining = Math.floor(after);
    const resetMs = after >= 1 ? 0 : Math.ceil((1 - after) / this.#ratePerMs);
    return { allowed, remaining, resetMs };
  }

  /** True when the bucket is full again at `now` (it can be forgotten without changing behaviour). */
  isFull(now: number): boolean {
    this.#refill(now);
    return this.#tokens >= this.#capacity;
  }

  #refill(now: number): void {
    const elapsed = Math.max(0, now - this.#updatedAt);
    this.#tokens = Math.min(this.#capacity, this.#tokens + elapsed * this.#ratePerMs);
    this.#updatedAt = Math.max(now, this.#updatedAt);
  }
}
