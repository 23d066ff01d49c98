/**
 * Workload certificates: signs a sidecar's PKCS#10 request with the mesh CA.
 * The request's signature must verify and its key be EC P-256 or RSA of at
 * least 2048 bits; every name it asks for is ignored. The leaf's only name is
 * the URI SAN `spiffe://<trust domain>/ns/<namespace>/sa/<service account>`
 * of the pod the caller authenticated (never taken from the request):
 * serverAuth and clientAuth, digitalSignature, not a CA, backdated a minute
 * for clock skew. Times come from the injected clock.
 */
import 'reflect-metadata';
import { createPublicKey, randomBytes, webcrypto } from 'node:crypto';
import {
  AuthorityKeyIdentifierExtension,
  BasicConstraintsExtension,
  ExtendedKeyUsage,
  ExtendedKeyUsageExtension,
  KeyUsageFlags,
  KeyUsagesExtension,
  PemConverter,
  Pkcs10CertificateRequest,
  PublicKey,
  SubjectAlternativeNameExtension,
  SubjectKeyIdentifierExtension,
  X509Certificate,
  X509CertificateGenerator,
} from '@peculiar/x509';
import type { PemPair } from './certificates.ts';

const crypto = webcrypto;
/** Backdating of notBefore, for clocks that run behind. */
const SKEW_MS = 60_000;
/** Default lifetime of a workload certificate: 24 hours. */
export const WORKLOAD_TTL_MS = 86_400_000;
const MIN_RSA_BITS = 2048;

export type WorkloadSignErrorCode = 'ERR_SIGN_CSR_INVALID' | 'ERR_SIGN_NO_CA';

export class WorkloadSignError extends Error {
  readonly code: WorkloadSignErrorCode;
  constructor(code: WorkloadSignErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

/** Who the certificate is for: the authenticated pod's namespace and service account. */
export interface WorkloadSubject {
  namespace: string;
  serviceAccount: string;
}

export interface SignedWorkload {
  /** PEM, leaf first, then the CA when it is an intermediate. */
  certChain: string[];
  /** PEM roots peers are verified against. */
  trustBundle: string;
  spiffeId: string;
  notAfter: Date;
}

/** The signing CA: its key pair and the roots it chains to (itself when self-signed). */
export interface SigningCa extends PemPair {
  trustBundle: string;
}

export interface WorkloadSignerOptions {
  trustDomain: string;
  /** Lifetime of a certificate (default 24 h). */
  ttlMs?: number;
  /** The CA in force, or null while none is known. */
  ca: () => SigningCa | null;
  /** Default `Date.now`. */
  now?: () => number;
}

/** The SPIFFE ID of a workload: `spiffe://<trust domain>/ns/<namespace>/sa/<service account>`. */
export function workloadId(trustDomain: string, subject: WorkloadSubject): string {
  return `spiffe://${trustDomain}/ns/${subject.namespace}/sa/${subject.serviceAccount}`;
}

/** Why the key of a request is not accepted, or null when it is. */
function keyProblem(csr: Pkcs10CertificateRequest): string | null {
  let key: ReturnType<typeof createPublicKey>;
  try {
    key = createPublicKey({ key: Buffer.from(csr.publicKey.rawData), format: 'der', type: 'spki' });
  } catch {
    return 'the CSR public key is unreadable';
  }
  const details = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'ec')
    return details.namedCurve === 'prime256v1' ? null : `EC curve ${details.namedCurve} is not P-256`;
  if (key.asymmetricKeyType === 'rsa')
    return (details.modulusLength ?? 0) >= MIN_RSA_BITS
      ? null
      : `RSA key of ${details.modulusLength} bits is below ${MIN_RSA_BITS}`;
  return `${key.asymmetricKeyType} keys are not accepted (EC P-256 or RSA >= ${MIN_RSA_BITS})`;
}

/** Parses and checks a PEM CSR; throws WorkloadSignError(ERR_SIGN_CSR_INVALID). */
async function checkedRequest(pem: string): Promise<Pkcs10CertificateRequest> {
  let csr: Pkcs10CertificateRequest;
  try {
    csr = new Pkcs10CertificateRequest(pem);
  } catch {
    throw new WorkloadSignError('ERR_SIGN_CSR_INVALID', 'the CSR is not a PEM PKCS#10 request');
  }
  const problem = keyProblem(csr);
  if (problem) throw new WorkloadSignError('ERR_SIGN_CSR_INVALID', problem);
  let verified = false;
  try {
    verified = await csr.verify(crypto);
  } catch {}
  if (!verified) throw new WorkloadSignError('ERR_SIGN_CSR_INVALID', 'the CSR signature does not verify');
  return csr;
}

async function signingKey(ca: SigningCa): Promise<webcrypto.CryptoKey> {
  const der = PemConverter.decode(ca.key)[0] ?? new ArrayBuffer(0);
  const type = createPublicKey(ca.cert).asymmetricKeyType;
  const algorithm =
    type === 'rsa'
      ? { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }
      : {
          name: 'ECDSA',
          namedCurve:
            createPublicKey(ca.cert).asymmetricKeyDetails?.namedCurve === 'secp384r1' ? 'P-384' : 'P-256',
        };
  return crypto.subtle.importKey('pkcs8', der, algorithm, false, ['sign']);
}

export class WorkloadSigner {
  readonly #o: WorkloadSignerOptions;

