/**
 * The undici dispatch handler that relays one upstream response to a
 * ServerResponse: status and filtered headers, body with backpressure (the
 * upstream read pauses while the client socket is full), trailers dropped.
 * It reports how the exchange ended and whether the client already saw bytes,
 * which decides between a problem response and cutting the connection.
 *
 * A BodyRewrite (response minimization) makes it buffer the body instead, up
 * to the rewrite's limit, and send the head and body the rewrite returns once
 * the upstream body has ended; a body past the limit is relayed unchanged from
 * there on. A buffered response counts as started (an upstream failure then
 * cuts the client connection, as it would mid-stream, and is never retried).
 */
import type { ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import { PolicyError } from '../errors.ts';
import { filterResponseHeaders, type HeaderMap, type UpstreamHeaders } from './upstream-headers.ts';

/** Extra response headers the pipeline adds once it has seen the upstream status and headers. */
export type ResponseHook = (status: number, headers: UpstreamHeaders) => Record<string, string>;

/** Whole-body rewriting of one response. */
export interface BodyRewrite {
  /** Most body bytes buffered; past it the body is relayed unchanged and `overflow()` is called. */
  readonly limit: number;
  overflow(): void;
  /** The headers and body to send instead, or null to send the buffered body unchanged. Never rejects. */
  rewrite(body: Buffer, headers: UpstreamHeaders): Promise<{ headers: UpstreamHeaders; body: Buffer } | null>;
}

/** Picks a BodyRewrite for a response, given its status and filtered headers; null relays it as is. */
export type BodyRewriteHook = (status: number, headers: UpstreamHeaders) => BodyRewrite | null;

/**
 * How one attempt ended. `started`: the client received the response head;
 * `internal`: the error came from the ResponseHook, not from the upstream.
 */
export type RelayOutcome = { error: null } | { error: unknown; started: boolean; internal: boolean };

export interface ResponseRelayOptions {
  res: ServerResponse;
  onResponse?: ResponseHook | undefined;
  rewriteBody?: BodyRewriteHook | undefined;
  /** Called exactly once. */
  settle: (outcome: RelayOutcome) => void;
}

export class ResponseRelay implements Dispatcher.DispatchHandler {
  readonly #res: ServerResponse;
  readonly #onResponse: ResponseHook | undefined;
  readonly #rewriteBody: BodyRewriteHook | undefined;
  /** The response being buffered for a BodyRewrite. */
  #buffered: {
    rewrite: BodyRewrite;
    status: number;
    headers: UpstreamHeaders;
    extra: Record<string, string>;
    chunks: Buffer[];
    size: number;
  } | null = null;
  readonly #settle: (outcome: RelayOutcome) => void;
  #controller: Dispatcher.DispatchController | null = null;
  #started = false;
  #settled = false;
  #abortReason: Error | null = null;
  #timer: NodeJS.Timeout | null = null;
  /** Set when the ResponseHook threw: that error, not the abort it caused, is what forward() rethrows. */
  #hookFailure: { error: unknown } | null = null;

  constructor(options: ResponseRelayOptions) {
    this.#res = options.res;
    this.#onResponse = options.onResponse;
    this.#rewriteBody = options.rewriteBody;
    this.#settle = options.settle;
  }

  /** Stops the upstream exchange (the client went away); safe before the request started. */
  abort(reason: Error): void {
    this.#abortReason = reason;
    this.#controller?.abort(reason);
  }

  /**
   * Fails the exchange with ERR_UPSTREAM_TIMEOUT unless the response head
   * arrives within `ms` from now. A native timer: undici's own headersTimeout
   * runs on a coarse (about 0.5 s) clock, too late for short route timeouts.
   */
  armTimeout(ms: number): void {
    if (this.#started || this.#settled || this.#timer) return;
    this.#timer = setTimeout(() => {
      this.abort(new PolicyError('ERR_UPSTREAM_TIMEOUT', 'the upstream did not answer in time'));
    }, ms);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#abortReason) controller.abort(this.#abortReason);
  }

  onResponseStart(controller: Dispatcher.DispatchController, status: number, headers: HeaderMap): void {
    if (status < 200) return;
    this.#clearTimer();
    const filtered = filterResponseHeaders(headers);
    let extra: Record<string, string>;
    try {
      extra = this.#onResponse?.(status, filtered) ?? {};
    } catch (error) {
      this.#hookFailure = { error };
      controller.abort(new Error('the response hook failed'));
      return;
    }
    const rewrite = this.#rewriteBody?.(status, filtered) ?? null;
    if (rewrite) {
      this.#buffered = { rewrite, status, headers: filtered, extra, chunks: [], size: 0 };
      this.#started = true;
      this.#res.on('drain', () => controller.resume());
      return;
    }
    try {
      this.#res.writeHead(status, { ...filtered, ...extra });
    } catch (error) {
      // Node refuses a header value the upstream sent: the upstream's answer is unusable.
      controller.abort(error instanceof Error ? error : new Error('invalid response header'));
      return;
    }
    this.#started = true;
    this.#res.on('drain', () => controller.resume());
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    const b = this.#buffered;
    if (b) {
      b.chunks.push(chunk);
      b.size += chunk.length;
      if (b.size <= b.rewrite.limit) return;
      // Too large to rewrite: relay it unchanged, what was buffered first.
      this.#buffered = null;
      b.rewrite.overflow();
      if (!this.#writeBufferedHead(b.status, { ...b.headers, ...b.extra })) {
        controller.abort(new Error('invalid response header'));
        return;
      }
      let flowing = true;
      for (const c of b.chunks) flowing = this.#res.write(c);
      if (!flowing) controller.pause();
      return;
    }
    if (!this.#res.write(chunk)) controller.pause();
  }

  onResponseEnd(): void {
    const b = this.#buffered;
    if (!b) {
      this.#res.end();
      this.#finish({ error: null });
      return;
    }
    this.#buffered = null;
    const original = Buffer.concat(b.chunks, b.size);
    b.rewrite.rewrite(original, b.headers).then(
      (result) =>
        this.#endRewritten(b.status, result?.headers ?? b.headers, b.extra, result?.body ?? original),
      (error: unknown) => this.#finish({ error, started: true, internal: true }),
    );
  }

  #endRewritten(status: number, headers: UpstreamHeaders, extra: Record<string, string>, body: Buffer): void {
    if (this.#res.destroyed) {
      this.#finish({ error: null });
      return;
    }
    if (!this.#writeBufferedHead(status, { ...headers, ...extra })) {
      // Nothing reached the client: answer as for any unusable upstream response (502).
      this.#finish({ error: new Error('invalid response header'), started: false, internal: false });
      return;
    }
    this.#res.end(body);
    this.#finish({ error: null });
  }

  /** The deferred head of a buffered response; false when Node refuses one of its headers. */
  #writeBufferedHead(status: number, headers: UpstreamHeaders): boolean {
    try {
      this.#res.writeHead(status, headers);
      return true;
    } catch {
      return false;
    }
  }

  onResponseError(_controller: Dispatcher.DispatchController | null, error: Error): void {
    const hook = this.#hookFailure;
    this.#finish(
      hook
        ? { error: hook.error, started: false, internal: true }
        : { error, started: this.#started, internal: false },
    );
  }

  #clearTimer(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }

  #finish(outcome: RelayOutcome): void {
    this.#clearTimer();
    if (this.#settled) return;
    this.#settled = true;
    this.#settle(outcome);
  }
}
