/**
 * Verified tokens by hash, so a repeated token costs one SHA-256 and a lookup
 * instead of a signature check. Entries live until the token's `exp` (never
 * past it, and at most `maxTtlMs`); tokens without `exp` are not cached. Only
 * successes are stored: failures are cheap to recompute and must not let an
 * attacker fill the cache. The raw token is never kept as a key.
 */
import { hash } from 'node:crypto';
import { LRUCache } from 'lru-cache';

export interface TokenCacheOptions {
  /** Most entries kept (least recently used evicted). Default 10000. */
  max?: number;
  /** Longest an entry lives, whatever its `exp`. Default 600000 ms (10 min, the JWKS refresh period). */
  maxTtlMs?: number;
  /** Clock in ms. Default `Date.now`. */
  now?: () => number;
}

interface Entry {
  claims: Readonly<Record<string, unknown>>;
  /** Absolute ms after which the entry is dead. */
  expiresAt: number;
}

/** A bounded cache of verified claims keyed by SHA-256(provider, token). */
export class TokenCache {
  readonly #now: () => number;
  readonly #maxTtlMs: number;
  readonly #lru: LRUCache<string, Entry>;

  constructor(options: TokenCacheOptions = {}) {
    const now = options.now ?? Date.now;
    this.#now = now;
    this.#maxTtlMs = options.maxTtlMs ?? 600_000;
    // The injected clock drives lru-cache's TTL too; ttlResolution 0 keeps it from arming a timer.
    this.#lru = new LRUCache<string, Entry>({ max: options.max ?? 10_000, perf: { now }, ttlResolution: 0 });
  }

  /** The cached claims, or undefined when absent or expired by the injected clock. */
  get(provider: string, token: string): Readonly<Record<string, unknown>> | undefined {
    const key = cacheKey(provider, token);
    const entry = this.#lru.get(key);
    if (entry === undefined) return undefined;
    if (this.#now() >= entry.expiresAt) {
      this.#lru.delete(key);
      return undefined;
    }
    return entry.claims;
  }

  /**
   * Stores claims of a token that just verified; no-op without a numeric `exp` or
   * when already expired. The claims are deep-frozen: every later request shares them.
   */
  set(provider: string, token: string, claims: Readonly<Record<string, unknown>>): void {
    const exp = claims.exp;
    if (typeof exp !== 'number' || !Number.isFinite(exp)) return;
    const now = this.#now();
    const expiresAt = Math.min(exp * 1000, now + this.#maxTtlMs);
    const ttl = Math.floor(expiresAt - now);
    if (ttl <= 0) return;
    this.#lru.set(cacheKey(provider, token), { claims: deepFreeze(claims), expiresAt }, { ttl });
  }

  get size(): number {
    return this.#lru.size;
  }

  clear(): void {
    this.#lru.clear();
  }
}

function cacheKey(provider: string, token: string): string {
  // NUL cannot occur in a provider name or a header value, so the pair is unambiguous.
  // One-shot hash: this runs on every request that carries a token.
  return hash('sha256', `${provider}\0${token}`, 'base64url');
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
