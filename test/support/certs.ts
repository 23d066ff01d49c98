/**
 * Real X.509 certificates for tests (ECDSA P-256, SHA-256) made with
 * @peculiar/x509 on Node's WebCrypto: a CA, and certificates it signs for TLS
 * servers, clients or both, with DNS, IP and URI (SPIFFE) names. Everything is
 * PEM; private keys are PKCS#8. No global crypto provider is installed.
 */
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import {
  AuthorityKeyIdentifierExtension,
  BasicConstraintsExtension,
  ExtendedKeyUsage,
  ExtendedKeyUsageExtension,
  type Extension,
  type JsonGeneralName,
  KeyUsageFlags,
  KeyUsagesExtension,
  PemConverter,
  SubjectAlternativeNameExtension,
  SubjectKeyIdentifierExtension,
  X509Certificate,
  X509CertificateGenerator,
} from '@peculiar/x509';

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;
const crypto = webcrypto;
const KEY_ALG = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGNING_ALG = { name: 'ECDSA', hash: 'SHA-256' } as const;
const SIGNING_KEY_ALG = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;

/** A PEM certificate and its PKCS#8 PEM private key (node:tls `cert` / `key`). */
export interface PemPair {
  cert: string;
  key: string;
}

/** A certificate authority: its PEM pair (`cert` is what clients trust) and what it signs with. */
export interface TestCa extends PemPair {
  readonly certificate: X509Certificate;
  readonly signingKey: CryptoKey;
}

export interface CaOptions {
  commonName: string;
  /** Default: one minute ago (clock skew). */
  notBefore?: Date;
  /** Default: one year from now. */
  notAfter?: Date;
}

export interface IssueOptions {
  /** Subject CN; default the first DNS name, else the first URI, else `tollgate-test`. */
  commonName?: string;
  dnsNames?: readonly string[];
  ipAddresses?: readonly string[];
  /** URI SANs, e.g. `spiffe://cluster.local/ns/shop/sa/orders`. */
  uris?: readonly string[];
  /** Extended key usage: TLS server, client, or both. */
  usages: 'server' | 'client' | 'both';
  /** Default: one minute ago. */
  notBefore?: Date;
  /** Default: one day from now. */
  notAfter?: Date;
}

async function keyPair(): Promise<CryptoKeyPair> {
  return (await crypto.subtle.generateKey(KEY_ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
}

async function keyPem(key: CryptoKey): Promise<string> {
  return PemConverter.encode(await crypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY');
}

function validity(notBefore: Date | undefined, notAfter: Date | undefined, lifetimeMs: number) {
  const now = Date.now();
  return {
    notBefore: notBefore ?? new Date(now - MINUTE),
    notAfter: notAfter ?? new Date(now + lifetimeMs),
  };
}

/** A self-signed CA (basicConstraints CA:true, keyCertSign). */
export async function createCa(options: CaOptions): Promise<TestCa> {
  const keys = await keyPair();
  const certificate = await X509CertificateGenerator.createSelfSigned(
    {
      name: [{ CN: [options.commonName] }],
      keys,
      signingAlgorithm: SIGNING_ALG,
      ...validity(options.notBefore, options.notAfter, 365 * DAY),
      extensions: [
        new BasicConstraintsExtension(true, undefined, true),
        new KeyUsagesExtension(KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign, true),
        await SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
      ],
    },
    crypto,
  );
  return {
    cert: certificate.toString('pem'),
    key: await keyPem(keys.privateKey),
    certificate,
    signingKey: keys.privateKey,
  };
}

/** A CA from its PEM pair (such as the operator's, read from its Secret), to issue test leaves with. */
export async function caFromPem(pair: PemPair): Promise<TestCa> {
  const certificate = new X509Certificate(pair.cert);
  const signingKey = await crypto.subtle.importKey(
    'pkcs8',
    PemConverter.decode(pair.key)[0] ?? new ArrayBuffer(0),
    SIGNING_KEY_ALG,
    false,
    ['sign'],
  );
  return { ...pair, certificate, signingKey };
}

const EKU: Record<IssueOptions['usages'], ExtendedKeyUsage[]> = {
  server: [ExtendedKeyUsage.serverAuth],
  client: [ExtendedKeyUsage.clientAuth],
  both: [ExtendedKeyUsage.serverAuth, ExtendedKeyUsage.clientAuth],
};

/** A leaf certificate signed by `ca` for a fresh key. */
export async function issueCertificate(ca: TestCa, options: IssueOptions): Promise<PemPair> {
  const keys = await keyPair();
  const names: JsonGeneralName[] = [
    ...(options.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(options.ipAddresses ?? []).map((value) => ({ type: 'ip' as const, value })),
    ...(options.uris ?? []).map((value) => ({ type: 'url' as const, value })),
  ];
  const commonName = options.commonName ?? options.dnsNames?.[0] ?? options.uris?.[0] ?? 'tollgate-test';
  const extensions: Extension[] = [
    new BasicConstraintsExtension(false, undefined, true),
    new KeyUsagesExtension(KeyUsageFlags.digitalSignature, true),
    new ExtendedKeyUsageExtension(EKU[options.usages], false),
    await SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
    await AuthorityKeyIdentifierExtension.create(ca.certificate, false, crypto),
  ];
  if (names.length > 0) extensions.push(new SubjectAlternativeNameExtension(names, false));
  const certificate = await X509CertificateGenerator.create(
    {
      subject: [{ CN: [commonName] }],
      issuer: ca.certificate.subjectName,
      publicKey: keys.publicKey,
      signingKey: ca.signingKey,
      signingAlgorithm: SIGNING_ALG,
      ...validity(options.notBefore, options.notAfter, DAY),
      extensions,
    },
    crypto,
  );
  return { cert: certificate.toString('pem'), key: await keyPem(keys.privateKey) };
}
