/**
 * Kubernetes `Status` bodies, shaped field for field like the real API
 * server's (`kind, apiVersion, metadata, status, message, reason, details,
 * code`), and the error that carries one out of a request handler.
 */

/** A JSON object as the test server stores and serves it. */
export type Obj = Record<string, unknown>;

/** One `details.causes` entry of an `Invalid` status. */
export interface StatusCause {
  reason: string;
  message: string;
  field: string;
}

/** `Status.details`. */
export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  uid?: string;
  causes?: StatusCause[];
}

/** A `Status` object. */
export interface StatusBody {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Obj;
  status: 'Failure' | 'Success';
  message?: string;
  reason?: string;
  details?: StatusDetails;
  code: number;
}

/** Builds a Status with the real server's field order (omitting absent fields). */
export function statusBody(
  status: 'Failure' | 'Success',
  code: number,
  reason: string | undefined,
  message: string | undefined,
  details?: StatusDetails,
): StatusBody {
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status,
    ...(message === undefined ? {} : { message }),
    ...(reason === undefined ? {} : { reason }),
    ...(details === undefined ? {} : { details }),
    code,
  };
}

/** An API failure: HTTP `code` with a Failure `Status` body. */
export class ApiError extends Error {
  readonly body: StatusBody;
  readonly headers: Record<string, string>;

  constructor(body: StatusBody, headers: Record<string, string> = {}) {
    super(body.message ?? body.reason ?? 'Failure');
    this.body = body;
    this.headers = headers;
  }
}

/** A failure of `code` with `reason` and `message`. */
export function failure(code: number, reason: string, message: string, details?: StatusDetails): ApiError {
  return new ApiError(statusBody('Failure', code, reason, message, details));
}

/** How the real server names a resource in messages and details (`configmaps`, `apipolicies.tollgate.dev`). */
export interface ResourceRef {
  group: string;
  plural: string;
  kind: string;
}

function qualified(ref: ResourceRef): string {
  return ref.group === '' ? ref.plural : `${ref.plural}.${ref.group}`;
}

function refDetails(ref: ResourceRef, name: string, kind = ref.plural): StatusDetails {
  const details: StatusDetails = { name };
  if (ref.group !== '') details.group = ref.group;
  details.kind = kind;
  return details;
}

/** 404 `configmaps "x" not found`. */
export function notFound(ref: ResourceRef, name: string): ApiError {
  return failure(404, 'NotFound', `${qualified(ref)} "${name}" not found`, refDetails(ref, name));
}

/** 409 `configmaps "x" already exists`. */
export function alreadyExists(ref: ResourceRef, name: string): ApiError {
  return failure(409, 'AlreadyExists', `${qualified(ref)} "${name}" already exists`, refDetails(ref, name));
}

/** 403 `pods "x" is forbidden: WHY`, as admission refusals read. */
export function forbidden(ref: ResourceRef, name: string, why: string, causes?: StatusCause[]): ApiError {
  return failure(403, 'Forbidden', `${qualified(ref)} "${name}" is forbidden: ${why}`, {
    ...refDetails(ref, name),
    ...(causes === undefined ? {} : { causes }),
  });
}

/** 409 Conflict on a stale `resourceVersion` (or a failed precondition). */
export function conflict(ref: ResourceRef, name: string, why: string): ApiError {
  return failure(
    409,
    'Conflict',
    `Operation cannot be fulfilled on ${qualified(ref)} "${name}": ${why}`,
    refDetails(ref, name),
  );
}

/** The real server's wording for a stale resourceVersion. */
export const MODIFIED =
  'the object has been modified; please apply your changes to the latest version and try again';

/** 422 Invalid listing `causes` (`Kind.group "name" is invalid: field: message`). */
export function invalid(ref: ResourceRef, name: string, causes: StatusCause[]): ApiError {
  const kindRef = ref.group === '' ? ref.kind : `${ref.kind}.${ref.group}`;
  const parts = causes.map((c) => (c.field === '' ? c.message : `${c.field}: ${c.message}`));
  const list = parts.length === 1 ? (parts[0] ?? '') : `[${parts.join(', ')}]`;
  return failure(422, 'Invalid', `${kindRef} "${name}" is invalid: ${list}`, {
    ...refDetails(ref, name, ref.kind),
    causes,
  });
}

/** 400 BadRequest without details, as the server sends for decoding errors. */
export function badRequest(message: string): ApiError {
  return failure(400, 'BadRequest', message);
}

/** 410 Expired for a watch or list from a compacted resourceVersion. */
export function expired(requested: number, oldest: number): ApiError {
  return failure(410, 'Expired', `too old resource version: ${requested} (${oldest})`);
}
