/**
 * The agent's workload identity from the operator (operator mode, `--mtls
 * on`): a P-256 key pair made in memory (never written to disk), its CSR sent
 * with the projected ServiceAccount token (re-read per call) to
 * IdentityService.Sign, the certificate and trust bundle it returns made the
 * identity in force. Renewed with a new key at half of the remaining lifetime
 * (±10% jitter); a failed call is retried with exponential backoff and full
 * jitter, the certificate in force kept until a new one arrives. New
 * connections get the new identity, open ones keep theirs. Until the first
 * certificate arrives `current` is null: the inbound port serves plaintext
 * only and refuses TLS.
 *
 * With a trust store, the roots peers are verified against are the store's
 * (the policy stream's TrustBundle takes precedence over the Sign response's
 * bundle): a change rebuilds the TLS context with the same certificate and
 * key, for new connections only.
 */
import { readFile } from 'node:fs/promises';
import type { SignRequest, SignResponse } from '../../proto/identity-service.ts';
import type { Logger } from '../agent.ts';
import { Backoff, type BackoffOptions } from '../source/backoff.ts';
import { callSign, newKeyAndCsr } from './sign-client.ts';
import { type IdentityProvider, identityFromPem, type LoadedIdentity } from './tls-identity.ts';
import type { TrustStore } from './trust-store.ts';

export interface OperatorIdentityOptions {
  /** The operator's gRPC address, `HOST:PORT`. */
  target: string;
  /** PEM file of the operator's serving CA; re-read on every call. */
  caFile: string;
  serverName?: string | undefined;
  /** The projected ServiceAccount token (audience `tollgate`); re-read on every call. */
  tokenFile: string;
  podName: string;
  podNamespace: string;
  logger: Logger;
  /** Retry backoff (default 500 ms doubling to 30 s, full jitter). */
  backoff?: BackoffOptions;
  /** The Sign call (default a gRPC call to `target` with the CA file). */
  sign?: (request: SignRequest) => Promise<SignResponse>;
  /** Default `Date.now`. */
  now?: () => number;
  /** Uniform in [0, 1): the renewal jitter (default Math.random). */
  random?: () => number;
  onIssued?: (identity: LoadedIdentity) => void;
  /** The mesh roots in force (absent: the Sign response's trust bundle is used as is). */
  trust?: TrustStore;
}

/** Share of the remaining lifetime after which a certificate is renewed, and its jitter. */
const RENEW_AT = 0.5;
const JITTER = 0.1;

export class OperatorIdentity implements IdentityProvider {
  readonly #o: OperatorIdentityOptions;
  readonly #backoff: Backoff;
  #current: LoadedIdentity | null = null;
  /** The certificate chain and key in force, to rebuild the context when the roots change. */
  #material: { cert: string; key: string } | null = null;
  #unsubscribe: () => void = () => {};
  #timer: NodeJS.Timeout | undefined;
  readonly #stop = new AbortController();
  #attempt: Promise<void> | undefined;

  constructor(options: OperatorIdentityOptions) {
    this.#o = options;
    this.#backoff = new Backoff(options.backoff);
  }

  get current(): LoadedIdentity | null {
    return this.#current;
  }

  /** Asks for the first certificate in the background (never throws; failures are retried). */
  start(): void {
    if (this.#attempt || this.#stop.signal.aborted) return;
    this.#unsubscribe = this.#o.trust?.onChange((t) => this.#retrust(t.pem)) ?? (() => {});
    this.#o.logger.info(
      { operator: this.#o.target },
      'no workload certificate yet: TLS refused until one arrives',
    );
    this.#run();
  }

  /** Resolves once the attempt in progress (if any) has ended (tests). */
  async settled(): Promise<void> {
    await this.#attempt;
  }

  /** Stops renewing and cancels a Sign call in flight. */
  close(): void {
    this.#stop.abort();
    clearTimeout(this.#timer);
    this.#unsubscribe();
  }

  /** New roots: the same certificate and key, a new context for new connections. */
  #retrust(pem: string): void {
    if (this.#material === null || this.#stop.signal.aborted) return;
    try {
      this.#current = identityFromPem({ ...this.#material, trustBundle: pem });
    } catch (e) {
      this.#o.logger.error(
        { error: (e as Error).message },
        'trust bundle not applied, keeping the one in force',
      );
    }
  }

  #now(): number {
    return (this.#o.now ?? Date.now)();
  }

  #run(): void {
    this.#attempt = this.#renew().finally(() => {
      this.#attempt = undefined;
    });
  }

  #schedule(ms: number): void {
    if (this.#stop.signal.aborted) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#run(), ms);
    this.#timer.unref();
  }

  async #renew(): Promise<void> {
    const log = this.#o.logger;
    try {
      const issued = await this.#issue();
      if (this.#stop.signal.aborted) return;
      // Built now, not before the await: roots that changed meanwhile are the ones used.
      const identity = identityFromPem({
        ...issued.material,
        trustBundle: this.#o.trust?.current?.pem ?? issued.trustBundle,
      });
      this.#current = identity;
      this.#material = issued.material;
      this.#backoff.reset();
      const remaining = identity.notAfter.getTime() - this.#now();
      const jitter = 1 + JITTER * (2 * (this.#o.random ?? Math.random)() - 1);
      const renewInMs = Math.max(1000, Math.floor(remaining * RENEW_AT * jitter));
      log.info(
        { spiffeId: identity.spiffeId, notAfter: identity.notAfter.toISOString(), renewInMs },
        'workload certificate issued',
      );
      this.#o.onIssued?.(identity);
      this.#schedule(renewInMs);
    } catch (e) {
      if (this.#stop.signal.aborted) return;
      const retryInMs = this.#backoff.next();
      const error = e as { code?: number; details?: string; message?: string };
      log.warn(
        {
          operator: this.#o.target,
          reason: error.details ?? error.message,
          ...(typeof error.code === 'number' ? { code: error.code } : {}),
          failures: this.#backoff.failures,
          retryInMs,
          inForce: this.#current?.notAfter.toISOString() ?? null,
        },
        'workload certificate not issued, retrying',
      );
      this.#schedule(retryInMs);
    }
  }

  /** A new key, its CSR signed, the identity built; throws what failed. */
  async #issue(): Promise<{ material: { cert: string; key: string }; trustBundle: string }> {
    const o = this.#o;
    const text = await readFile(o.tokenFile, 'utf8').catch((e: { code?: string }) => {
      throw new Error(`cannot read the service account token ${o.tokenFile} (${e.code ?? 'EIO'})`);
    });
    const token = text.trim();
    if (token === '') throw new Error(`the service account token ${o.tokenFile} is empty`);
    const { key, csr } = await newKeyAndCsr();
    const request = { podName: o.podName, podNamespace: o.podNamespace, token, csr };
    const response = o.sign ? await o.sign(request) : await this.#call(request);
    if (response.certChain.length === 0) throw new Error('the operator returned no certificate');
    const offer = o.trust?.offerSign(response.trustBundle);
    if (offer && !offer.ok)
      o.logger.warn({ error: offer.error }, 'trust bundle of the Sign response rejected');
    return { material: { cert: response.certChain.join('\n'), key }, trustBundle: response.trustBundle };
  }

  async #call(request: SignRequest): Promise<SignResponse> {
    const ca = await readFile(this.#o.caFile).catch((e: { code?: string }) => {
      throw new Error(`cannot read the operator CA ${this.#o.caFile} (${e.code ?? 'EIO'})`);
    });
    return callSign(
      { target: this.#o.target, ca, serverName: this.#o.serverName },
      request,
      this.#stop.signal,
    );
  }
}
