/**
 * The agent's request records (channels.ts): one per request, begun at accept,
 * given the pipeline's outcome (the plan, or the denial), and published on
 * `tollgate:request:end` once the response closes, with the security events
 * the outcome stands for (auth failures, denials, rate limits, blocked
 * requests, sunset hits; in Audit mode the ones that would have been).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { PolicyError } from '../errors.ts';
import type { ForwardPlan, RequestInfo } from '../pipeline/decide-request.ts';
import {
  publishSecurity,
  type RequestFacts,
  type RequestRecord,
  requestEnd,
  requestStart,
  type SecurityEventName,
  securityEvents,
} from './channels.ts';

export interface RequestTelemetryOptions {
  /** Wall clock, epoch ms. Default Date.now. */
  now?: () => number;
  /** Monotonic clock, ms. Default performance.now. */
  mark?: () => number;
}

const TRACEPARENT = /^[\da-f]{2}-([\da-f]{32})-([\da-f]{16})-[\da-f]{2}/;
const NO_TRACE = '00000000000000000000000000000000';

/** The code → security event of a refusal; null for codes that are not one. */
function securityEventOf(code: string): SecurityEventName | null {
  switch (code) {
    case 'ERR_AUTHN_INVALID_TOKEN':
    case 'ERR_AUTHN_REQUIRED':
      return 'auth_failure';
    case 'ERR_AUTHZ_DENIED':
      return 'authz_denied';
    case 'ERR_RATE_LIMITED':
      return 'rate_limited';
    case 'ERR_PROTECTION_BLOCKED':
      return 'blocked_request';
    case 'ERR_ROUTE_SUNSET':
      return 'sunset_hit';
    default:
      return null;
  }
}

function emptyFacts(): RequestFacts {
  return {
    policy: null,
    route: null,
    routePath: null,
    path: null,
    subject: null,
    authnFailure: null,
    limit: null,
  };
}

export class RequestTelemetry {
  readonly #now: () => number;
  readonly #mark: () => number;
  readonly #open = new WeakSet<RequestRecord>();

  constructor(options: RequestTelemetryOptions = {}) {
    this.#now = options.now ?? Date.now;
    this.#mark = options.mark ?? (() => performance.now());
  }

  /** The record of a just-accepted request; its `facts` go to the pipeline as `info.facts`. */
  begin(info: RequestInfo, clientKey: string): RequestRecord {
    const req: IncomingMessage = info.req;
    const record: RequestRecord = {
      source: this,
      req,
      requestId: info.requestId,
      method: req.method ?? 'GET',
      scheme: info.proto,
      clientIp: info.clientIp,
      clientKey,
      startTime: this.#now(),
      startMark: this.#mark(),
      facts: emptyFacts(),
      decision: 'deny',
      code: 'ERR_INTERNAL',
      findings: [],
      status: 0,
      durationMs: 0,
      propagate: null,
      traceId: null,
      spanId: null,
      parentSpanId: null,
      traceFlags: 0,
    };
    this.#open.add(record);
    if (requestStart.hasSubscribers) requestStart.publish(record);
    if (record.traceId === null) {
      // No tracer: still log the client's trace, which the app receives unchanged.
      const parent = req.headers.traceparent;
      const m = typeof parent === 'string' ? TRACEPARENT.exec(parent) : null;
      if (m?.[1] && m[1] !== NO_TRACE) record.traceId = m[1];
    }
    return record;
  }

  /** Ends the record when `res` closes, with the status sent (0 when none was). */
  watch(record: RequestRecord, res: ServerResponse): void {
    res.once('close', () => this.end(record, res.headersSent ? res.statusCode : 0));
  }

  /** The pipeline allowed the request (or, in Audit mode, would have refused it). */
  planned(record: RequestRecord, plan: ForwardPlan): void {
    record.decision = plan.decision;
    record.findings = plan.findings.map((f) => f.code);
    record.code = record.findings[0] ?? (plan.route === null ? 'OK_UNDECLARED' : 'OK');
  }

  /** Audit findings of the body stage, added to the plan's. */
  findings(record: RequestRecord, codes: readonly string[]): void {
    if (codes.length === 0) return;
    record.findings = [...record.findings, ...codes];
    record.decision = 'audit-deny';
    record.code = record.findings[0] ?? record.code;
  }

  /** The request was refused (or failed upstream) with `e`. */
  denied(record: RequestRecord, e: unknown): void {
    record.decision = 'deny';
    record.code = e instanceof PolicyError ? e.code : 'ERR_INTERNAL';
  }

  /** Publishes the record and its security events, once. */
  end(record: RequestRecord, status: number): void {
    if (!this.#open.has(record)) return;
    this.#open.delete(record);
    record.status = status;
    record.durationMs = this.#mark() - record.startMark;
    if (requestEnd.hasSubscribers) requestEnd.publish(record);
    if (securityEvents.hasSubscribers) this.#security(record);
  }

  #security(record: RequestRecord): void {
    const audit = record.decision === 'audit-deny';
    const codes = audit ? record.findings : [record.code];
    for (const code of codes) {
      const name = securityEventOf(code);
      if (name === null) continue;
      const { facts } = record;
      const fields: Record<string, string | number | null> = {
        requestId: record.requestId,
        traceId: record.traceId,
        clientKey: record.clientKey,
        method: record.method,
        policy: facts.policy,
        route: facts.route,
        code,
        status: record.status,
        mode: audit ? 'Audit' : 'Enforce',
      };
      if (name === 'auth_failure') fields.reason = facts.authnFailure ?? 'invalid';
      if (name === 'rate_limited') fields.limit = facts.limit;
      publishSecurity({ name, fields, record });
    }
  }
}
