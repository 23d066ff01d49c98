/**
 * The agent's TLS identity from files (`--tls-cert`, `--tls-key`,
 * `--trust-bundle`): the form a SPIRE or cert-manager CSI driver mounts. Loaded
 * into a secure context (TLS 1.2 minimum, 1.3 preferred, ECDHE AEAD ciphers
 * only) and reloaded when the files change; a bad or half-written update keeps
 * the context in force (new connections use the new one, open ones are not
 * touched).
 */

import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext, type SecureContext } from 'node:tls';
import { FilePoll } from '../source/file-poll.ts';

export interface TlsFiles {
  cert: string;
  key: string;
  trustBundle: string;
}

/** The TLS 1.2 suites allowed (TLS 1.3 suites are Node's defaults, all AEAD). */
const TLS12_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

export class TlsIdentityError extends Error {
  readonly code = 'ERR_TLS_IDENTITY';
}

export interface LoadedIdentity {
  context: SecureContext;
  /** The trust bundle's certificates: the anchors client chains must reach. */
  anchors: X509Certificate[];
  /** The certificate's SPIFFE ID (URI SAN), or null when it has none. */
  spiffeId: string | null;
  notAfter: Date;
}

/**
 * What the inbound listener presents: the identity in force (read per
 * connection), null while there is none yet (TLS connections are refused).
 * Files (TlsIdentity) and the operator (OperatorIdentity) both provide one.
 */
export interface IdentityProvider {
  readonly current: LoadedIdentity | null;
  close(): void;
}

/** The single `spiffe://` URI SAN of a certificate, null when it has none or several. */
export function spiffeIdOf(subjectAltName: string | undefined): string | null {
  const uris = (subjectAltName ?? '')
    .split(/,\s*/)
    .filter((n) => n.startsWith('URI:'))
    .map((n) => n.slice(4));
  const spiffe = uris.filter((u) => u.startsWith('spiffe://'));
  return spiffe.length === 1 && uris.length === 1 ? (spiffe[0] as string) : null;
}

function pemBlocks(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

/**
 * Verifies a client certificate chain against the trust anchors: every link
 * signed by the next and within its validity, ending at an anchor; the leaf
 * usable for client authentication. Returns the reason it fails, or null.
 */
export function verifyClientChain(
  leaf: X509Certificate,
  intermediates: readonly X509Certificate[],
  anchors: readonly X509Certificate[],
  now: Date = new Date(),
): string | null {
  const current = (c: X509Certificate) => new Date(c.validFrom) <= now && now <= new Date(c.validTo);
  if (!current(leaf)) return 'the client certificate has expired or is not yet valid';
  const usages = leaf.keyUsage;
  if (usages && usages.length > 0 && !usages.includes(CLIENT_AUTH))
    return 'the client certificate is not for client authentication';
  let cert = leaf;
  for (let depth = 0; depth < 8; depth++) {
    const anchor = anchors.find((a) => cert.checkIssued(a) && cert.verify(a.publicKey));
    if (anchor) return current(anchor) ? null : 'the trust anchor has expired';
    const next = intermediates.find(
      (i) => i !== cert && i.ca && cert.checkIssued(i) && cert.verify(i.publicKey),
    );
    if (!next) return 'the client certificate does not chain to the trust bundle';
    if (!current(next)) return 'an intermediate certificate has expired';
    cert = next;
  }
  return 'the client certificate chain is too long';
}

/** Reads and checks the three files; throws TlsIdentityError saying which and why. */
export function loadTlsFiles(files: TlsFiles): LoadedIdentity {
  const read = (what: string, path: string) => {
    try {
      return readFileSync(path, 'utf8');
    } catch (e) {
      throw new TlsIdentityError(`${what} ${path}: cannot read (${(e as { code?: string }).code ?? 'EIO'})`);
    }
  };
  const cert = read('--tls-cert', files.cert);
  const key = read('--tls-key', files.key);
  const ca = read('--trust-bundle', files.trustBundle);
  try {
    return identityFromPem({ cert, key, trustBundle: ca });
  } catch (e) {
    const message = (e as Error).message;
    if (message === 'not a PEM certificate')
      throw new TlsIdentityError(`--tls-cert ${files.cert}: ${message}`);
    if (message === 'no PEM certificate in the trust bundle')
      throw new TlsIdentityError(`--trust-bundle ${files.trustBundle}: no PEM certificate in it`);
    throw new TlsIdentityError(`--tls-cert/--tls-key: ${message}`);
  }
}

/** The identity in PEM (certificate chain, leaf first; key; trust bundle); throws an Error saying what is wrong. */
export function identityFromPem(pem: { cert: string; key: string; trustBundle: string }): LoadedIdentity {
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(pem.cert);
  } catch {
    throw new Error('not a PEM certificate');
  }
  const anchors = pemBlocks(pem.trustBundle).flatMap((block) => {
    try {
      return [new X509Certificate(block)];
    } catch {
      return [];
    }
  });
  if (anchors.length === 0) throw new Error('no PEM certificate in the trust bundle');
  // e.g. "key values mismatch": the key is not the certificate's.
  const context = createSecureContext({
    cert: pem.cert,
    key: pem.key,
    ca: pem.trustBundle,
    minVersion: 'TLSv1.2',
    ciphers: `${TLS12_CIPHERS}:TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256`,
    honorCipherOrder: true,
  });
  return { context, anchors, spiffeId: spiffeIdOf(leaf.subjectAltName), notAfter: new Date(leaf.validTo) };
}

export interface TlsIdentityOptions {
  files: TlsFiles;
  /** Poll interval for changes (default 1 s). */
  intervalMs?: number;
  onReload?: (identity: LoadedIdentity) => void;
  onReject?: (error: Error) => void;
}

/** The identity in force; `watch()` picks up changed files. */
export class TlsIdentity {
  readonly #o: TlsIdentityOptions;
  #current: LoadedIdentity;
  readonly #poll: FilePoll;

  /** Loads the files now; throws TlsIdentityError when they are not usable. */
  constructor(options: TlsIdentityOptions) {
    this.#o = options;
    const { cert, key, trustBundle } = options.files;
    this.#poll = new FilePoll([cert, key, trustBundle], () => this.#reload());
    this.#current = loadTlsFiles(options.files);
  }

  get current(): LoadedIdentity {
    return this.#current;
  }

  /** Reloads when the files changed; keeps the identity in force when the new files are not usable. */
  check(): void {
    this.#poll.check();
  }

  #reload(): void {
    try {
      this.#current = loadTlsFiles(this.#o.files);
      this.#o.onReload?.(this.#current);
    } catch (e) {
      this.#o.onReject?.(e as Error);
    }
  }

  watch(): void {
    this.#poll.watch(this.#o.intervalMs ?? 1000);
  }

  close(): void {
    this.#poll.close();
  }
}
