/**
 * The operator's X.509 material: a self-signed CA (ECDSA P-256, SHA-256; its
 * URI SAN is the SPIFFE ID of the trust domain, `spiffe://<trust domain>`, as
 * SPIFFE signing certificates carry) and the TLS serving certificates it signs, made with @peculiar/x509 on Node's
 * WebCrypto, and read back with node:crypto's X509Certificate. Everything is
 * PEM; private keys are PKCS#8. Times come from the caller (no clock here).
 */
import 'reflect-metadata';
import { createPrivateKey, X509Certificate as NodeCertificate, webcrypto } from 'node:crypto';
import {
  AuthorityKeyIdentifierExtension,
  BasicConstraintsExtension,
  ExtendedKeyUsage,
  ExtendedKeyUsageExtension,
  KeyUsageFlags,
  KeyUsagesExtension,
  PemConverter,
  SubjectAlternativeNameExtension,
  SubjectKeyIdentifierExtension,
  X509Certificate,
  X509CertificateGenerator,
} from '@peculiar/x509';

const crypto = webcrypto;
const KEY_ALG = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGNING_ALG = { name: 'ECDSA', hash: 'SHA-256' } as const;
/** Backdating of notBefore, for clocks that run behind. */
const SKEW_MS = 60_000;
const DAY_MS = 86_400_000;

/** CA lifetime: 10 years. */
export const CA_LIFETIME_MS = 3650 * DAY_MS;
/** Serving certificate lifetime: 1 year. */
export const SERVING_LIFETIME_MS = 365 * DAY_MS;

/** A PEM certificate (chain) and its PKCS#8 PEM private key. */
export interface PemPair {
  cert: string;
  key: string;
}

/** What the operator needs to know about a certificate. */
export interface CertificateInfo {
  notBefore: number;
  notAfter: number;
  isCa: boolean;
  dnsNames: string[];
  /** URI SANs (a SPIFFE ID for a Tollgate CA). */
  uris: string[];
}

/** The SPIFFE ID of a trust domain: `spiffe://cluster.local`. */
export function trustDomainId(trustDomain: string): string {
  return `spiffe://${trustDomain}`;
}

async function keyPair(): Promise<webcrypto.CryptoKeyPair> {
  return (await crypto.subtle.generateKey(KEY_ALG, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
}

async function keyPem(key: webcrypto.CryptoKey): Promise<string> {
  return PemConverter.encode(await crypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY');
}

/**
 * A new self-signed CA valid from `now` (less a minute) for `lifetimeMs`; with
 * `trustDomain`, its URI SAN is `spiffe://<trustDomain>`.
 */
export async function createCa(options: {
  commonName: string;
  now: number;
  lifetimeMs?: number | undefined;
  trustDomain?: string | undefined;
}): Promise<PemPair> {
  const keys = await keyPair();
  const certificate = await X509CertificateGenerator.createSelfSigned(
    {
      name: [{ CN: [options.commonName] }],
      keys,
      signingAlgorithm: SIGNING_ALG,
      notBefore: new Date(options.now - SKEW_MS),
      notAfter: new Date(options.now + (options.lifetimeMs ?? CA_LIFETIME_MS)),
      extensions: [
        new BasicConstraintsExtension(true, undefined, true),
        new KeyUsagesExtension(KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign, true),
        await SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
        ...(options.trustDomain === undefined
          ? []
          : [
              new SubjectAlternativeNameExtension(
                [{ type: 'url' as const, value: trustDomainId(options.trustDomain) }],
                false,
              ),
            ]),
      ],
    },
    crypto,
  );
  return { cert: certificate.toString('pem'), key: await keyPem(keys.privateKey) };
}

/** A TLS server certificate for `dnsNames`, signed by `ca`, for a fresh key. */
export async function issueServingCertificate(
  ca: PemPair,
  options: { dnsNames: readonly string[]; now: number; lifetimeMs?: number | undefined },
): Promise<PemPair> {
  const caCertificate = new X509Certificate(ca.cert);
  const signingKey = await crypto.subtle.importKey(
    'pkcs8',
    PemConverter.decode(ca.key)[0] ?? new ArrayBuffer(0),
    KEY_ALG,
    false,
    ['sign'],
  );
  const keys = await keyPair();
  const certificate = await X509CertificateGenerator.create(
    {
      subject: [{ CN: [options.dnsNames[0] ?? 'tollgate-operator'] }],
      issuer: caCertificate.subjectName,
      publicKey: keys.publicKey,
      signingKey,
      signingAlgorithm: SIGNING_ALG,
      notBefore: new Date(options.now - SKEW_MS),
      notAfter: new Date(options.now + (options.lifetimeMs ?? SERVING_LIFETIME_MS)),
      extensions: [
        new BasicConstraintsExtension(false, undefined, true),
        new KeyUsagesExtension(KeyUsageFlags.digitalSignature, true),
        new ExtendedKeyUsageExtension([ExtendedKeyUsage.serverAuth], false),
        await SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
        await AuthorityKeyIdentifierExtension.create(caCertificate, false, crypto),
        new SubjectAlternativeNameExtension(
          options.dnsNames.map((value) => ({ type: 'dns' as const, value })),
          false,
        ),
      ],
    },
    crypto,
  );
  return { cert: certificate.toString('pem'), key: await keyPem(keys.privateKey) };
}

/** The validity, CA flag and DNS and URI names of the first certificate in `pem`; null when unreadable. */
export function inspectCertificate(pem: string): CertificateInfo | null {
  try {
    const c = new NodeCertificate(pem);
    const names = (c.subjectAltName ?? '').split(', ');
    const of = (prefix: string) =>
      names.filter((n) => n.startsWith(prefix)).map((n) => n.slice(prefix.length));
    return {
      notBefore: c.validFromDate.getTime(),
      notAfter: c.validToDate.getTime(),
      isCa: c.ca,
      dnsNames: of('DNS:'),
      uris: of('URI:'),
    };
  } catch {
    return null;
  }
}

/** True when `pair.key` is the private key of `pair.cert`. */
export function keyMatches(pair: PemPair): boolean {
  try {
    return new NodeCertificate(pair.cert).checkPrivateKey(createPrivateKey(pair.key));
  } catch {
    return false;
  }
}

/** True when `certPem` was issued and signed by `caPem`. */
export function signedBy(certPem: string, caPem: string): boolean {
  try {
    const cert = new NodeCertificate(certPem);
    const ca = new NodeCertificate(caPem);
    return cert.checkIssued(ca) && cert.verify(ca.publicKey);
  } catch {
    return false;
  }
}
