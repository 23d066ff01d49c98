/**
 * Staged rotation of the managed CA, as a pure plan the certificate manager
 * follows (docs/operator.md#root-rotation does the same by hand):
 *
 * 1. `trust-both`: a new root is made and added to `ca.crt` (kept in the
 *    Secret's `next.crt` and `next.key`); the old root still signs.
 * 2. `signing-new`, once the bundle had `propagationMs` to reach every
 *    sidecar, replica and `tollgate-ca-root`: the new root signs (`tls.crt`,
 *    `tls.key`).
 * 3. done, once every workload certificate of the old root has expired
 *    (`workloadTtlMs` after stage 2, plus `propagationMs`): the old root
 *    leaves `ca.crt`.
 *
 * A rotation starts when the CA has less than `rotateBeforeMs` left (0: never
 * on its own) or when the Secret carries the annotation `tollgate.dev/rotate-ca`.
 * The stage and when it began are annotations on the Secret, so any replica
 * that leads next carries on.
 */

/** Any value asks for a rotation now (`kubectl annotate secret tollgate-ca tollgate.dev/rotate-ca=now`). */
export const ROTATE_REQUEST = 'tollgate.dev/rotate-ca';
export const ROTATION_STAGE = 'tollgate.dev/ca-rotation';
export const ROTATION_SINCE = 'tollgate.dev/ca-rotation-since';
/** SHA-256 fingerprint of the root being replaced, removed from `ca.crt` at the end. */
export const ROTATION_OLD = 'tollgate.dev/ca-rotation-old';
export const NEXT_CERT = 'next.crt';
export const NEXT_KEY = 'next.key';

export type RotationStage = 'trust-both' | 'signing-new';

export interface RotationTiming {
  /** Rotate when the CA has less than this left; 0: only on request. */
  rotateBeforeMs: number;
  /** Time for a trust bundle change to reach everything that verifies with it. */
  propagationMs: number;
  /** The longest workload certificate lifetime (`--workload-cert-ttl`). */
  workloadTtlMs: number;
}

/** What to do at a check: start, move to the next stage, fix an unreadable start time, or nothing (null). */
export type RotationStep = 'start' | 'sign-new' | 'finish' | 'repair';

/** The step due at `now` for a Secret with these annotations and a CA expiring at `caNotAfter`. */
export function nextRotationStep(
  annotations: Readonly<Record<string, string>>,
  caNotAfter: number,
  timing: RotationTiming,
  now: number,
): RotationStep | null {
  const stage = annotations[ROTATION_STAGE];
  if (stage !== 'trust-both' && stage !== 'signing-new') {
    const due = timing.rotateBeforeMs > 0 && now >= caNotAfter - timing.rotateBeforeMs;
    return annotations[ROTATE_REQUEST] !== undefined || due ? 'start' : null;
  }
  const since = Date.parse(annotations[ROTATION_SINCE] ?? '');
  if (Number.isNaN(since)) return 'repair';
  if (stage === 'trust-both') return now >= since + timing.propagationMs ? 'sign-new' : null;
  return now >= since + timing.workloadTtlMs + timing.propagationMs ? 'finish' : null;
}
