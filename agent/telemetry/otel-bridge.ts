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
 *
 * A request's span is not an SDK Span: the sampler (the SDK's, from
 * OTEL_TRACES_SAMPLER) decides at accept, the ids and the `traceparent` for
 * the app are set on the request's record, and when the response closes the
 * finished span goes to the export queue, which encodes it to OTLP right
 * away, its attributes straight from the record's fields (pre-encoded keys,
 * no attribute object). Nothing but the record lives for the length of the
 * request, and nothing of the request outlives its encoding.
 */
import { randomFillSync } from 'node:crypto';
import {
  type Attributes as ApiAttributes,
  type Context,
  defaultTextMapGetter,
  ROOT_CONTEXT,
  SamplingDecision,
  SeverityNumber,
  SpanKind,
  type TraceState,
  trace,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import type { Sampler } from '@opentelemetry/sdk-trace';
import type { RecordSink } from '../../telemetry/otel/export-queue.ts';
import {
  type Attributes,
  attributeKey,
  type LogData,
  type ProtoWriter,
  type SpanData,
} from '../../telemetry/otel/otlp-encoding.ts';
import { accessFields, loggedSubject, SECURITY_MESSAGES, type SubjectLogging } from './access-log.ts';
import {
  KNOWN_METHODS,
  type RequestRecord,
  requestEnd,
  requestStart,
  type SecurityEvent,
  securityEvents,
  subscribeTo,
} from './channels.ts';

export interface AgentOtelOptions {
  /** Where sampled spans go (null: traces are not exported). */
  spans: RecordSink<SpanData> | null;
  /** Where log records go (null: logs are not exported). */
  logs: RecordSink<LogData> | null;
  /** Decides which traces are recorded; required with `spans`. */
  sampler: Sampler | null;
  /** Emit a log record per request (the access line). Default true. */
  access?: boolean;
  /** The verified `sub` in log records: as in the JSON logs. Default 'none'. */
  subject?: SubjectLogging;
  /** Wall clock of security events, epoch ms. Default Date.now. */
  now?: () => number;
}

const OTLP_SERVER = 2;
const STATUS_UNSET = 0;
const STATUS_ERROR = 2;
const NO_ATTRIBUTES: ApiAttributes = Object.freeze({});
const NO_LINKS: [] = [];

/** Random ids from a pool of CSPRNG bytes (never all zero: an invalid id). */
const pool = Buffer.allocUnsafe(4096);
let poolAt = pool.length;
function randomId(bytes: number): string {
  if (poolAt + bytes > pool.length) {
    randomFillSync(pool);
    poolAt = 0;
  }
  const start = poolAt;
  poolAt += bytes;
  let zero = true;
  for (let i = start; i < poolAt; i++) {
    if (pool[i] !== 0) {
      zero = false;
      break;
    }
  }
  if (zero) pool[poolAt - 1] = 1;
  return pool.toString('hex', start, poolAt);
}

interface HostPort {
  address: string | undefined;
  port: number | undefined;
}

const NO_HOST: HostPort = { address: undefined, port: undefined };
const HOST = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/;
/** `Host` → server.address / server.port, remembered (a few distinct values in practice; bounded). */
const hosts = new Map<string, HostPort>();
function hostAndPort(host: string | undefined): HostPort {
  if (!host) return NO_HOST;
  let parsed = hosts.get(host);
  if (parsed === undefined) {
    const m = HOST.exec(host);
    parsed = m?.[1] ? { address: m[1], port: m[2] ? Number(m[2]) : undefined } : NO_HOST;
    if (hosts.size >= 256) hosts.clear();
    hosts.set(host, parsed);
  }
  return parsed;
}

/** `METHOD route-template` span names, built once per method and template (both bounded by the policy). */
const names = new Map<string, Map<string, string>>();
function spanName(method: string, routePath: string | null): string {
  if (routePath === null) return method;
  let byRoute = names.get(method);
  if (byRoute === undefined) {
    byRoute = new Map();
    names.set(method, byRoute);
  }
  let name = byRoute.get(routePath);
  if (name === undefined) {
    name = `${method} ${routePath}`;
    if (byRoute.size >= 1024) byRoute.clear();
    byRoute.set(routePath, name);
  }
  return name;
}

/**
 * Starts the request's trace: the client's `traceparent` (if valid) is the
 * parent, the sampler decides, and the record gets the span's ids and what
 * the app must receive.
 */
function startTrace(sampler: Sampler, propagator: W3CTraceContextPropagator, r: RequestRecord): void {
  const headers = r.req.headers;
  let context: Context = ROOT_CONTEXT;
  let traceId: string | undefined;
  let traceState: TraceState | undefined;
  if (headers.traceparent !== undefined) {
    context = propagator.extract(ROOT_CONTEXT, headers, defaultTextMapGetter);
    const parent = trace.getSpanContext(context);
    if (parent) {
      traceId = parent.traceId;
      r.parentSpanId = parent.spanId;
      traceState = parent.traceState;
    }
  }
  traceId ??= randomId(16);
  const known = KNOWN_METHODS.has(r.method);
  const result = sampler.shouldSample(
    context,
    traceId,
    known ? r.method : 'HTTP',
    SpanKind.SERVER,
    NO_ATTRIBUTES,
    NO_LINKS,
  );
  const sampled = result.decision === SamplingDecision.RECORD_AND_SAMPLED;
  traceState = result.traceState ?? traceState;
  r.traceId = traceId;
  r.spanId = randomId(8);
  r.traceFlags = sampled ? 1 : 0;
  const propagate: Record<string, string> = {
    traceparent: `00-${traceId}-${r.spanId}-${sampled ? '01' : '00'}`,
  };
  const state = traceState?.serialize();
  if (state) propagate.tracestate = state;
  r.propagate = propagate;
}

const K = {
  method: attributeKey('http.request.method'),
  methodOriginal: attributeKey('http.request.method_original'),
  scheme: attributeKey('url.scheme'),
  clientAddress: attributeKey('client.address'),
  protocolVersion: attributeKey('network.protocol.version'),
  requestId: attributeKey('tollgate.request_id'),
  serverAddress: attributeKey('server.address'),
  serverPort: attributeKey('server.port'),
  userAgent: attributeKey('user_agent.original'),
  route: attributeKey('http.route'),
  path: attributeKey('url.path'),
  status: attributeKey('http.response.status_code'),
  decision: attributeKey('tollgate.decision'),
  reason: attributeKey('tollgate.reason'),
  policy: attributeKey('tollgate.policy'),
  routeName: attributeKey('tollgate.route'),
  clientKey: attributeKey('tollgate.client_key'),
  authnFailure: attributeKey('tollgate.authn.failure'),
  limit: attributeKey('tollgate.ratelimit.limit'),
  findings: attributeKey('tollgate.findings'),
  errorType: attributeKey('error.type'),
};

/**
 * The finished span of a sampled request, read from the record: its
 * attributes are encoded straight from the record's fields (pre-encoded keys,
 * no attribute object); `attributes` builds the same set as an object, in the
 * same order, for OTLP/JSON and tests.
 */
class RequestSpan implements SpanData {
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId: string | null;
  readonly parentRemote: boolean;
  readonly traceState: string | null;
  readonly traceFlags: number;
  readonly name: string;
  readonly kind = OTLP_SERVER;
  readonly startTime: number;
  readonly endTime: number;
  readonly status: number;
  readonly #r: RequestRecord;
  readonly #known: boolean;
  readonly #errorType: string | undefined;

  constructor(r: RequestRecord) {
    this.#r = r;
    this.#known = KNOWN_METHODS.has(r.method);
    const failed = r.status >= 500 || r.status === 0;
    this.#errorType = failed ? (r.status === 0 ? 'aborted' : String(r.status)) : undefined;
    this.traceId = r.traceId as string;
    this.spanId = r.spanId as string;
    this.parentSpanId = r.parentSpanId;
    this.parentRemote = r.parentSpanId !== null;
    this.traceState = r.propagate?.tracestate ?? null;
    this.traceFlags = r.traceFlags;
    this.name = spanName(this.#known ? r.method : 'HTTP', r.facts.routePath);
    this.startTime = r.startTime;
    this.endTime = r.startTime + r.durationMs;
    this.status = failed ? STATUS_ERROR : STATUS_UNSET;
  }

  get attributes(): Attributes {
    const r = this.#r;
    const { facts, req } = r;
    const server = hostAndPort(req.headers.host);
    return {
      'http.request.method': this.#known ? r.method : '_OTHER',
      'http.request.method_original': this.#known ? undefined : r.method,
      'url.scheme': r.scheme,
      'client.address': r.clientIp,
      'network.protocol.version': req.httpVersion,
      'tollgate.request_id': r.requestId,
      'server.address': server.address,
      'server.port': server.port,
      'user_agent.original': req.headers['user-agent'] || undefined,
      'http.route': facts.routePath ?? undefined,
      'url.path': facts.path ?? undefined,
      'http.response.status_code': r.status > 0 ? r.status : undefined,
      'tollgate.decision': r.decision,
      'tollgate.reason': r.code,
      'tollgate.policy': facts.policy ?? undefined,
      'tollgate.route': facts.route ?? undefined,
      'tollgate.client_key': r.clientKey,
      'tollgate.authn.failure': facts.authnFailure ?? undefined,
      'tollgate.ratelimit.limit': facts.limit ?? undefined,
      'tollgate.findings': r.findings.length > 0 ? r.findings : undefined,
      'error.type': this.#errorType,
    };
  }

  /** The same attributes as `attributes`, in the same order, written without building them. */
  writeAttributes(w: ProtoWriter, tag: number): void {
    const r = this.#r;
    const { facts, req } = r;
    const server = hostAndPort(req.headers.host);
    w.stringAttribute(tag, K.method, this.#known ? r.method : '_OTHER');
    if (!this.#known) w.stringAttribute(tag, K.methodOriginal, r.method);
    w.stringAttribute(tag, K.scheme, r.scheme);
    w.stringAttribute(tag, K.clientAddress, r.clientIp);
    w.stringAttribute(tag, K.protocolVersion, req.httpVersion);
    w.stringAttribute(tag, K.requestId, r.requestId);
    w.stringAttribute(tag, K.serverAddress, server.address);
    w.anyAttribute(tag, K.serverPort, server.port);
    w.stringAttribute(tag, K.userAgent, req.headers['user-agent'] || undefined);
    w.stringAttribute(tag, K.route, facts.routePath);
    w.stringAttribute(tag, K.path, facts.path);
    if (r.status > 0) w.anyAttribute(tag, K.status, r.status);
    w.stringAttribute(tag, K.decision, r.decision);
    w.stringAttribute(tag, K.reason, r.code);
    w.stringAttribute(tag, K.policy, facts.policy);
    w.stringAttribute(tag, K.routeName, facts.route);
    w.stringAttribute(tag, K.clientKey, r.clientKey);
    w.stringAttribute(tag, K.authnFailure, facts.authnFailure);
    w.stringAttribute(tag, K.limit, facts.limit);
    if (r.findings.length > 0) w.anyAttribute(tag, K.findings, r.findings);
    w.stringAttribute(tag, K.errorType, this.#errorType);
  }
}

/** Subscribes spans and log records to the agent's channels; returns the unsubscribe function. */
export function installAgentOtel(options: AgentOtelOptions): () => void {
  const { spans, logs, sampler } = options;
  const subject = options.subject ?? 'none';
  const now = options.now ?? Date.now;
  const access = logs !== null && (options.access ?? true);
  const propagator = new W3CTraceContextPropagator();
  const stops: (() => void)[] = [];
  if (spans && sampler) {
    stops.push(subscribeTo<RequestRecord>(requestStart, (r) => startTrace(sampler, propagator, r)));
  }
  // A record has a span id only when the request was traced (else at most the client's trace id).
  const correlated = (r: RequestRecord | undefined) =>
    r?.spanId
      ? { traceId: r.traceId, spanId: r.spanId, traceFlags: r.traceFlags }
      : { traceId: null, spanId: null, traceFlags: 0 };
  if ((spans && sampler) || access) {
    stops.push(
      subscribeTo<RequestRecord>(requestEnd, (r) => {
        if (access && logs) {
          const time = r.startTime + r.durationMs;
          logs.add({
            time,
            observedTime: time,
            severityNumber: SeverityNumber.INFO,
            severityText: 'INFO',
            body: 'request',
            eventName: 'tollgate.access',
            attributes: accessFields(r, subject) as Attributes,
            ...correlated(r),
          });
        }
        if (spans && r.spanId !== null && r.traceFlags === 1) spans.add(new RequestSpan(r));
      }),
    );
  }
  if (logs) {
    stops.push(
      subscribeTo<SecurityEvent>(securityEvents, (e) => {
        const fields: Record<string, unknown> = { event: `tollgate.security.${e.name}`, ...e.fields };
        const sub = e.record ? loggedSubject(e.record.facts.subject, subject) : undefined;
        if (sub !== undefined) fields.sub = sub;
        const warn = e.name === 'client_blocked';
        const time = now();
        logs.add({
          time,
          observedTime: time,
          severityNumber: warn ? SeverityNumber.WARN : SeverityNumber.INFO,
          severityText: warn ? 'WARN' : 'INFO',
          body: SECURITY_MESSAGES[e.name],
          eventName: `tollgate.security.${e.name}`,
          attributes: fields as Attributes,
          ...correlated(e.record),
        });
      }),
    );
  }
  return () => {
    for (const stop of stops) stop();
  };
}
