/**
 * AdmissionReview `admission.k8s.io/v1`: the request the API server sends to a
 * webhook, checked at runtime (it is untrusted input), and the response it
 * expects back (same `uid`; a JSON patch travels base64-encoded with
 * `patchType: JSONPatch`). Only v1 is spoken: the webhook configurations list
 * `admissionReviewVersions: [v1]`.
 */
import type { JsonPatchOperation } from './inject.ts';

export const ADMISSION_API_VERSION = 'admission.k8s.io/v1';

export type Operation = 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';
const OPERATIONS: readonly string[] = ['CREATE', 'UPDATE', 'DELETE', 'CONNECT'];

/** The fields of an AdmissionRequest the handlers read. */
export interface AdmissionRequest {
  uid: string;
  kind: { group: string; version: string; kind: string };
  operation: Operation;
  namespace?: string;
  name?: string;
  subResource?: string;
  dryRun?: boolean;
  object?: unknown;
  oldObject?: unknown;
}

/** A `metav1.Status` for a denial; the API server prefixes the message with the webhook's name. */
export interface DenialStatus {
  code: number;
  reason?: string;
  message: string;
  details?: {
    name?: string;
    group?: string;
    kind?: string;
    causes?: { reason: string; message: string; field: string }[];
  };
}

/** What a handler decides; the server turns it into the AdmissionResponse. */
export interface AdmissionResult {
  allowed: boolean;
  patch?: JsonPatchOperation[];
  warnings?: string[];
  status?: DenialStatus;
}

/** A request body that is not an AdmissionReview v1 with a request. */
export class AdmissionReviewError extends Error {
  readonly code = 'ERR_ADMISSION_REVIEW_INVALID';
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const optionalString = (v: unknown) => (typeof v === 'string' ? v : undefined);

/** Checks a parsed body and returns its request; throws {@link AdmissionReviewError} saying what is wrong. */
export function parseAdmissionReview(body: unknown): AdmissionRequest {
  const fail = (message: string): never => {
    throw new AdmissionReviewError(message);
  };
  if (!isRecord(body)) return fail('the body must be a JSON object');
  if (body.apiVersion !== ADMISSION_API_VERSION)
    fail(`apiVersion must be ${ADMISSION_API_VERSION}, got ${JSON.stringify(body.apiVersion ?? null)}`);
  if (body.kind !== 'AdmissionReview')
    fail(`kind must be AdmissionReview, got ${JSON.stringify(body.kind ?? null)}`);
  const r = body.request;
  if (!isRecord(r)) return fail('request is missing');
  if (typeof r.uid !== 'string' || r.uid === '') fail('request.uid is missing');
  if (typeof r.operation !== 'string' || !OPERATIONS.includes(r.operation))
    fail(`request.operation must be one of ${OPERATIONS.join(', ')}`);
  const kind = r.kind;
  if (!isRecord(kind) || typeof kind.kind !== 'string' || typeof kind.version !== 'string')
    return fail('request.kind must be a {group, version, kind} object');
  return {
    uid: r.uid as string,
    kind: { group: optionalString(kind.group) ?? '', version: kind.version, kind: kind.kind },
    operation: r.operation as Operation,
    ...(optionalString(r.namespace) === undefined ? {} : { namespace: r.namespace as string }),
    ...(optionalString(r.name) === undefined ? {} : { name: r.name as string }),
    ...(optionalString(r.subResource) === undefined ? {} : { subResource: r.subResource as string }),
    ...(typeof r.dryRun === 'boolean' ? { dryRun: r.dryRun } : {}),
    ...(r.object === undefined || r.object === null ? {} : { object: r.object }),
    ...(r.oldObject === undefined || r.oldObject === null ? {} : { oldObject: r.oldObject }),
  };
}

/** The AdmissionReview answering `uid` with `result`. */
export function admissionResponse(uid: string, result: AdmissionResult): Record<string, unknown> {
  const patch =
    result.allowed && result.patch && result.patch.length > 0
      ? { patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(result.patch)).toString('base64') }
      : {};
  return {
    apiVersion: ADMISSION_API_VERSION,
    kind: 'AdmissionReview',
    response: {
      uid,
      allowed: result.allowed,
      ...patch,
      ...(result.status && !result.allowed ? { status: { status: 'Failure', ...result.status } } : {}),
      ...(result.warnings && result.warnings.length > 0 ? { warnings: result.warnings } : {}),
    },
  };
}
