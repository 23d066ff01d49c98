/**
 * The signing keys of one JWT provider: an inline JWKS, or a remote `jwksUri`
 * fetched on demand. Owns the fetch policy of architecture.md: keys cached,
 * refetched on an unknown `kid` (at most once per cooldown), refreshed lazily
 * when older than `maxAgeMs`, and on failure the last good keys are kept while
 * the next attempt backs off exponentially. No timers: everything happens on use.
 */
import {
  type CryptoKey,
  createLocalJWKSet,
  type FlattenedJWSInput,
  type JWK,
  type JWSHeaderParameters,
  errors as joseErrors,
} from 'jose';
import { jwksFetches } from '../../telemetry/channels.ts';
import { type JwksErrorCode, JwksUnavailableError, parseJwks, usableKeys } from './jwks-keys.ts';

export { type JwksErrorCode, JwksUnavailableError } from './jwks-keys.ts';

type LocalKeySet = ReturnType<typeof createLocalJWKSet>;

/** Where a provider's keys come from. */
export type JwksOrigin = { jwksUri: string } | { jwks: { keys: readonly Record<string, unknown>[] } };

export interface JwksSourceOptions {
  /** Default `globalThis.fetch`. */
  fetch?: typeof globalThis.fetch;
  /** Clock in ms for cooldown, backoff and age. Default `Date.now`. */
  now?: () => number;
  /** Per-fetch timeout. Default 3000 ms. */
  timeoutMs?: number;
  /** Minimum time between an unknown-`kid` refetch and the previous fetch. Default 30000 ms. */
  cooldownMs?: number;
  /** Keys older than this are refreshed on next use (in the background). Default 600000 ms (10 min). */
  maxAgeMs?: number;
  /** First backoff after a failed fetch, doubled per consecutive failure. Default 1000 ms. */
  backoffBaseMs?: number;
  /** Backoff cap. Default 60000 ms. */
  backoffMaxMs?: number;
  /** Largest accepted JWKS body. Default 1 MiB. */
  maxBytes?: number;
}

/** Counters for metrics and the admin endpoint; a snapshot, never mutated after return. */
export interface JwksStats {
  fetches: number;
  failures: number;
  /** Consecutive failures since the last success. */
  consecutiveFailures: number;
  lastSuccessAt: number | null;
  lastError: JwksErrorCode | null;
  /** While backing off: the clock time before which no fetch is attempted. */
  retryAt: number | null;
  keys: number;
}

/** One provider's key set; pass `getKey` to jose's `jwtVerify`. */
export class JwksSource {
  readonly #uri: string | null;
  readonly #fetch: typeof globalThis.fetch;
  readonly #now: () => number;
  readonly #timeoutMs: number;
  readonly #cooldownMs: number;
  readonly #maxAgeMs: number;
  readonly #backoffBaseMs: number;
  readonly #backoffMaxMs: number;
  readonly #maxBytes: number;
  #keySet: LocalKeySet | null = null;
  #keyCount = 0;
  #fetchedAt = 0;
  #lastAttemptAt: number | null = null;
  #retryAt = 0;
  #inflight: Promise<void> | null = null;
  #stats = { fetches: 0, failures: 0, consecutiveFailures: 0, lastSuccessAt: null as number | null };
  #lastError: JwksErrorCode | null = null;

  constructor(origin: JwksOrigin, options: JwksSourceOptions = {}) {
    this.#fetch = options.fetch ?? globalThis.fetch;
    this.#now = options.now ?? Date.now;
    this.#timeoutMs = options.timeoutMs ?? 3000;
    this.#cooldownMs = options.cooldownMs ?? 30_000;
    this.#maxAgeMs = options.maxAgeMs ?? 600_000;
    this.#backoffBaseMs = options.backoffBaseMs ?? 1000;
    this.#backoffMaxMs = options.backoffMaxMs ?? 60_000;
    this.#maxBytes = options.maxBytes ?? 1 << 20;
    if ('jwksUri' in origin) {
      this.#uri = origin.jwksUri;
    } else {
      this.#uri = null;
      this.#install(usableKeys(origin.jwks.keys));
    }
  }

