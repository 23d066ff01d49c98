/**
 * The access log (one JSON line per request, `event: "tollgate.access"`) and
 * the security log (one line per security event, `event:
 * "tollgate.security.<name>"`), written through the agent's pino logger from
 * the `tollgate:request:end` and `tollgate:security` channels.
 *
 * Never logged: tokens, claims, query strings, header values. The caller's
 * `sub` only with `subject: 'plain'` (or its SHA-256 prefix with `'hash'`).
 */
import { createHash } from 'node:crypto';
import {
  type RequestRecord,
  requestEnd,
  type SecurityEvent,
  securityEvents,
  subscribeTo,
} from './channels.ts';
import type { JsonLineWriter } from './json-line.ts';

/** How the verified `sub` appears in logs: not at all (default), hashed, or as is. */
export type SubjectLogging = 'none' | 'hash' | 'plain';

export interface AccessLogger {
  info(fields: object, msg: string): void;
  warn(fields: object, msg: string): void;
  /** pino's: when `info` is off the access line is not even built. */
  isLevelEnabled?(level: string): boolean;
}

export interface AccessLogOptions {
  logger: AccessLogger;
  /**
   * Writes the per-request line instead of `logger.info` (the same bytes, to
   * the same destination, straight from the record); security lines always go
   * to `logger`.
   */
  line?: JsonLineWriter;
  /** Only records of this publisher (the agent's RequestTelemetry). */
  source: object;
  /** Write the per-request line. Default true. */
  access?: boolean;
  /** Default 'none'. */
  subject?: SubjectLogging;
}

/** The fixed message of each security event. */
export const SECURITY_MESSAGES: Readonly<Record<SecurityEvent['name'], string>> = {
  auth_failure: 'authentication failed',
  authz_denied: 'request not authorized',
  rate_limited: 'rate limit exceeded',
  client_blocked: 'client blocked',
  blocked_request: 'blocked client refused',
  sunset_hit: 'retired route requested',
};

/** The `sub` as logged under `mode`, or undefined when it is not logged. */
export function loggedSubject(subject: string | null, mode: SubjectLogging): string | undefined {
  if (subject === null || mode === 'none') return undefined;
  if (mode === 'plain') return subject;
  return `sha256:${createHash('sha256').update(subject).digest('hex').slice(0, 16)}`;
}

/** The fields of a record's access line (shared with the OTLP log bridge). */
export function accessFields(r: RequestRecord, subject: SubjectLogging): Record<string, unknown> {
  const { facts } = r;
  const fields: Record<string, unknown> = {
    event: 'tollgate.access',
    requestId: r.requestId,
    traceId: r.traceId,
    spanId: r.spanId,
    method: r.method,
    path: facts.path,
    route: facts.route,
    policy: facts.policy,
    decision: r.decision,
    reason: r.code,
    status: r.status,
    latencyMs: Math.round(r.durationMs * 1000) / 1000,
    clientKey: r.clientKey,
  };
  if (r.findings.length > 1) fields.findings = r.findings;
  if (facts.authnFailure !== null) fields.authnFailure = facts.authnFailure;
  if (facts.limit !== null) fields.limit = facts.limit;
  const sub = loggedSubject(facts.subject, subject);
  if (sub !== undefined) fields.sub = sub;
  return fields;
}

/** Writes the access line of `r` field by field: the bytes of `info(accessFields(r, subject), 'request')`. */
export function writeAccessLine(w: JsonLineWriter, r: RequestRecord, subject: SubjectLogging): void {
  const { facts } = r;
  w.begin();
  w.string('event', 'tollgate.access');
  w.string('requestId', r.requestId);
  w.string('traceId', r.traceId);
  w.string('spanId', r.spanId);
  w.string('method', r.method);
  w.string('path', facts.path);
  w.string('route', facts.route);
  w.string('policy', facts.policy);
  w.string('decision', r.decision);
  w.string('reason', r.code);
  w.number('status', r.status);
  w.thousandths('latencyMs', Math.round(r.durationMs * 1000));
  w.string('clientKey', r.clientKey);
  if (r.findings.length > 1) w.value('findings', r.findings);
  if (facts.authnFailure !== null) w.string('authnFailure', facts.authnFailure);
  if (facts.limit !== null) w.string('limit', facts.limit);
  if (subject !== 'none') w.string('sub', loggedSubject(facts.subject, subject));
  w.end('request');
}

/** Subscribes the access and security logs; returns the unsubscribe function. */
export function subscribeAccessLog(options: AccessLogOptions): () => void {
  const { logger, source } = options;
  const subject = options.subject ?? 'none';
  const stops: (() => void)[] = [];
  if ((options.access ?? true) && (logger.isLevelEnabled?.('info') ?? true)) {
    const { line } = options;
    stops.push(
      subscribeTo<RequestRecord>(requestEnd, (r) => {
        if (r.source !== source) return;
        if (line) writeAccessLine(line, r, subject);
        else logger.info(accessFields(r, subject), 'request');
      }),
    );
  }
  stops.push(
    subscribeTo<SecurityEvent>(securityEvents, (e) => {
      if (e.record && e.record.source !== source) return;
      const fields: Record<string, unknown> = { event: `tollgate.security.${e.name}`, ...e.fields };
      const sub = e.record ? loggedSubject(e.record.facts.subject, subject) : undefined;
      if (sub !== undefined) fields.sub = sub;
      const msg = SECURITY_MESSAGES[e.name];
      if (e.name === 'client_blocked') logger.warn(fields, msg);
      else logger.info(fields, msg);
    }),
  );
  return () => {
    for (const stop of stops) stop();
  };
}
