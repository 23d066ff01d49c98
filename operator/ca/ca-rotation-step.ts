/**
 * One step of a staged CA rotation ({@link nextRotationStep}) applied to the
 * CA Secret: returns the Secret to write (same metadata and resourceVersion,
 * so a concurrent writer makes the replace fail with 409) and the log line.
 * No I/O: the certificate manager writes it.
 */
import { X509Certificate } from 'node:crypto';
import type { V1Secret } from '@kubernetes/client-node';
import {
  NEXT_CERT,
  NEXT_KEY,
  ROTATE_REQUEST,
  ROTATION_OLD,
  ROTATION_SINCE,
  ROTATION_STAGE,
  type RotationStep,
} from './ca-rotation.ts';
import { createCa, inspectCertificate, keyMatches, type PemPair } from './certificates.ts';
import { pemBlocks } from './trust-bundle.ts';

export interface RotationContext {
  now: number;
  trustDomain: string;
  /** Lifetime of the new root (default the CA default, 10 years). */
  caLifetimeMs?: number | undefined;
  /** The bundle trusted now (the Secret's ca.crt as the manager reads it). */
  trustBundle: string;
}

const b64 = (text: string) => Buffer.from(text).toString('base64');
const unb64 = (text: string | undefined) =>
  text === undefined ? undefined : Buffer.from(text, 'base64').toString();

const fingerprint = (pem: string) => {
  try {
    return new X509Certificate(pem).fingerprint256;
  } catch {
    return '';
  }
};

/** The Secret after `step`; `message` (and `fields`) say what happened, for the log. */
export async function rotationStep(
  step: RotationStep,
  secret: V1Secret,
  ca: PemPair,
  ctx: RotationContext,
): Promise<{ secret: V1Secret; message: string; fields: Record<string, string> }> {
  const data = { ...secret.data };
  const annotations = { ...secret.metadata?.annotations };
  const since = new Date(ctx.now).toISOString();
  let message: string;
  const fields: Record<string, string> = {};
  if (step === 'repair') {
    annotations[ROTATION_SINCE] = since;
    message = 'CA rotation stage time unreadable, restarted now';
  } else if (step === 'start') {
    const next = await createCa({
      commonName: `tollgate-ca ${since.slice(0, 10)}`,
      now: ctx.now,
      lifetimeMs: ctx.caLifetimeMs,
      trustDomain: ctx.trustDomain,
    });
    data['ca.crt'] = b64(`${ctx.trustBundle}\n${next.cert}`);
    data[NEXT_CERT] = b64(next.cert);
    data[NEXT_KEY] = b64(next.key);
    delete annotations[ROTATE_REQUEST];
    annotations[ROTATION_STAGE] = 'trust-both';
    annotations[ROTATION_SINCE] = since;
    annotations[ROTATION_OLD] = fingerprint(ca.cert);
    message = 'CA rotation: new root trusted';
  } else if (step === 'sign-new') {
    const next = { cert: unb64(data[NEXT_CERT]) ?? '', key: unb64(data[NEXT_KEY]) ?? '' };
    delete data[NEXT_CERT];
    delete data[NEXT_KEY];
    if (!inspectCertificate(next.cert)?.isCa || !keyMatches(next)) {
      for (const a of [ROTATION_STAGE, ROTATION_SINCE, ROTATION_OLD]) delete annotations[a];
      message = 'CA rotation abandoned: next.crt and next.key are not a usable CA';
    } else {
      data['tls.crt'] = b64(next.cert);
      data['tls.key'] = b64(next.key);
      annotations[ROTATION_STAGE] = 'signing-new';
      annotations[ROTATION_SINCE] = since;
      message = 'CA rotation: new root signs';
    }
  } else {
    const old = annotations[ROTATION_OLD] ?? '';
    const kept = pemBlocks(ctx.trustBundle).filter((block) => fingerprint(block) !== old);
    data['ca.crt'] = b64(kept.join('\n'));
    for (const a of [ROTATION_STAGE, ROTATION_SINCE, ROTATION_OLD]) delete annotations[a];
    fields.roots = String(kept.length);
    message = 'CA rotation: old root removed';
  }
  return { secret: { ...secret, data, metadata: { ...secret.metadata, annotations } }, message, fields };
}