  /**
   * The verification key for a JWS header (jose key-resolver signature). Throws
   * jose's `JWKSNoMatchingKey` for an unknown `kid`, `JWKSMultipleMatchingKeys`
   * when several keys fit a header without `kid`, and `JwksUnavailableError`
   * when no key set was ever obtained.
   */
  readonly getKey = async (header: JWSHeaderParameters, token: FlattenedJWSInput): Promise<CryptoKey> => {
    if (this.#uri !== null) {
      if (this.#keySet === null) await this.#refreshIfAllowed(0);
      else if (this.#now() - this.#fetchedAt >= this.#maxAgeMs) void this.#refreshIfAllowed(0);
    }
    const keySet = this.#keySet;
    if (keySet === null) throw new JwksUnavailableError(this.#lastError ?? 'ERR_JWKS_NO_KEYS');
    try {
      return await lookup(keySet, header, token);
    } catch (error) {
      if (!(error instanceof joseErrors.JWKSNoMatchingKey) || this.#uri === null) throw error;
      // A rotated key: refetch once per cooldown, then look again in whatever set we now hold.
      await this.#refreshIfAllowed(this.#cooldownMs);
      const current = this.#keySet;
      if (current === keySet || current === null) throw error;
      return lookup(current, header, token);
    }
  };

  /**
   * Fetches now unless backing off (no-op for an inline JWKS); concurrent callers
   * share one fetch. Resolves when done, never rejects: see `stats()` for the outcome.
   */
  refresh(): Promise<void> {
    return this.#refreshIfAllowed(0);
  }

  /** Resolves once no fetch is in flight (for an orderly shutdown and for tests). */
  async idle(): Promise<void> {
    await this.#inflight;
  }

  stats(): JwksStats {
    const retryAt = this.#retryAt > this.#now() ? this.#retryAt : null;
    return { ...this.#stats, lastError: this.#lastError, retryAt, keys: this.#keyCount };
  }

  #refreshIfAllowed(sinceLastAttemptMs: number): Promise<void> {
    if (this.#inflight !== null) return this.#inflight;
    const uri = this.#uri;
    if (uri === null) return Promise.resolve();
    const now = this.#now();
    if (now < this.#retryAt) return Promise.resolve();
    if (this.#lastAttemptAt !== null && now - this.#lastAttemptAt < sinceLastAttemptMs)
      return Promise.resolve();
    this.#lastAttemptAt = now;
    this.#inflight = this.#fetchOnce(uri).finally(() => {
      this.#inflight = null;
    });
    return this.#inflight;
  }

  async #fetchOnce(uri: string): Promise<void> {
    this.#stats.fetches++;
    const started = performance.now();
    try {
      const keys = await this.#download(uri);
      this.#install(keys);
      this.#fetchedAt = this.#now();
      this.#stats.lastSuccessAt = this.#fetchedAt;
      this.#stats.consecutiveFailures = 0;
      this.#retryAt = 0;
      this.#lastError = null;
      this.#published(uri, started);
    } catch (error) {
      // Last good keys stay installed; only the schedule of the next attempt changes.
      this.#stats.failures++;
      this.#stats.consecutiveFailures++;
      this.#lastError = error instanceof JwksUnavailableError ? error.code : 'ERR_JWKS_NETWORK';
      const delay = this.#backoffBaseMs * 2 ** Math.min(this.#stats.consecutiveFailures - 1, 30);
      this.#retryAt = this.#now() + Math.min(delay, this.#backoffMaxMs);
      this.#published(uri, started);
    }
  }

  /** Publishes the fetch's outcome on `tollgate:jwks:fetch` (the URL without credentials or query). */
  #published(uri: string, started: number): void {
    if (!jwksFetches.hasSubscribers) return;
    let jwks = '(invalid)';
    try {
      const url = new URL(uri);
      jwks = `${url.origin}${url.pathname}`;
    } catch {
      // reported as (invalid)
    }
    jwksFetches.publish({
      jwks,
      ok: this.#lastError === null,
      error: this.#lastError,
      durationMs: performance.now() - started,
    });
  }

  async #download(uri: string): Promise<JWK[]> {
    try {
      const response = await this.#fetch(uri, {
        headers: { accept: 'application/jwk-set+json, application/json' },
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
      const tooLarge = Number(response.headers.get('content-length') ?? 0) > this.#maxBytes;
      if (!response.ok || tooLarge) {
        // Release the connection instead of leaving an unread body to the GC.
        await response.body?.cancel();
        throw new JwksUnavailableError(response.ok ? 'ERR_JWKS_TOO_LARGE' : 'ERR_JWKS_HTTP');
      }
      const text = await response.text();
      if (text.length > this.#maxBytes) throw new JwksUnavailableError('ERR_JWKS_TOO_LARGE');
      const keys = usableKeys(parseJwks(text));
      if (keys.length === 0) throw new JwksUnavailableError('ERR_JWKS_NO_KEYS');
      return keys;
    } catch (error) {
      if (error instanceof JwksUnavailableError) throw error;
      const timedOut = error instanceof DOMException && error.name === 'TimeoutError';
      throw new JwksUnavailableError(timedOut ? 'ERR_JWKS_TIMEOUT' : 'ERR_JWKS_NETWORK');
    }
  }

  #install(keys: JWK[]): void {
    this.#keyCount = keys.length;
    this.#keySet = keys.length > 0 ? createLocalJWKSet({ keys }) : null;
  }
}

/** A key the issuer published but WebCrypto cannot import (bad curve point, ...) counts as no key. */
async function lookup(
  keySet: LocalKeySet,
  header: JWSHeaderParameters,
  token: FlattenedJWSInput,
): Promise<CryptoKey> {
  try {
    return await keySet(header, token);
  } catch (error) {
    if (error instanceof joseErrors.JOSEError) throw error;
    throw new joseErrors.JWKSNoMatchingKey('the matching key could not be imported', { cause: error });
  }
}
