/**
 * ServiceAccount tokens and TokenReview, as kube-apiserver issues and checks
 * projected (bound) tokens (pkg/serviceaccount/jwt.go and claims.go):
 *
 * - Tokens are RS256 JWTs signed with a key made at start (kid: SHA-256 of
 *   the public key's DER, base64url), issuer
 *   `https://kubernetes.default.svc.cluster.local`, claims `aud`, `exp`,
 *   `iat`, `iss`, `jti`, `kubernetes.io` ({namespace, pod, serviceaccount})
 *   `nbf`, `sub` (`system:serviceaccount:NS:SA`).
 * - A review checks, in the real order: issuer (else the token is not one of
 *   ours), key id and signature, audiences (the token's `aud` intersected
 *   with the requested ones, the API server's own when none are given),
 *   times (with go-jose's 60 s leeway), the service account (exists, same
 *   uid) and the bound pod (exists, same uid).
 * - The error is what the request authenticator union reports: the loopback
 *   bearer authenticator's `invalid bearer token` first, then the service
 *   account authenticator's error, as `[a, b]` (just `invalid bearer token`
 *   for a token that is not ours). Successes are not cached here (the real
 *   server caches them for 10 s).
 */
import { createHash, randomUUID } from 'node:crypto';
import { CompactSign, type CryptoKey, compactVerify, exportSPKI, generateKeyPair } from 'jose';
import { isRecord, metaOf, str } from './resources.ts';
import type { Obj } from './status.ts';
import type { Store } from './store.ts';

/** The issuer and the API server's own audience. */
export const ISSUER = 'https://kubernetes.default.svc.cluster.local';

const LEEWAY_S = 60;

/** Options of {@link TokenAuthority.issue} (and `KubeTestServer.issueToken`). */
export interface IssueTokenOptions {
  namespace: string;
  serviceAccount: string;
  /** Binds the token to this pod, which must exist with this uid and run as the service account. */
  pod?: { name: string; uid: string };
  /** Default: the API server's audience. */
  audiences?: string[];
  /**
   * Lifetime from `now`; default 3600. Zero or negative mints an expired
   * token, which reviews still accept within go-jose's 60 s leeway (use -61
   * or less, or a past `now`, for one they refuse).
   */
  expirationSeconds?: number;
  /** Issue time (`iat`, `nbf`); default now. */
  now?: Date;
  /** `foreign` signs with a key the server does not know (for signature failures). Default `server`. */
  signingKey?: 'server' | 'foreign';
}

/** A TokenReview's `status`, field for field as the server writes it. */
export interface TokenReviewStatus {
  authenticated?: true;
  user: Obj;
  audiences?: string[];
  error?: string;
}

interface SigningKey {
  kid: string;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
}

async function signingKey(): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair('RS256');
  const pem = await exportSPKI(publicKey);
  const der = Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
  return { kid: createHash('sha256').update(der).digest('base64url'), privateKey, publicKey };
}

/** Go's `%q` of a `[]string`: `["a" "b"]`. */
function goQuoted(values: string[]): string {
  return `[${values.map((v) => JSON.stringify(v)).join(' ')}]`;
}

function decodeSegment(segment: string | undefined): Obj | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(segment ?? '', 'base64url').toString('utf8'));
    return isRecord(value) ? value : undefined;
  } catch {
    return undefined; // not a JWT: left to the other authenticators, as hasCorrectIssuer does
  }
}

function audiencesOf(claims: Obj): string[] {
  if (typeof claims.aud === 'string') return [claims.aud];
  return Array.isArray(claims.aud) ? claims.aud.filter((a): a is string => typeof a === 'string') : [];
}

function ref(value: unknown): { name: string; uid: string } | undefined {
  if (!isRecord(value)) return undefined;
  return { name: str(value.name) ?? '', uid: str(value.uid) ?? '' };
}

