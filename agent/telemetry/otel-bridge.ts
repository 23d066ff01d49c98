/**
 * The agent's OpenTelemetry traces and logs, fed from its telemetry channels
 * (loaded by the CLI only when OTLP is configured; core code imports no OTel):
 *
 * - a SERVER span per request (HTTP semantic conventions, `http.route` = the
 *   route template, never the raw path, plus `tollgate.*` attributes), child of
 *   the client's W3C `traceparent`; the app receives the span's own
 *   `traceparent` (and `tracestate`);
 * - an OTel log record per access line (`tollgate.access`) and per security
 *   event (`tollgate.security.<name>`), correlated with the span.
 */
import {
  type Attributes,
  type Context,
  defaultTextMapGetter,
  defaultTextMapSetter,
  type Logger,
  ROOT_CONTEXT,
  SeverityNumber,
  type Span,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { accessFields, loggedSubject, SECURITY_MESSAGES, type SubjectLogging } from './access-log.ts';
import {
  type RequestRecord,
  requestEnd,
  requestStart,
  type SecurityEvent,
  securityEvents,
  subscribeTo,
} from './channels.ts';

export interface AgentOtelOptions {
  tracer: Tracer | null;
  logger: Logger | null;
  /** Emit a log record per request (the access line). Default true. */
  access?: boolean;
  /** The verified `sub` in log records: as in the JSON logs. Default 'none'. */
  subject?: SubjectLogging;
}

const KNOWN_METHODS: ReadonlySet<string> = new Set([
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

/** Attribute values without nulls (OTel drops them anyway; this keeps the record small). */
function attributesOf(fields: Record<string, unknown>): Attributes {
  const out: Attributes = {};
  for (const [k, v] of Object.entries(fields)) {
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') out[k] = v;
    else if (Array.isArray(v)) out[k] = v.map(String);
  }
  return out;
}

function hostAndPort(host: string | undefined): { address: string; port: number | null } | null {
  if (!host) return null;
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(host);
  if (!m?.[1]) return null;
  return { address: m[1], port: m[2] ? Number(m[2]) : null };
}

/** Starts the request's span (a child of the client's trace) and sets what the app must receive. */
function startSpan(tracer: Tracer, propagator: W3CTraceContextPropagator, r: RequestRecord): Span {
  const parent = propagator.extract(ROOT_CONTEXT, r.req.headers, defaultTextMapGetter);
  const known = KNOWN_METHODS.has(r.method);
  const attributes: Attributes = {
    'http.request.method': known ? r.method : '_OTHER',
    'url.scheme': r.scheme,
    'client.address': r.clientIp,
    'network.protocol.version': r.req.httpVersion,
    'tollgate.request_id': r.requestId,
  };
  if (!known) attributes['http.request.method_original'] = r.method;
  const server = hostAndPort(r.req.headers.host);
  if (server) {
    attributes['server.address'] = server.address;
    if (server.port !== null) attributes['server.port'] = server.port;
  }
  const agent = r.req.headers['user-agent'];
  if (agent) attributes['user_agent.original'] = agent;
  const span = tracer.startSpan(
    known ? r.method : 'HTTP',
    { kind: SpanKind.SERVER, startTime: r.startTime, attributes },
    parent,
  );
  const context = span.spanContext();
  r.traceId = context.traceId;
  r.spanId = context.spanId;
  const carrier: Record<string, string> = {};
  propagator.inject(trace.setSpan(ROOT_CONTEXT, span), carrier, defaultTextMapSetter);
  r.propagate = carrier;
  return span;
}

function endSpan(span: Span, r: RequestRecord): void {
  const { facts } = r;
  if (facts.routePath !== null) {
    span.updateName(`${KNOWN_METHODS.has(r.method) ? r.method : 'HTTP'} ${facts.routePath}`);
    span.setAttribute('http.route', facts.routePath);
  }
  if (facts.path !== null) span.setAttribute('url.path', facts.path);
  if (r.status > 0) span.setAttribute('http.response.status_code', r.status);
  span.setAttribute('tollgate.decision', r.decision);
  span.setAttribute('tollgate.reason', r.code);
  if (facts.policy !== null) span.setAttribute('tollgate.policy', facts.policy);
  if (facts.route !== null) span.setAttribute('tollgate.route', facts.route);
  span.setAttribute('tollgate.client_key', r.clientKey);
  if (facts.authnFailure !== null) span.setAttribute('tollgate.authn.failure', facts.authnFailure);
  if (facts.limit !== null) span.setAttribute('tollgate.ratelimit.limit', facts.limit);
  if (r.findings.length > 0) span.setAttribute('tollgate.findings', [...r.findings]);
  if (r.status >= 500 || r.status === 0) {
    span.setAttribute('error.type', r.status === 0 ? 'aborted' : String(r.status));
    span.setStatus({ code: SpanStatusCode.ERROR });
  }
  span.end(r.startTime + r.durationMs);
}

/** Subscribes spans and log records to the agent's channels; returns the unsubscribe function. */
export function installAgentOtel(options: AgentOtelOptions): () => void {
  const { tracer, logger } = options;
  const subject = options.subject ?? 'none';
  const propagator = new W3CTraceContextPropagator();
  const spans = new WeakMap<RequestRecord, Span>();
  const stops: (() => void)[] = [];
  const contextOf = (r: RequestRecord | undefined): Context | undefined => {
    const span = r ? spans.get(r) : undefined;
    return span ? trace.setSpan(ROOT_CONTEXT, span) : undefined;
  };
  if (tracer) {
    stops.push(
      subscribeTo<RequestRecord>(requestStart, (r) => spans.set(r, startSpan(tracer, propagator, r))),
    );
  }
  if (tracer || (logger && (options.access ?? true))) {
    stops.push(
      subscribeTo<RequestRecord>(requestEnd, (r) => {
        if (logger && (options.access ?? true)) {
          const context = contextOf(r);
          logger.emit({
            eventName: 'tollgate.access',
            timestamp: r.startTime + r.durationMs,
            severityNumber: SeverityNumber.INFO,
            severityText: 'INFO',
            body: 'request',
            attributes: attributesOf(accessFields(r, subject)),
            ...(context ? { context } : {}),
          });
        }
        // Kept in the (weak) map: the request's security events, published next, belong to it.
        const span = spans.get(r);
        if (span) endSpan(span, r);
      }),
    );
  }
  if (logger) {
    stops.push(
      subscribeTo<SecurityEvent>(securityEvents, (e) => {
        const fields: Record<string, unknown> = { event: `tollgate.security.${e.name}`, ...e.fields };
        const sub = e.record ? loggedSubject(e.record.facts.subject, subject) : undefined;
        if (sub !== undefined) fields.sub = sub;
        const warn = e.name === 'client_blocked';
        const context = contextOf(e.record);
        logger.emit({
          eventName: `tollgate.security.${e.name}`,
          severityNumber: warn ? SeverityNumber.WARN : SeverityNumber.INFO,
          severityText: warn ? 'WARN' : 'INFO',
          body: SECURITY_MESSAGES[e.name],
          attributes: attributesOf(fields),
          ...(context ? { context } : {}),
        });
      }),
    );
  }
  return () => {
    for (const stop of stops) stop();
  };
}
