/**
 * The agent's request metrics, fed from `tollgate:request:end` and
 * `tollgate:jwks:fetch` into the metrics registry (Prometheus text on the
 * admin port, OTLP through the bridge). Every label is bounded by the policy
 * or by a closed list: route names and templates, decision codes, limit
 * names, token failure reasons, status codes, a closed set of methods.
 * Series are resolved once per label set and cached.
 */
import type { HistogramSeries, Metrics } from '../../telemetry/metrics.ts';
import {
  type JwksFetchEvent,
  jwksFetches,
  KNOWN_METHODS,
  type RequestRecord,
  requestEnd,
  subscribeTo,
} from './channels.ts';

/** `http.server.request.duration` buckets (s): the semantic conventions' advice, with sub-5 ms ones for a sidecar. */
export const DURATION_BUCKETS: readonly number[] = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10,
];

const NONE = '(none)';

export const REQUEST_METRICS = {
  duration: 'http_server_request_duration_seconds',
  requests: 'tollgate_requests_total',
  authnFailures: 'tollgate_authn_failures_total',
  authzDenials: 'tollgate_authz_denials_total',
  rateLimited: 'tollgate_ratelimit_limited_total',
  upstreamErrors: 'tollgate_upstream_errors_total',
  jwksFetches: 'tollgate_jwks_fetches_total',
  jwksFailures: 'tollgate_jwks_fetch_failures_total',
} as const;

function statusClass(status: number): string {
  return status >= 100 && status < 600 ? `${Math.floor(status / 100)}xx` : 'none';
}

/** Counts requests of one agent (records whose `source` is `source`) into `metrics`. */
export class RequestMetrics {
  readonly #metrics: Metrics;
  readonly #source: object;
  readonly #series = new Map<string, { value: number }>();
  readonly #durations = new Map<string, HistogramSeries>();
  #unsubscribe: (() => void)[] = [];

  constructor(metrics: Metrics, source: object) {
    this.#metrics = metrics;
    this.#source = source;
  }

  subscribe(): this {
    this.#unsubscribe.push(
      subscribeTo<RequestRecord>(requestEnd, (r) => {
        if (r.source === this.#source) this.record(r);
      }),
      subscribeTo<JwksFetchEvent>(jwksFetches, (e) => this.jwks(e)),
    );
    return this;
  }

  close(): void {
    for (const u of this.#unsubscribe) u();
    this.#unsubscribe = [];
  }

  record(r: RequestRecord): void {
    const { facts } = r;
    const route = facts.route ?? NONE;
    this.#count(REQUEST_METRICS.requests, 'Requests by route, decision, code and status class', {
      route,
      decision: r.decision,
      code: r.code,
      status_class: statusClass(r.status),
    });
    this.#duration(r).observe(r.durationMs / 1000);
    const policy = facts.policy ?? NONE;
    const codes = r.decision === 'audit-deny' ? r.findings : [r.code];
    for (const code of codes) {
      switch (code) {
        case 'ERR_AUTHN_INVALID_TOKEN':
        case 'ERR_AUTHN_REQUIRED':
          this.#count(REQUEST_METRICS.authnFailures, 'Authentication failures (401) by policy and reason', {
            policy,
            reason: facts.authnFailure ?? 'invalid',
          });
          break;
        case 'ERR_AUTHZ_DENIED':
          this.#count(
            REQUEST_METRICS.authzDenials,
            "Authorization denials (403) by policy and route's rules",
            {
              policy,
              route,
            },
          );
          break;
        case 'ERR_RATE_LIMITED':
          this.#count(REQUEST_METRICS.rateLimited, 'Requests refused by a rate limit, by policy and limit', {
            policy,
            limit: facts.limit ?? NONE,
          });
          break;
        case 'ERR_UPSTREAM_UNAVAILABLE':
        case 'ERR_UPSTREAM_TIMEOUT':
        case 'ERR_UPSTREAM_FAILED':
          this.#count(REQUEST_METRICS.upstreamErrors, 'Upstream (app) failures answered 502/503/504', {
            route,
            code,
          });
          break;
        default:
          break;
      }
    }
  }

  jwks(e: JwksFetchEvent): void {
    this.#count(REQUEST_METRICS.jwksFetches, 'Remote JWKS fetches', { jwks: e.jwks });
    if (!e.ok)
      this.#count(REQUEST_METRICS.jwksFailures, 'Remote JWKS fetches that failed, by error', {
        jwks: e.jwks,
        error: e.error ?? 'unknown',
      });
  }

  #count(name: string, help: string, labels: Record<string, string>): void {
    let key = name;
    for (const k in labels) key += `\u0000${labels[k]}`;
    let series = this.#series.get(key);
    if (!series) {
      series = this.#metrics.counter(name, labels, help);
      this.#series.set(key, series);
    }
    series.value++;
  }

  #duration(r: RequestRecord): HistogramSeries {
    const method = KNOWN_METHODS.has(r.method) ? r.method : '_OTHER';
    const route = r.facts.routePath;
    const key = `${method}\u0000${route ?? ''}\u0000${r.status}\u0000${r.scheme}`;
    let series = this.#durations.get(key);
    if (!series) {
      const labels: Record<string, string> = {
        'http.request.method': method,
        'http.response.status_code': String(r.status),
        'url.scheme': r.scheme,
      };
      if (route !== null) labels['http.route'] = route;
      series = this.#metrics.histogram(REQUEST_METRICS.duration, labels, DURATION_BUCKETS, {
        help: 'Duration of HTTP server requests (accept to the end of the response)',
        unit: 's',
        otelName: 'http.server.request.duration',
      });
      this.#durations.set(key, series);
    }
    return series;
  }
}
