/**
 * Response minimization: a route's `response.omitFields` removed from its
 * JSON responses, as a BodyRewrite for the forwarder's response relay.
 *
 * Applies only to an Enforce-mode policy's matched route with omitFields
 * (Audit mode: the body passes unchanged), a request other than HEAD, a
 * response of any status but 204 / 304 whose Content-Type is
 * `application/json` or `*+json` (parameters ignored). Error bodies are
 * filtered too: a 4xx / 5xx JSON body can carry the same fields.
 *
 * The body is buffered up to `maxBytes` (default 1 MiB), both as received and
 * once decoded. A compressed body (gzip, x-gzip, deflate, br) is decoded,
 * filtered and re-encoded with the same coding, so `Content-Encoding` stays
 * true and the client keeps its compression. What is rewritten gets a new
 * `Content-Length`, and loses `ETag`, `Content-MD5`, `Digest`,
 * `Content-Digest`, `Repr-Digest` and `Accept-Ranges`, which described the
 * upstream's bytes (a body where no listed field was present is sent byte for
 * byte, headers included). To keep partial responses from leaking fields,
 * `Range` and `If-Range` are not forwarded on such routes.
 *
 * A body it cannot filter passes through untouched and is counted: too large,
 * another coding (or several stacked), or undecodable / not JSON (logged once
 * per route). Counter: `tollgate_response_filter_total{route, result}` with
 * result `filtered`, `unchanged`, `passthrough_size`, `passthrough_type`,
 * `passthrough_encoding` or `passthrough_error`.
 */
import type { CompiledPolicy, CompiledRoute } from '../../../policy/compile/bundle.ts';
import type { BodyRewrite, BodyRewriteHook } from '../../proxy/response-relay.ts';
import type { UpstreamHeaders } from '../../proxy/upstream-headers.ts';
import type { Metrics } from '../../telemetry/metrics.ts';
import { isJsonMediaType, mediaTypeOf } from '../validate/media-type.ts';
import { type Coding, codingOf, decode, encode, isTooLarge, parseJson } from './json-codec.ts';
import { type OmitFields, omitFieldsFor } from './omit-fields.ts';

/** Default bound on a body buffered for filtering, as received and decoded. */
export const DEFAULT_MAX_FILTER_BYTES = 1024 * 1024;

export type FilterResult =
  | 'filtered'
  | 'unchanged'
  | 'passthrough_size'
  | 'passthrough_type'
  | 'passthrough_encoding'
  | 'passthrough_error';

/** Headers describing the upstream's exact bytes, wrong once the body is rewritten. */
const STALE_HEADERS = ['etag', 'content-md5', 'digest', 'content-digest', 'repr-digest', 'accept-ranges'];

const METRIC = 'tollgate_response_filter_total';
const HELP = 'Responses of routes with response.omitFields, by route and result';

export interface ResponseFilterOptions {
  metrics: Metrics;
  logger: { warn(fields: object, msg: string): void };
  maxBytes?: number;
}

/** What response filtering needs to know of a forwarded request. */
export interface FilterTarget {
  policy: CompiledPolicy;
  route: string | null;
  headers: Record<string, string | string[]>;
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

export class ResponseFilter {
  readonly #metrics: Metrics;
  readonly #logger: ResponseFilterOptions['logger'];
  readonly #maxBytes: number;
  readonly #routes = new WeakMap<CompiledPolicy, Map<string, CompiledRoute>>();
  /** Routes whose unfilterable body was already logged. */
  readonly #warned = new Set<string>();

  constructor(options: ResponseFilterOptions) {
    this.#metrics = options.metrics;
    this.#logger = options.logger;
    this.#maxBytes = options.maxBytes ?? DEFAULT_MAX_FILTER_BYTES;
  }

  /**
   * The rewrite hook for a request about to be forwarded, or undefined when
   * its responses pass unchanged. When there is one, `Range` and `If-Range`
   * are removed from the upstream request headers.
   */
  hookFor(plan: FilterTarget, method: string): BodyRewriteHook | undefined {
    if (plan.policy.mode !== 'Enforce' || plan.route === null || method === 'HEAD') return undefined;
    const route = this.#route(plan.policy, plan.route);
    const omit = route ? omitFieldsFor(route) : null;
    if (!omit) return undefined;
    delete plan.headers.range;
    delete plan.headers['if-range'];
    const name = plan.route;
    return (status, headers) => this.#rewriteFor(name, omit, status, headers);
  }

  #route(policy: CompiledPolicy, name: string): CompiledRoute | undefined {
    let byName = this.#routes.get(policy);
    if (!byName) {
      byName = new Map(policy.routes.map((r) => [r.name, r]));
      this.#routes.set(policy, byName);
    }
    return byName.get(name);
  }

  #rewriteFor(route: string, omit: OmitFields, status: number, headers: UpstreamHeaders): BodyRewrite | null {
    if (status === 204 || status === 304) return null;
    const type = mediaTypeOf(single(headers['content-type']));
    if (type === null || !isJsonMediaType(type)) {
      this.#count(route, 'passthrough_type');
      return null;
    }
    const coding = codingOf(headers['content-encoding']);
    if (coding === null) {
      this.#count(route, 'passthrough_encoding');
      return null;
    }
    return {
      limit: this.#maxBytes,
      overflow: () => this.#count(route, 'passthrough_size'),
      rewrite: (body, h) => this.#rewrite(route, omit, coding, body, h),
    };
  }

  async #rewrite(
    route: string,
    omit: OmitFields,
    coding: Coding,
    body: Buffer,
    headers: UpstreamHeaders,
  ): Promise<{ headers: UpstreamHeaders; body: Buffer } | null> {
    let stage = 'decode';
    try {
      const decoded = await decode(body, coding, this.#maxBytes);
      stage = 'parse';
      const value = parseJson(decoded.toString('utf8'));
      if (!omit.omit(value)) {
        this.#count(route, 'unchanged');
        return null;
      }
      stage = 'encode';
      const out = await encode(Buffer.from(JSON.stringify(value), 'utf8'), coding);
      const rewritten: UpstreamHeaders = { ...headers, 'content-length': String(out.length) };
      for (const h of STALE_HEADERS) delete rewritten[h];
      this.#count(route, 'filtered');
      return { headers: rewritten, body: out };
    } catch (e) {
      if (isTooLarge(e)) {
        this.#count(route, 'passthrough_size');
        return null;
      }
      this.#count(route, 'passthrough_error');
      if (!this.#warned.has(route)) {
        this.#warned.add(route);
        this.#logger.warn(
          // The error's code or class only: a JSON.parse message quotes the body.
          { route, stage, err: (e as { code?: string }).code ?? (e instanceof Error ? e.name : 'Error') },
          'response body could not be filtered, passed through unchanged (logged once per route)',
        );
      }
      return null;
    }
  }

  #count(route: string, result: FilterResult): void {
    this.#metrics.inc(METRIC, { route, result }, 1, HELP);
  }
}
