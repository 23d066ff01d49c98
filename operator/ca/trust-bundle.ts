/**
 * The mesh trust bundle the operator distributes: every root workloads must
 * trust, read from the CA Secret's `ca.crt` (one or more PEM certificates:
 * the old and the new root while a root is rotated), never less than the CA
 * that signs workload certificates now. Pure: the certificate manager reads
 * the Secret, this decides what goes out.
 */
import { X509Certificate } from 'node:crypto';
import { type TrustBundle, trustBundleVersion } from '../../proto/policy-service.ts';

/** The trust bundle and what was wrong with `ca.crt` (dropped blocks, an added signing CA). */
export interface BuiltTrustBundle {
  bundle: TrustBundle;
  problems: string[];
  /** `ca.crt` holds a certificate that cannot be read (a bad edit): better keep the bundle in force. */
  damaged: boolean;
}

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** The PEM certificate blocks of `text`, in order. */
export function pemBlocks(text: string): string[] {
  return text.match(PEM_BLOCK) ?? [];
}

function parse(block: string): X509Certificate | null {
  try {
    return new X509Certificate(block);
  } catch {
    return null;
  }
}

/**
 * The bundle of the CA certificates in `caCrt` (order kept, duplicates and
 * unreadable or non-CA blocks dropped), with the signing CA (the first block
 * of `signingCert`) added when no certificate of the bundle is it or issued
 * it. `version` is the content hash of the PEM text.
 */
export function buildTrustBundle(caCrt: string | undefined, signingCert: string): BuiltTrustBundle {
  const problems: string[] = [];
  const begins = (caCrt ?? '').split('-----BEGIN CERTIFICATE-----').length - 1;
  let damaged = begins !== pemBlocks(caCrt ?? '').length;
  if (damaged) problems.push('ca.crt holds a truncated certificate');
  const roots: { cert: X509Certificate; block: string }[] = [];
  for (const [i, block] of pemBlocks(caCrt ?? '').entries()) {
    const cert = parse(block);
    if (cert === null) {
      damaged = true;
      problems.push(`ca.crt certificate ${i + 1} is unreadable, left out`);
    } else if (!cert.ca) problems.push(`ca.crt certificate ${i + 1} is not a CA, left out`);
    else if (!roots.some((r) => r.cert.fingerprint256 === cert.fingerprint256)) roots.push({ cert, block });
  }
  const signingBlock = pemBlocks(signingCert)[0] ?? '';
  const signing = parse(signingBlock);
  if (signing !== null) {
    const covered = roots.some(
      ({ cert }) =>
        cert.fingerprint256 === signing.fingerprint256 ||
        (signing.checkIssued(cert) && signing.verify(cert.publicKey)),
    );
    if (!covered) {
      if (caCrt !== undefined && caCrt.trim() !== '')
        problems.push('ca.crt does not hold the signing CA, added');
      roots.push({ cert: signing, block: signingBlock });
    }
  }
  // The blocks as written (a one-root bundle is the CA's PEM itself), one per line run.
  const pem = roots.map((r) => r.block).join('\n');
  return { bundle: { version: trustBundleVersion(pem), pem }, problems, damaged };
}
