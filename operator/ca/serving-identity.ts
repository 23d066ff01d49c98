/**
 * The serving certificate the operator presents on gRPC and on the webhook
 * port, as one reloadable source: the certificate manager updates it when the
 * Secret changes (renewal here or by another replica, or cert-manager), the
 * webhook server listens and swaps its TLS context, and grpc-js reads it as a
 * certificate provider (its server calls `setSecureContext` on each update),
 * so neither server restarts and open connections are kept.
 */
import type { experimental } from '@grpc/grpc-js';
import type { PemPair } from './certificates.ts';

type IdentityListener = experimental.IdentityCertificateUpdateListener;

export class ServingIdentity implements experimental.CertificateProvider {
  #pair: PemPair;
  readonly #listeners = new Set<(pair: PemPair) => void>();
  readonly #grpcListeners = new Set<IdentityListener>();

  constructor(pair: PemPair) {
    this.#pair = { ...pair };
  }

  /** The certificate (chain) and key in force. */
  get current(): PemPair {
    return { ...this.#pair };
  }

  /** Replaces the pair; listeners hear of it only when it changed. Returns whether it did. */
  update(pair: PemPair): boolean {
    if (pair.cert === this.#pair.cert && pair.key === this.#pair.key) return false;
    this.#pair = { ...pair };
    for (const listener of this.#listeners) listener(this.current);
    for (const listener of this.#grpcListeners) listener(this.#grpcUpdate());
    return true;
  }

  /** Calls `listener` with every new pair; returns the unsubscribe function. */
  onChange(listener: (pair: PemPair) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  addIdentityCertificateListener(listener: IdentityListener): void {
    this.#grpcListeners.add(listener);
    // grpc-js registers its server's watcher only after this returns, so answer on the next tick.
    queueMicrotask(() => {
      if (this.#grpcListeners.has(listener)) listener(this.#grpcUpdate());
    });
  }

  removeIdentityCertificateListener(listener: IdentityListener): void {
    this.#grpcListeners.delete(listener);
  }

  // Servers do not ask for client certificates: no CA to provide.
  addCaCertificateListener(): void {}
  removeCaCertificateListener(): void {}

  #grpcUpdate(): experimental.IdentityCertificateUpdate {
    return { certificate: Buffer.from(this.#pair.cert), privateKey: Buffer.from(this.#pair.key) };
  }
}
