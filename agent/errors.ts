/**
 * The agent's typed request errors and the one rescue table that turns them
 * into responses (status, problem+json, extra headers). Stages throw
 * PolicyError; only the edge (rescue) decides what the client sees.
 */
import type { DecisionCode } from '../policy/engine/decide.ts';

/**
 * Every policy decision code of the offline engine (one vocabulary for `tollgate
 * check` and the agent), plus what only a live proxy meets: framing, request
 * validation, protection, a bundle that holds no policy for the workload,
 * upstream failures, and the outbound proxy's own refusals.
 */
export type PolicyErrorCode =
  | Exclude<DecisionCode, 'OK' | 'OK_UNDECLARED'>
  | 'ERR_REQUEST_MALFORMED'
  | 'ERR_POLICY_NONE'
  | 'ERR_MTLS_REQUIRED'
  | 'ERR_MTLS_DISABLED'
  | 'ERR_PROTECTION_BLOCKED'
  | 'ERR_BODY_TOO_LARGE'
  | 'ERR_MEDIA_TYPE'
  | 'ERR_VALIDATION'
  | 'ERR_UPSTREAM_UNAVAILABLE'
  | 'ERR_UPSTREAM_TIMEOUT'
  | 'ERR_UPSTREAM_FAILED'
  | 'ERR_OUTBOUND_DESTINATION'
  | 'ERR_OUTBOUND_UNREACHABLE'
  | 'ERR_OUTBOUND_LOOP'
  | 'ERR_OUTBOUND_MTLS'
  | 'ERR_OUTBOUND_NO_IDENTITY'
  | 'ERR_INTERNAL';

/** A request that must not go on; `detail` is shown to the client (never secrets or addresses). */
export class PolicyError extends Error {
  readonly code: PolicyErrorCode;
  readonly detail: string;
  /** Response headers this error adds (Allow, WWW-Authenticate, Retry-After, ...). */
  readonly headers: Readonly<Record<string, string>>;
  /**
   * Extra members of the problem body (RFC 9457 §3.2), e.g. the `errors` of a
   * validation failure; they never replace the standard members.
   */
  readonly extensions: Readonly<Record<string, unknown>>;
  /** The route the request had matched when it was refused, for telemetry. */
  route: string | null = null;

  constructor(
    code: PolicyErrorCode,
    detail: string,
    headers: Record<string, string> = {},
    extensions: Record<string, unknown> = {},
  ) {
    super(`${code}: ${detail}`);
    this.name = 'PolicyError';
    this.code = code;
    this.detail = detail;
    this.headers = headers;
    this.extensions = extensions;
  }
}

interface RescueEntry {
  status: number;
  title: string;
}

/** code → status and problem title (docs/errors.md lists the same). */
export const RESCUE: Readonly<Record<PolicyErrorCode, RescueEntry>> = {
  ERR_PATH_INVALID: { status: 400, title: 'Invalid request path' },
  ERR_REQUEST_MALFORMED: { status: 400, title: 'Malformed request' },
  ERR_ROUTE_NOT_FOUND: { status: 404, title: 'Not found' },
  ERR_ROUTE_METHOD: { status: 405, title: 'Method not allowed' },
  ERR_ROUTE_SUNSET: { status: 410, title: 'Gone' },
  ERR_AUTHN_INVALID_TOKEN: { status: 401, title: 'Invalid token' },
  ERR_AUTHN_REQUIRED: { status: 401, title: 'Authentication required' },
  ERR_AUTHZ_DENIED: { status: 403, title: 'Forbidden' },
  ERR_RATE_LIMITED: { status: 429, title: 'Too many requests' },
  ERR_PROTECTION_BLOCKED: { status: 429, title: 'Too many requests' },
  ERR_BODY_TOO_LARGE: { status: 413, title: 'Payload too large' },
  ERR_MEDIA_TYPE: { status: 415, title: 'Unsupported media type' },
  ERR_VALIDATION: { status: 400, title: 'Request validation failed' },
  ERR_NO_POLICY: { status: 503, title: 'No policy loaded' },
  ERR_POLICY_NONE: { status: 403, title: 'No policy applies' },
  ERR_MTLS_REQUIRED: { status: 403, title: 'Mutual TLS required' },
  ERR_MTLS_DISABLED: { status: 403, title: 'Mutual TLS not accepted' },
  ERR_UPSTREAM_UNAVAILABLE: { status: 503, title: 'Upstream unavailable' },
  ERR_UPSTREAM_TIMEOUT: { status: 504, title: 'Upstream timeout' },
  ERR_UPSTREAM_FAILED: { status: 502, title: 'Bad gateway' },
  ERR_OUTBOUND_DESTINATION: { status: 400, title: 'No destination' },
  ERR_OUTBOUND_UNREACHABLE: { status: 502, title: 'Destination unreachable' },
  ERR_OUTBOUND_LOOP: { status: 508, title: 'Loop detected' },
  ERR_OUTBOUND_MTLS: { status: 502, title: 'Destination identity not verified' },
  ERR_OUTBOUND_NO_IDENTITY: { status: 503, title: 'No workload certificate' },
  ERR_INTERNAL: { status: 500, title: 'Internal error' },
};

export interface ProblemResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** The problem+json response (RFC 9457) for an error; anything that is not a PolicyError is a 500. */
export function rescue(error: unknown, requestId: string): ProblemResponse {
  const e =
    error instanceof PolicyError
      ? error
      : new PolicyError('ERR_INTERNAL', 'the request could not be processed');
  const entry = RESCUE[e.code];
  const problem: Record<string, unknown> = {
    type: `https://tollgate.dev/errors#${e.code}`,
    title: entry.title,
    status: entry.status,
    detail: e.detail,
    code: e.code,
    requestId,
  };
  for (const [name, value] of Object.entries(e.extensions))
    if (!Object.hasOwn(problem, name)) problem[name] = value;
  const body = JSON.stringify(problem);
  return {
    status: entry.status,
    headers: {
      ...e.headers,
      'content-type': 'application/problem+json',
      'content-length': String(Buffer.byteLength(body)),
      'cache-control': 'no-store',
      'x-request-id': requestId,
    },
    body,
  };
}
