/**
 * Verifies one JWT against one provider: allowed `alg` (checked before any key
 * lookup), signature, `iss`, `aud`, `exp`/`nbf` with clock skew and
 * `maxLifetime`. Every failure becomes one reason of a closed list; nothing
 * derived from the token (not even its claims) is put in a message.
 */
import {
  type CryptoKey,
  decodeProtectedHeader,
  errors,
  type JWTPayload,
  type JWTVerifyOptions,
  jwtVerify,
} from 'jose';
import type { CompiledJwtProvider } from '../../../policy/compile/bundle.ts';
import { JwksUnavailableError } from './jwks-keys.ts';
import type { JwksSource } from './jwks-source.ts';

/** Why a presented token was refused (closed list; `bad_claim_value` comes from claim headers). */
export type AuthnReason =
  | 'malformed'
  | 'unsupported_alg'
  | 'unknown_kid'
  | 'bad_signature'
  | 'expired'
  | 'not_yet_valid'
  | 'wrong_issuer'
  | 'wrong_audience'
  | 'lifetime_exceeded'
  | 'missing_claim'
  | 'jwks_unavailable'
  | 'bad_claim_value';

export type VerifyResult = { ok: true; claims: Record<string, unknown> } | { ok: false; reason: AuthnReason };

export interface JwtVerifierOptions {
  /** Clock in ms, used as jose's `currentDate`. Default `Date.now`. */
  now?: () => number;
}

/** Keys without `kid` that all match a header are tried in turn, up to this many. */
const MAX_KEY_CANDIDATES = 5;
/** Three base64url segments; the signature may be empty so that `alg: none` reaches the alg check. */
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*$/;

/** Whether an algorithm can ever be accepted: never `none`, never a symmetric HS* one. */
export function isAcceptableAlg(alg: string): boolean {
  return alg !== 'none' && !alg.toUpperCase().startsWith('HS');
}

/** Verifies tokens for one provider; build once per policy bundle. */
export class JwtVerifier {
  readonly #keys: Pick<JwksSource, 'getKey'>;
  readonly #now: () => number;
  readonly #algorithms: ReadonlySet<string>;
  readonly #maxLifetimeMs: number | null;
  readonly #base: JWTVerifyOptions;

  constructor(
    provider: CompiledJwtProvider,
    keys: Pick<JwksSource, 'getKey'>,
    options: JwtVerifierOptions = {},
  ) {
    this.#keys = keys;
    this.#now = options.now ?? Date.now;
    this.#algorithms = new Set(provider.algorithms.filter(isAcceptableAlg));
    this.#maxLifetimeMs = provider.maxLifetimeMs;
    this.#base = {
      algorithms: [...this.#algorithms],
      issuer: provider.issuer,
      clockTolerance: provider.clockSkewMs / 1000,
      requiredClaims: provider.maxLifetimeMs === null ? [] : ['exp', 'iat'],
      ...(provider.audiences === null ? {} : { audience: provider.audiences }),
    };
  }

  /** Verifies a compact JWS. Rejects only on an unexpected (non-token) failure. */
  async verify(token: string): Promise<VerifyResult> {
    const pre = this.#precheck(token);
    if (pre) return { ok: false, reason: pre };
    let claims: JWTPayload;
    try {
      claims = await this.#verifySignatureAndClaims(token, {
        ...this.#base,
        currentDate: new Date(this.#now()),
      });
    } catch (error) {
      const reason = reasonFor(error);
      if (reason === undefined) throw error;
      return { ok: false, reason };
    }
    const lifetime = this.#lifetimeReason(claims);
    return lifetime ? { ok: false, reason: lifetime } : { ok: true, claims: { ...claims } };
  }

  #precheck(token: string): AuthnReason | undefined {
    if (!COMPACT_JWS.test(token)) return 'malformed';
    let alg: unknown;
    try {
      alg = decodeProtectedHeader(token).alg;
    } catch {
      return 'malformed';
    }
    if (typeof alg !== 'string') return 'malformed';
    return this.#algorithms.has(alg) ? undefined : 'unsupported_alg';
  }

  async #verifySignatureAndClaims(token: string, options: JWTVerifyOptions): Promise<JWTPayload> {
    try {
      return (await jwtVerify(token, this.#keys.getKey, options)).payload;
    } catch (error) {
      if (!(error instanceof errors.JWKSMultipleMatchingKeys)) throw error;
      return tryEachKey(token, error, options);
    }
  }

  #lifetimeReason(claims: JWTPayload): AuthnReason | undefined {
    if (this.#maxLifetimeMs === null) return undefined;
    const { exp, iat } = claims;
    if (typeof exp !== 'number' || typeof iat !== 'number') return 'malformed';
    return (exp - iat) * 1000 > this.#maxLifetimeMs ? 'lifetime_exceeded' : undefined;
  }
}

async function tryEachKey(token: string, keys: AsyncIterable<CryptoKey>, options: JWTVerifyOptions) {
  let tried = 0;
  for await (const key of keys) {
    try {
      return (await jwtVerify(token, key, options)).payload;
    } catch (error) {
      if (!(error instanceof errors.JWSSignatureVerificationFailed)) throw error;
    }
    if (++tried >= MAX_KEY_CANDIDATES) break;
  }
  throw new errors.JWSSignatureVerificationFailed();
}

function claimReason(error: errors.JWTClaimValidationFailed): AuthnReason {
  if (error.reason === 'missing') return 'missing_claim';
  switch (error.claim) {
    case 'iss':
      return 'wrong_issuer';
    case 'aud':
      return 'wrong_audience';
    case 'nbf':
      return 'not_yet_valid';
    default:
      return 'malformed';
  }
}

/** The reason for a verification error, or undefined when it is not about the token (a bug: rethrown). */
export function reasonFor(error: unknown): AuthnReason | undefined {
  if (error instanceof JwksUnavailableError) return 'jwks_unavailable';
  if (!(error instanceof errors.JOSEError)) return undefined;
  if (error instanceof errors.JWTClaimValidationFailed && !(error instanceof errors.JWTExpired)) {
    return claimReason(error);
  }
  switch (error.code) {
    case 'ERR_JWT_EXPIRED':
      return 'expired';
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
    case 'ERR_JOSE_NOT_SUPPORTED':
      return 'unsupported_alg';
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
    case 'ERR_JWKS_MULTIPLE_MATCHING_KEYS':
      return 'bad_signature';
    case 'ERR_JWKS_NO_MATCHING_KEY':
      return 'unknown_kid';
    default:
      return 'malformed';
  }
}
