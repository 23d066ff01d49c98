/**
 * The agent's telemetry events, published on `node:diagnostics_channel`
 * (the undici way): core code publishes plain records and knows nothing of
 * who listens; metrics, access and security logs and OpenTelemetry subscribe.
 * With no subscriber a publish is a property read (`hasSubscribers`).
 *
 * | channel | message | when |
 * | --- | --- | --- |
 * | `tollgate:request:start` | RequestRecord | a request was accepted (before the pipeline runs) |
 * | `tollgate:request:end` | RequestRecord | its response closed (or the upgrade was refused / tunnelled) |
 * | `tollgate:security` | SecurityEvent | an auth failure, denial, rate limit, block, sunset hit |
 * | `tollgate:jwks:fetch` | JwksFetchEvent | a remote JWKS fetch finished |
 *
 * Channels are process-wide: a subscriber that belongs to one agent filters
 * request records by `record.source`.
 */
import diagnostics from 'node:diagnostics_channel';
import type { IncomingMessage } from 'node:http';

export type Decision = 'allow' | 'deny' | 'undeclared' | 'audit-deny';

/**
 * What the pipeline learned about a request, for telemetry only: stages fill
 * it in as they run and never read it.
 */
export interface RequestFacts {
  /** `namespace/name` of the policy that decided. */
  policy: string | null;
  /** The matched route's name. */
  route: string | null;
  /** The matched route's path template (`/v1/users/{id}`): the `http.route` of the span. */
  routePath: string | null;
  /** The normalized path, without the query. */
  path: string | null;
  /** The verified token's `sub` claim (logged only when the agent is told to). */
  subject: string | null;
  /** Why a token failed (`expired`, `bad_signature`, ...), or `missing` where one was required. */
  authnFailure: string | null;
  /** The rate limit that refused the request. */
  limit: string | null;
}

/** One request, from accept to the end of its response. Mutable until `end` is published. */
export interface RequestRecord {
  /** The publisher (the agent's RequestTelemetry); subscribers of one agent filter on it. */
  readonly source: object;
  readonly req: IncomingMessage;
  readonly requestId: string;
  readonly method: string;
  readonly scheme: 'http' | 'https';
  readonly clientIp: string;
  /** The mTLS peer identity, else the client IP. */
  readonly clientKey: string;
  /** Epoch ms at accept. */
  readonly startTime: number;
  /** Monotonic ms (performance.now) at accept; `durationMs` is measured from it. */
  readonly startMark: number;
  readonly facts: RequestFacts;
  decision: Decision;
  /** The decision code: `OK`, `OK_UNDECLARED` or a PolicyError code (the first finding in Audit mode). */
  code: string;
  /** Codes an Enforce-mode policy would have answered (Audit mode). */
  findings: readonly string[];
  /** HTTP status sent to the client (0 when none was: the client went away first). */
  status: number;
  durationMs: number;
  /** Trace context for the app (`traceparent`, `tracestate`), set by a tracing subscriber at start. */
  propagate: Record<string, string> | null;
  /** The trace the request belongs to: the span's, else the client's `traceparent`. */
  traceId: string | null;
  spanId: string | null;
  /** The span's parent (the client's span, from `traceparent`), set with `spanId` by a tracing subscriber. */
  parentSpanId: string | null;
  /** W3C trace flags of the span (1: sampled), set with `spanId` by a tracing subscriber. */
  traceFlags: number;
}

export type SecurityEventName =
  | 'auth_failure'
  | 'authz_denied'
  | 'rate_limited'
  | 'client_blocked'
  | 'blocked_request'
  | 'sunset_hit';

export interface SecurityEvent {
  name: SecurityEventName;
  /** The fields of the event (never a token, never claims beyond `sub` when allowed). */
  fields: Readonly<Record<string, string | number | null>>;
  /** The request it belongs to; absent for events of no single request. */
  record?: RequestRecord;
}

export interface JwksFetchEvent {
  /** The JWKS URL without credentials or query. */
  jwks: string;
  ok: boolean;
  /** Failure code (ERR_JWKS_*) when not ok. */
  error: string | null;
  durationMs: number;
}

/** The HTTP methods telemetry keeps as they are; any other is `_OTHER` (HTTP semantic conventions). */
export const KNOWN_METHODS: ReadonlySet<string> = new Set([
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'DELETE',
  'CONNECT',
  'OPTIONS',
  'TRACE',
  'PATCH',
]);

export const requestStart = diagnostics.channel('tollgate:request:start');
export const requestEnd = diagnostics.channel('tollgate:request:end');
export const securityEvents = diagnostics.channel('tollgate:security');
export const jwksFetches = diagnostics.channel('tollgate:jwks:fetch');

/** Publishes a security event when anyone listens. */
export function publishSecurity(event: SecurityEvent): void {
  if (securityEvents.hasSubscribers) securityEvents.publish(event);
}

/** Subscribes `fn` to `channel`; returns the unsubscribe function. */
export function subscribeTo<T>(channel: diagnostics.Channel, fn: (message: T) => void): () => void {
  const handler = (message: unknown) => fn(message as T);
  channel.subscribe(handler);
  return () => {
    channel.unsubscribe(handler);
  };
}