  constructor(options: WorkloadSignerOptions) {
    this.#o = options;
  }

  get ttlMs(): number {
    return this.#o.ttlMs ?? WORKLOAD_TTL_MS;
  }

  /** Signs `csrPem` for `subject`; throws WorkloadSignError. */
  async sign(csrPem: string, subject: WorkloadSubject): Promise<SignedWorkload> {
    const ca = this.#o.ca();
    if (!ca) throw new WorkloadSignError('ERR_SIGN_NO_CA', 'no signing CA is known yet');
    const csr = await checkedRequest(csrPem);
    // tls.crt may hold the CA's own chain (an intermediate): the first block is the CA.
    const caPem =
      /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(ca.cert)?.[0] ?? ca.cert;
    const caCertificate = new X509Certificate(caPem);
    const key = await signingKey(ca);
    const ecdsa = key.algorithm.name === 'ECDSA';
    const now = (this.#o.now ?? Date.now)();
    const spiffeId = workloadId(this.#o.trustDomain, subject);
    const publicKey = new PublicKey(csr.publicKey.rawData);
    const notAfter = new Date(now + this.ttlMs);
    const serial = randomBytes(16);
    serial[0] = (serial[0] ?? 0) & 0x7f;
    const leaf = await X509CertificateGenerator.create(
      {
        serialNumber: serial.toString('hex'),
        // An empty subject (RFC 5280 allows it with a critical SAN): the SPIFFE ID is the only name.
        subject: [],
        issuer: caCertificate.subjectName,
        publicKey,
        signingKey: key,
        signingAlgorithm: ecdsa
          ? { name: 'ECDSA', hash: 'SHA-256' }
          : { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
        notBefore: new Date(now - SKEW_MS),
        notAfter,
        extensions: [
          new BasicConstraintsExtension(false, undefined, true),
          new KeyUsagesExtension(KeyUsageFlags.digitalSignature, true),
          new ExtendedKeyUsageExtension([ExtendedKeyUsage.serverAuth, ExtendedKeyUsage.clientAuth], false),
          await SubjectKeyIdentifierExtension.create(publicKey, false, crypto),
          await AuthorityKeyIdentifierExtension.create(caCertificate, false, crypto),
          new SubjectAlternativeNameExtension([{ type: 'url' as const, value: spiffeId }], true),
        ],
      },
      crypto,
    );
    const selfSigned = caCertificate.subject === caCertificate.issuer;
    return {
      certChain: [leaf.toString('pem'), ...(selfSigned ? [] : [ca.cert])],
      trustBundle: ca.trustBundle,
      spiffeId,
      notAfter,
    };
  }
}