/** The server's token signer and the service account authenticator. */
export class TokenAuthority {
  readonly #key: SigningKey;
  readonly #foreign: SigningKey;
  readonly #store: Store;

  private constructor(store: Store, key: SigningKey, foreign: SigningKey) {
    this.#store = store;
    this.#key = key;
    this.#foreign = foreign;
  }

  /** Makes the server's signing key (and a foreign one for tests). */
  static async create(store: Store): Promise<TokenAuthority> {
    return new TokenAuthority(store, await signingKey(), await signingKey());
  }

  /** Mints a token; throws when the service account (or the bound pod) does not exist. */
  async issue(options: IssueTokenOptions): Promise<string> {
    const { namespace, serviceAccount } = options;
    const sa = this.#store.peek(this.#store.type('', 'serviceaccounts'), namespace, serviceAccount);
    if (sa === undefined) throw new Error(`serviceaccounts "${serviceAccount}" not found`);
    const claim: Obj = { namespace };
    if (options.pod !== undefined) claim.pod = this.#boundPod(namespace, serviceAccount, options.pod);
    claim.serviceaccount = { name: serviceAccount, uid: String(metaOf(sa).uid) };
    const iat = Math.floor((options.now ?? new Date()).getTime() / 1000);
    const payload = {
      aud: options.audiences ?? [ISSUER],
      exp: iat + (options.expirationSeconds ?? 3600),
      iat,
      iss: ISSUER,
      jti: randomUUID(),
      'kubernetes.io': claim,
      nbf: iat,
      sub: `system:serviceaccount:${namespace}:${serviceAccount}`,
    };
    const key = options.signingKey === 'foreign' ? this.#foreign : this.#key;
    return new CompactSign(Buffer.from(JSON.stringify(payload)))
      .setProtectedHeader({ alg: 'RS256', kid: key.kid })
      .sign(key.privateKey);
  }

  /** Reviews `token` for `audiences` (the API server's when empty), as TokenReview does. */
  async review(token: string, audiences: string[], now: Date = new Date()): Promise<TokenReviewStatus> {
    const outcome = await this.#authenticate(token, audiences.length > 0 ? audiences : [ISSUER], now);
    if ('user' in outcome) return { authenticated: true, user: outcome.user, audiences: outcome.audiences };
    const errors = [
      ...new Set(['invalid bearer token', ...(outcome.error === undefined ? [] : [outcome.error])]),
    ];
    return { user: {}, error: errors.length === 1 ? (errors[0] ?? '') : `[${errors.join(', ')}]` };
  }

