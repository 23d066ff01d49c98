/**
 * The JWT authentication stage: built once per policy bundle from the policy's
 * providers, it finds the request's token, picks the provider that must verify
 * it, and verifies it (through the token cache). A presented token that fails is
 * `invalid`, never ignored; no token at all is `none`.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { decodeJwt } from 'jose';
import type { CompiledJwtProvider } from '../../../policy/compile/bundle.ts';
import { JwksSource, type JwksSourceOptions, type JwksStats } from './jwks-source.ts';
import { type AuthnReason, JwtVerifier } from './jwt-verifier.ts';
import { TokenCache } from './token-cache.ts';
import { type FoundToken, findToken, type TokenPlace, tokenPlaces } from './token-locator.ts';

export { type ClaimHeaderResult, claimHeaderValues, identityHeaderNames } from './claim-headers.ts';
export type { AuthnReason } from './jwt-verifier.ts';
export { stripToken } from './token-locator.ts';

export type AuthnResult =
  | { kind: 'none' }
  | {
      kind: 'valid';
      provider: string;
      /** Verified claims; frozen and shared between requests presenting the same token. */
      claims: Record<string, unknown>;
      token: string;
      source: 'header' | 'cookie';
      /** The lowercase header name, or the cookie name. */
      location: string;
    }
  | { kind: 'invalid'; provider: string | null; reason: AuthnReason };

export interface JwtAuthenticatorOptions {
  /** Used for remote JWKS. Default `globalThis.fetch`. */
  fetch?: typeof globalThis.fetch;
  /** Clock in ms for token times, caches and JWKS schedules. Default `Date.now`. */
  now?: () => number;
  /** Verified tokens kept. Default 10000. */
  cacheMax?: number;
  /** Longest a verified token is served from cache. Default 600000 ms. */
  cacheMaxTtlMs?: number;
  /** JWKS fetch timeout. Default 3000 ms. */
  jwksTimeoutMs?: number;
  /** Minimum gap between an unknown-`kid` refetch and the previous fetch. Default 30000 ms. */
  jwksCooldownMs?: number;
  /** Remote keys older than this are refreshed on use. Default 600000 ms. */
  jwksMaxAgeMs?: number;
}

export interface AuthnStats {
  /** Full verifications run (cache misses that reached signature checking or earlier checks). */
  verifications: number;
  cacheHits: number;
  /** By provider name. */
  jwks: Record<string, JwksStats>;
}

const NONE: AuthnResult = Object.freeze({ kind: 'none' });

/** Authenticates requests against a fixed list of providers; build once per bundle. */
export class JwtAuthenticator {
  readonly #places: TokenPlace[];
  readonly #verifiers = new Map<CompiledJwtProvider, JwtVerifier>();
  readonly #sources = new Map<string, JwksSource>();
  readonly #cache: TokenCache;
  #verifications = 0;
  #cacheHits = 0;

  constructor(providers: readonly CompiledJwtProvider[], options: JwtAuthenticatorOptions = {}) {
    const now = options.now ?? Date.now;
    this.#places = tokenPlaces(providers);
    this.#cache = new TokenCache({
      now,
      ...(options.cacheMax === undefined ? {} : { max: options.cacheMax }),
      ...(options.cacheMaxTtlMs === undefined ? {} : { maxTtlMs: options.cacheMaxTtlMs }),
    });
    const sourceOptions: JwksSourceOptions = {
      now,
      ...(options.fetch === undefined ? {} : { fetch: options.fetch }),
      ...(options.jwksTimeoutMs === undefined ? {} : { timeoutMs: options.jwksTimeoutMs }),
      ...(options.jwksCooldownMs === undefined ? {} : { cooldownMs: options.jwksCooldownMs }),
      ...(options.jwksMaxAgeMs === undefined ? {} : { maxAgeMs: options.jwksMaxAgeMs }),
    };
    // Providers sharing a jwksUri share one source: one cache, one fetch schedule.
    const byUri = new Map<string, JwksSource>();
    for (const provider of providers) {
      let source: JwksSource;
      if (provider.jwksUri !== null) {
        source = byUri.get(provider.jwksUri) ?? new JwksSource({ jwksUri: provider.jwksUri }, sourceOptions);
        byUri.set(provider.jwksUri, source);
      } else {
        source = new JwksSource({ jwks: provider.jwks ?? { keys: [] } }, sourceOptions);
      }
      this.#sources.set(provider.name, source);
      this.#verifiers.set(provider, new JwtVerifier(provider, source, { now }));
    }
  }

  /** The request's authentication outcome. Rejects only on an internal failure (the caller fails closed). */
  async authenticate(headers: IncomingHttpHeaders): Promise<AuthnResult> {
    const found = findToken(headers, this.#places);
    if (found === undefined) return NONE;
    if (found.kind === 'malformed') return invalid(soleName(found.providers), 'malformed');
    const chosen = chooseProvider(found);
    if (!('provider' in chosen)) return invalid(null, chosen.reason);
    const { provider } = chosen;
    const verified = await this.#verify(provider, found.token);
    if (!verified.ok) return invalid(provider.name, verified.reason);
    return {
      kind: 'valid',
      provider: provider.name,
      claims: verified.claims,
      token: found.token,
      source: found.place.source,
      location: found.place.name,
    };
  }

  /** Fetches every remote JWKS once (e.g. when the bundle loads) so the first request does not wait. */
  async warmUp(): Promise<void> {
    await Promise.all([...new Set(this.#sources.values())].map((s) => s.refresh()));
  }

  /** Resolves once no JWKS fetch (including a background refresh) is in flight. */
  async idle(): Promise<void> {
    await Promise.all([...new Set(this.#sources.values())].map((s) => s.idle()));
  }

  stats(): AuthnStats {
    const jwks: Record<string, JwksStats> = {};
    for (const [name, source] of this.#sources) jwks[name] = source.stats();
    return { verifications: this.#verifications, cacheHits: this.#cacheHits, jwks };
  }

  async #verify(
    provider: CompiledJwtProvider,
    token: string,
  ): Promise<{ ok: true; claims: Record<string, unknown> } | { ok: false; reason: AuthnReason }> {
    const cached = this.#cache.get(provider.name, token);
    if (cached !== undefined) {
      this.#cacheHits++;
      return { ok: true, claims: cached };
    }
    const verifier = this.#verifiers.get(provider);
    if (verifier === undefined) throw new Error('no verifier for a known provider');
    this.#verifications++;
    const result = await verifier.verify(token);
    if (result.ok) this.#cache.set(provider.name, token, result.claims);
    return result;
  }
}

function invalid(provider: string | null, reason: AuthnReason): AuthnResult {
  return { kind: 'invalid', provider, reason };
}

function soleName(providers: readonly CompiledJwtProvider[]): string | null {
  return providers.length === 1 ? (providers[0]?.name ?? null) : null;
}

/**
 * The provider for a token: the only reader of its place, or among several the
 * first whose issuer equals the token's (unverified) `iss`. The `iss` read here
 * only routes; the chosen provider still verifies it.
 */
function chooseProvider(
  found: Extract<FoundToken, { kind: 'token' }>,
): { provider: CompiledJwtProvider } | { reason: AuthnReason } {
  const [first] = found.providers;
  if (first === undefined) return { reason: 'malformed' };
  if (found.providers.length === 1) return { provider: first };
  let iss: unknown;
  try {
    iss = decodeJwt(found.token).iss;
  } catch {
    return { reason: 'malformed' };
  }
  const provider = found.providers.find((p) => p.issuer === iss);
  return provider ? { provider } : { reason: 'wrong_issuer' };
}
