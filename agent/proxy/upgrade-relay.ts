/**
 * The undici dispatch handler for an upgrade request (WebSocket and the
 * like): on `101` it writes the upstream's handshake to the client socket and
 * splices the two sockets together; on any other status it relays that
 * response as a plain HTTP/1.1 answer and closes the client connection.
 * (undici's `upgrade()` API cannot do the second: it turns a non-101 answer
 * into an error, so this is the same dispatch with our own handler.)
 */
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import { filterResponseHeaders, type HeaderMap, type UpstreamHeaders } from './upstream-headers.ts';

/** How the exchange ended. `started`: bytes already reached the client, so only closing is left. */
export type UpgradeOutcome = { error: null } | { error: Error; started: boolean };

export interface UpgradeRelayOptions {
  /** The client's connection, detached from node:http. */
  socket: Duplex;
  /** Bytes the client sent after its request head; they belong to the upgraded protocol. */
  head: Buffer;
  /** Called exactly once: when the tunnel has closed, the refusal was relayed, or it failed. */
  settle: (outcome: UpgradeOutcome) => void;
}

function responseHead(status: number, headers: UpstreamHeaders): string {
  const lines = [`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}`];
  for (const [name, value] of Object.entries(headers)) {
    for (const v of typeof value === 'string' ? [value] : value) lines.push(`${name}: ${v}`);
  }
  return `${lines.join('\r\n')}\r\n\r\n`;
}

/** Pipes both ways; either side closing or failing closes both. `done` runs once both are closed. */
function splice(a: Duplex, b: Duplex, done: () => void): void {
  let open = 2;
  const closeBoth = () => {
    a.destroy();
    b.destroy();
  };
  for (const side of [a, b]) {
    side.on('error', closeBoth);
    side.once('close', () => {
      closeBoth();
      open -= 1;
      if (open === 0) done();
    });
  }
  a.pipe(b);
  b.pipe(a);
}

export class UpgradeRelay implements Dispatcher.DispatchHandler {
  readonly #socket: Duplex;
  readonly #head: Buffer;
  readonly #settle: (outcome: UpgradeOutcome) => void;
  #controller: Dispatcher.DispatchController | null = null;
  #started = false;
  #settled = false;
  #abortReason: Error | null = null;

  constructor(options: UpgradeRelayOptions) {
    this.#socket = options.socket;
    this.#head = options.head;
    this.#settle = options.settle;
  }

  /** Cancels the upstream request if it has not been answered yet (the client went away). */
  abort(reason: Error): void {
    if (this.#started) return;
    this.#abortReason = reason;
    this.#controller?.abort(reason);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#abortReason) controller.abort(this.#abortReason);
  }

  onRequestUpgrade(
    _controller: Dispatcher.DispatchController,
    status: number,
    headers: HeaderMap,
    upstream: Duplex,
  ): void {
    this.#started = true;
    const client = this.#socket;
    if (client.destroyed) {
      upstream.destroy();
      this.#finish({ error: null });
      return;
    }
    const outgoing = filterResponseHeaders(headers);
    const protocol = headers.upgrade;
    const handshake: UpstreamHeaders = {
      connection: 'Upgrade',
      ...(typeof protocol === 'string' ? { upgrade: protocol } : {}),
    };
    client.write(responseHead(status, { ...outgoing, ...handshake }));
    if (this.#head.length > 0) upstream.write(this.#head);
    splice(client, upstream, () => this.#finish({ error: null }));
  }

  onResponseStart(controller: Dispatcher.DispatchController, status: number, headers: HeaderMap): void {
    if (status < 200) return;
    this.#started = true;
    const client = this.#socket;
    client.write(responseHead(status, { ...filterResponseHeaders(headers), connection: 'close' }));
    client.on('drain', () => controller.resume());
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (!this.#socket.write(chunk)) controller.pause();
  }

  onResponseEnd(): void {
    const client = this.#socket;
    client.end(() => client.destroy());
    this.#finish({ error: null });
  }

  onResponseError(_controller: Dispatcher.DispatchController | null, error: Error): void {
    if (this.#started) this.#socket.destroy();
    this.#finish({ error, started: this.#started });
  }

  #finish(outcome: UpgradeOutcome): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#settle(outcome);
  }
}
