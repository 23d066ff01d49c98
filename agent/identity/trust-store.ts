/**
 * The mesh trust bundle in force in operator mode: the roots peers'
 * certificates must chain to. Three sources offer one: the policy stream's
 * TrustBundle (authoritative), the Sign response of a workload certificate,
 * and the copy saved in the state directory (restored at start-up). A bundle
 * is checked before it is taken (non-empty, every PEM block a readable CA
 * certificate, a stream bundle's version its content hash); a bad one is
 * refused and the one in force stays.
 *
 * Precedence: a stream bundle always replaces the one in force; a Sign
 * response's bundle is ignored while a bundle received on the stream that is
 * open now is in force (the operator pushes changes there first, and a Sign
 * call may reach a replica that has not re-read the CA yet); otherwise the
 * most recent one wins. A restored bundle only fills an empty store.
 */
import { X509Certificate } from 'node:crypto';
import { type TrustBundle, trustBundleVersion } from '../../proto/policy-service.ts';

/** The longest trust bundle taken (about 200 roots). */
const MAX_PEM = 256 * 1024;

export type TrustSource = 'stream' | 'sign' | 'state';

/** A checked trust bundle. */
export interface TrustAnchors {
  version: string;
  pem: string;
  anchors: X509Certificate[];
  source: TrustSource;
}

export type TrustOffer = { ok: true; changed: boolean } | { ok: false; error: string };

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** Checks a trust bundle; never throws. `version` (when given) must be the content hash of `pem`. */
export function checkTrustBundle(
  bundle: { pem: string; version?: string },
  source: TrustSource,
): { ok: true; anchors: TrustAnchors } | { ok: false; error: string } {
  const { pem } = bundle;
  if (pem.length > MAX_PEM) return { ok: false, error: `the trust bundle is over ${MAX_PEM} bytes` };
  const version = trustBundleVersion(pem);
  if (bundle.version !== undefined && bundle.version !== version)
    return {
      ok: false,
      error: `version mismatch: the message announces ${JSON.stringify(bundle.version)}, the content is ${version}`,
    };
  const blocks = pem.match(PEM_BLOCK) ?? [];
  if (blocks.length === 0) return { ok: false, error: 'the trust bundle holds no PEM certificate' };
  const anchors: X509Certificate[] = [];
  for (const [i, block] of blocks.entries()) {
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(block);
    } catch {
      return { ok: false, error: `certificate ${i + 1} of the trust bundle is unreadable` };
    }
    if (!cert.ca) return { ok: false, error: `certificate ${i + 1} of the trust bundle is not a CA` };
    anchors.push(cert);
  }
  return { ok: true, anchors: { version, pem, anchors, source } };
}

export class TrustStore {
  #current: TrustAnchors | null = null;
  /** A bundle from the stream open now is in force. */
  #streamHeld = false;
  readonly #listeners = new Set<(anchors: TrustAnchors) => void>();

  /** The bundle in force, null while none is known. */
  get current(): TrustAnchors | null {
    return this.#current;
  }

  /** Calls `listener` whenever the bundle in force changes; returns the unsubscribe function. */
  onChange(listener: (anchors: TrustAnchors) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** A TrustBundle from the policy stream: taken unless malformed. */
  offerStream(bundle: TrustBundle): TrustOffer {
    const checked = checkTrustBundle(bundle, 'stream');
    if (!checked.ok) return checked;
    this.#streamHeld = true;
    return { ok: true, changed: this.#take(checked.anchors) };
  }

  /** The trust bundle of a Sign response: taken unless malformed or a stream bundle holds. */
  offerSign(pem: string): TrustOffer {
    if (this.#streamHeld) return { ok: true, changed: false };
    const checked = checkTrustBundle({ pem }, 'sign');
    if (!checked.ok) return checked;
    return { ok: true, changed: this.#take(checked.anchors) };
  }

  /** The copy saved in the state directory: taken only when nothing is in force. */
  restore(pem: string): TrustOffer {
    if (this.#current !== null) return { ok: true, changed: false };
    const checked = checkTrustBundle({ pem }, 'state');
    if (!checked.ok) return checked;
    return { ok: true, changed: this.#take(checked.anchors) };
  }

  /** The stream ended: its bundle stays in force, but the next Sign response may replace it. */
  streamEnded(): void {
    this.#streamHeld = false;
  }

  #take(anchors: TrustAnchors): boolean {
    const changed = anchors.version !== this.#current?.version;
    this.#current = anchors;
    if (changed) for (const listener of this.#listeners) listener(anchors);
    return changed;
  }
}
