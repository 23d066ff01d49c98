/**
 * The undici dispatch handler that relays one upstream response to a
 * ServerResponse: status and filtered headers, body with backpressure (the
 * upstream read pauses while the client socket is full), trailers dropped.
 * It reports how the exchange ended and whether the client already saw bytes,
 * which decides between a problem response and cutting the connection.
 */
import type { ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import { PolicyError } from '../errors.ts';
import { filterResponseHeaders, type HeaderMap, type UpstreamHeaders } from './upstream-headers.ts';

/** Extra response headers the pipeline adds once it has seen the upstream status and headers. */
export type ResponseHook = (status: number, headers: UpstreamHeaders) => Record<string, string>;

/**
 * How one attempt ended. `started`: the client received the response head;
 * `internal`: the error came from the ResponseHook, not from the upstream.
 */
export type RelayOutcome = { error: null } | { error: unknown; started: boolean; internal: boolean };

export interface ResponseRelayOptions {
  res: ServerResponse;
  onResponse?: ResponseHook | undefined;
  /** Called exactly once. */
  settle: (outcome: RelayOutcome) => void;
}

export class ResponseRelay implements Dispatcher.DispatchHandler {
  readonly #res: ServerResponse;
  readonly #onResponse: ResponseHook | undefined;
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
    if (!this.#res.write(chunk)) controller.pause();
  }

  onResponseEnd(): void {
    this.#res.end();
    this.#finish({ error: null });
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