  #boundPod(namespace: string, serviceAccount: string, pod: { name: string; uid: string }): Obj {
    const stored = this.#store.peek(this.#store.type('', 'pods'), namespace, pod.name);
    if (stored === undefined) throw new Error(`pods "${pod.name}" not found`);
    const spec = isRecord(stored.spec) ? stored.spec : {};
    if (spec.serviceAccountName !== serviceAccount) {
      throw new Error(
        `cannot bind token for serviceaccount "${serviceAccount}" to pod running with different serviceaccount name.`,
      );
    }
    if (metaOf(stored).uid !== pod.uid) {
      throw new Error(
        `the UID in the bound object reference (${pod.uid}) does not match the UID in record. The object might have been deleted and then recreated`,
      );
    }
    return { name: pod.name, uid: pod.uid };
  }

  async #authenticate(
    token: string,
    requested: string[],
    now: Date,
  ): Promise<{ user: Obj; audiences: string[] } | { error?: string }> {
    const parts = token.split('.');
    const claims = token.trim().startsWith('{') || parts.length !== 3 ? undefined : decodeSegment(parts[1]);
    if (claims?.iss !== ISSUER) return {};
    const header = decodeSegment(parts[0]) ?? {};
    const kid = str(header.kid) ?? '';
    if (kid !== '' && kid !== this.#key.kid) return { error: 'invalid signature, no keys found' };
    try {
      await compactVerify(token, this.#key.publicKey, { algorithms: ['RS256'] });
    } catch {
      return { error: 'go-jose/go-jose: error in cryptographic primitive' };
    }
    let tokenAudiences = audiencesOf(claims);
    if (tokenAudiences.length === 0) tokenAudiences = [ISSUER];
    const audiences = tokenAudiences.filter((a) => requested.includes(a));
    if (audiences.length === 0) {
      return {
        error: `token audiences ${goQuoted(tokenAudiences)} is invalid for the target audiences ${goQuoted(requested)}`,
      };
    }
    const error = this.#validate(claims, now);
    if (error !== undefined) return { error };
    return { user: this.#userInfo(claims), audiences };
  }

  /** claims.go's validator: times, then the service account and the bound pod. */
  #validate(claims: Obj, now: Date): string | undefined {
    const t = now.getTime() / 1000;
    if (typeof claims.nbf === 'number' && t + LEEWAY_S < claims.nbf)
      return 'service account token is not valid yet';
    if (typeof claims.exp === 'number' && t - LEEWAY_S > claims.exp)
      return 'service account token has expired';
    if (typeof claims.iat === 'number' && t + LEEWAY_S < claims.iat) {
      return 'service account token claims could not be validated due to unexpected validation error';
    }
    const k8s = isRecord(claims['kubernetes.io']) ? claims['kubernetes.io'] : {};
    const namespace = str(k8s.namespace) ?? '';
    const saRef = ref(k8s.serviceaccount) ?? { name: '', uid: '' };
    const sa = this.#store.peek(this.#store.type('', 'serviceaccounts'), namespace, saRef.name);
    if (sa === undefined) return `serviceaccounts "${saRef.name}" not found`;
    if (deletedBefore(sa, t - LEEWAY_S)) return `service account ${namespace}/${saRef.name} has been deleted`;
    if (metaOf(sa).uid !== saRef.uid) {
      return `service account UID (${String(metaOf(sa).uid)}) does not match claim (${saRef.uid})`;
    }
    const podRef = ref(k8s.pod);
    if (podRef === undefined) return undefined;
    const pod = this.#store.peek(this.#store.type('', 'pods'), namespace, podRef.name);
    if (pod === undefined) return 'service account token has been invalidated';
    if (metaOf(pod).uid !== podRef.uid) {
      return `pod UID (${String(metaOf(pod).uid)}) does not match service account pod ref claim (${podRef.uid})`;
    }
    if (deletedBefore(pod, t - LEEWAY_S)) return 'service account token has been invalidated';
    return undefined;
  }

  #userInfo(claims: Obj): Obj {
    const k8s = isRecord(claims['kubernetes.io']) ? claims['kubernetes.io'] : {};
    const namespace = str(k8s.namespace) ?? '';
    const sa = ref(k8s.serviceaccount) ?? { name: '', uid: '' };
    const extra: Record<string, string[]> = {};
    if (typeof claims.jti === 'string' && claims.jti !== '') {
      extra['authentication.kubernetes.io/credential-id'] = [`JTI=${claims.jti}`];
    }
    const pod = ref(k8s.pod);
    if (pod !== undefined) {
      extra['authentication.kubernetes.io/pod-name'] = [pod.name];
      extra['authentication.kubernetes.io/pod-uid'] = [pod.uid];
    }
    return {
      username: `system:serviceaccount:${namespace}:${sa.name}`,
      uid: sa.uid,
      groups: ['system:serviceaccounts', `system:serviceaccounts:${namespace}`, 'system:authenticated'],
      ...(Object.keys(extra).length > 0 ? { extra } : {}),
    };
  }
}

/** Whether `object` was deleted before `seconds` (epoch): marked, and marked long enough ago. */
function deletedBefore(object: Obj, seconds: number): boolean {
  const at = str(metaOf(object).deletionTimestamp);
  return at !== undefined && Date.parse(at) / 1000 < seconds;
}
