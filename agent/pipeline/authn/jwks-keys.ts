/**
 * Untrusted JWKS documents → the public signature keys Tollgate will use.
 * Only RSA (2048 bits or more), EC and OKP public keys for signing survive;
 * `oct` (symmetric) keys, keys carrying private members and keys meant for
 * encryption are dropped, so a misconfigured issuer can never enable HS*.
 */
import type { JWK } from 'jose';

/** Why a key set could not be obtained; recorded in `JwksStats.lastError`. */
export type JwksErrorCode =
  | 'ERR_JWKS_TIMEOUT'
  | 'ERR_JWKS_NETWORK'
  | 'ERR_JWKS_HTTP'
  | 'ERR_JWKS_TOO_LARGE'
  | 'ERR_JWKS_NOT_JSON'
  | 'ERR_JWKS_NO_KEYS';

/** No key set is available for a provider (never fetched, or nothing usable in it). */
export class JwksUnavailableError extends Error {
  readonly code: JwksErrorCode;

  constructor(code: JwksErrorCode) {
    super(`JWKS unavailable: ${code}`);
    this.name = 'JwksUnavailableError';
    this.code = code;
  }
}

const ASYMMETRIC = new Set(['RSA', 'EC', 'OKP']);
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k', 'priv'];
const MIN_RSA_MODULUS_BYTES = 256;

/** Parses a JWKS body; throws `JwksUnavailableError` for non-JSON or a document without a `keys` array. */
export function parseJwks(text: string): unknown[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new JwksUnavailableError('ERR_JWKS_NOT_JSON');
  }
  if (doc === null || typeof doc !== 'object' || !('keys' in doc) || !Array.isArray(doc.keys)) {
    throw new JwksUnavailableError('ERR_JWKS_NO_KEYS');
  }
  return doc.keys;
}

function str(o: Record<string, unknown>, name: string): string | undefined {
  const v = o[name];
  return typeof v === 'string' ? v : undefined;
}

function hasKeyMaterial(o: Record<string, unknown>, kty: string): boolean {
  if (kty === 'RSA') {
    const n = str(o, 'n');
    return (
      n !== undefined &&
      str(o, 'e') !== undefined &&
      Buffer.from(n, 'base64url').length >= MIN_RSA_MODULUS_BYTES
    );
  }
  if (kty === 'EC')
    return str(o, 'crv') !== undefined && str(o, 'x') !== undefined && str(o, 'y') !== undefined;
  return str(o, 'crv') !== undefined && str(o, 'x') !== undefined;
}

/** A copy of the key with only public members, or undefined when the key must not be used. */
export function publicSigningKey(raw: unknown): JWK | undefined {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return undefined;
  const o = raw as Record<string, unknown>;
  const kty = str(o, 'kty');
  if (kty === undefined || !ASYMMETRIC.has(kty)) return undefined;
  if (PRIVATE_MEMBERS.some((m) => o[m] !== undefined)) return undefined;
  if (o.use !== undefined && o.use !== 'sig') return undefined;
  if (
    (o.kid !== undefined && typeof o.kid !== 'string') ||
    (o.alg !== undefined && typeof o.alg !== 'string')
  ) {
    return undefined;
  }
  if (!hasKeyMaterial(o, kty)) return undefined;
  const jwk: JWK = { kty };
  for (const name of ['kid', 'alg', 'use', 'crv', 'n', 'e', 'x', 'y'] as const) {
    const v = str(o, name);
    if (v !== undefined) jwk[name] = v;
  }
  if (Array.isArray(o.key_ops) && o.key_ops.every((op) => typeof op === 'string')) {
    jwk.key_ops = [...(o.key_ops as string[])];
  }
  return jwk;
}

/** The usable keys of a JWKS, in document order. */
export function usableKeys(keys: readonly unknown[]): JWK[] {
  const out: JWK[] = [];
  for (const k of keys) {
    const jwk = publicSigningKey(k);
    if (jwk) out.push(jwk);
  }
  return out;
}
