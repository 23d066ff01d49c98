/**
 * Forwarding an allowed request to the app over a keep-alive undici Pool:
 * the request body streams through with backpressure, the response streams
 * back, upstream failures become 502/503/504 while nothing was sent (and a cut
 * connection once something was), and upgrades are spliced socket to socket.
 *
 * Retries: undici itself never retries a request that was written (it fails
 * the head of the pipeline when the socket closes; no retry interceptor is
 * installed). Forwarder retries once, and only an idempotent method
 * (GET, HEAD, OPTIONS, TRACE, PUT, DELETE) without a body whose connection was
 * closed or reset before any response byte: the stale keep-alive race. Any
 * other request, POST and PATCH included, reaches the app at most once.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { LookupFunction, Socket } from 'node:net';
import { type Duplex, PassThrough, type Readable } from 'node:stream';
import type { ConnectionOptions } from 'node:tls';
import type { buildConnector as BuildConnector, Dispatcher } from 'undici';
import { PolicyError } from '../errors.ts';
import { announcesBody } from './request-framing.ts';
import {
  type BodyRewriteHook,
  type RelayOutcome,
  type ResponseHook,
  ResponseRelay,
} from './response-relay.ts';
import { Agent, buildConnector, Pool } from './undici-core.ts';
import { UpgradeRelay } from './upgrade-relay.ts';
import { isConnectionLost, upstreamError } from './upstream-errors.ts';
import type { UpstreamHeaders } from './upstream-headers.ts';

export interface ForwarderOptions {
  /**
   * The app's origin (scheme, host, port); any path is ignored. Null: every
   * request names its destination (`origin`), each with its own keep-alive
   * pool (the outbound proxy).
   */
  upstream: URL | null;
  /** Most connections to the app at once. Default: 128. */
  connections?: number;
  /** Idle time before a pooled connection is closed (shortened by the app's Keep-Alive hint). Default: 4 s. */
  keepAliveTimeoutMs?: number;
  /** Time to establish a connection. Default: 5 s. */
  connectTimeoutMs?: number;
  /** Requests in flight per connection. Default: 1 (no pipelining). */
  pipelining?: number;
  /** Longest silence between response body chunks before the response is cut; 0 for none. Default: 300 s. */
  bodyTimeoutMs?: number;
  /** Sees every connection the forwarder opens, once connected, before a request is written. Default: none. */
  onConnect?: (socket: Socket) => void;
  /** Resolves destination names. Default: the system's (dns.lookup). */
  lookup?: LookupFunction;
  /**
   * The TLS options of a connection to an `https:` origin (its certificate,
   * trust and identity check), asked per connection so that a renewed
   * certificate serves new connections. Throws (a PolicyError) to refuse the
   * connection. Default: none (`https:` origins are not used).
   */
  tls?: (host: string, port: number) => ConnectionOptions;
}

export interface ForwardOptions {
  /** The destination's origin (`http://host:port`); required when the forwarder has no upstream. */
  origin?: string;
  method: string;
  /** Already normalized, with the query. */
  path: string;
  /** From buildUpstreamHeaders. */
  headers: UpstreamHeaders;
  /**
   * Time for the response head to arrive, counted from when the whole request
   * body has been handed to the connection (from the start, with no body).
   */
  timeoutMs: number;
  /** The body to send. Default: `req` itself when its head announces a body, else none. */
  body?: Readable | null;
  /** Extra headers to add to the response, given its status and filtered headers. Default: none. */
  onResponse?: ResponseHook;
  /** Buffers and rewrites a response body (response minimization). Default: every body streams through. */
  rewriteBody?: BodyRewriteHook;
}

export interface UpgradeForwardOptions {
  /** The destination's origin (`http://host:port`); required when the forwarder has no upstream. */
  origin?: string;
  /** Already normalized, with the query. */
  path: string;
  /** From buildUpstreamHeaders (which strips Connection and Upgrade; the protocol is taken from `req`). */
  headers: UpstreamHeaders;
  /** Time for the upstream's answer to the handshake. Default: 10 s. */
  timeoutMs?: number;
}

/**
 * A copy of `source` undici may destroy without destroying `source` itself:
 * undici destroys a request body it could not finish sending, and destroying
 * an IncomingMessage destroys the client socket, which would cut the client
 * before it hears the 503. The unread rest stays in `source` (the answer then
 * closes the connection). `source` failing or ending early fails the copy.
 */
function detach(source: Readable): Readable {
  const copy = new PassThrough();
  const fail = (error?: Error) => copy.destroy(error ?? new Error('the request body ended early'));
  source.once('error', fail);
  source.once('close', () => {
    if (!source.readableEnded) fail();
  });
  source.pipe(copy);
  return copy;
}

const RETRYABLE_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);
const CLIENT_GONE = 'the client closed the connection';

/**
 * undici's connector with the timeout and lookup, TLS with the options of the
 * moment for `https:` origins, telling `onConnect` about each connection it makes.
 */
function watchedConnector(timeout: number, options: ForwarderOptions): BuildConnector.connector {
  const base = { timeout, ...(options.lookup ? { lookup: options.lookup } : {}) };
  const plain = buildConnector(base);
  const { onConnect, tls } = options;
  const connect: BuildConnector.connector = tls
    ? (opts, callback) => {
        if (opts.protocol !== 'https:') return plain(opts, callback);
        let secure: ConnectionOptions;
        try {
          secure = tls(opts.hostname, Number(opts.port));
        } catch (error) {
          callback(error as Error, null);
          return;
        }
        // A connector per connection: the certificate in force may have changed since the last one.
        return buildConnector({ ...base, ...secure } as BuildConnector.BuildOptions)(opts, callback);
      }
    : plain;
  if (!onConnect) return connect;
  return (opts, callback) =>
    connect(opts, (error, socket) => {
      if (socket) onConnect(socket as Socket);
      if (error) callback(error, null);
      else callback(null, socket as Socket);
    });
}

/** The dispatch options naming the destination, when there is one to name. */
function target(origin: string | undefined): { origin?: string } {
  return origin === undefined ? {} : { origin };
}

export class Forwarder {
  readonly #pool: Dispatcher;
  readonly #bodyTimeoutMs: number;

  constructor(options: ForwarderOptions) {
    this.#bodyTimeoutMs = options.bodyTimeoutMs ?? 300_000;
    const timeout = options.connectTimeoutMs ?? 5_000;
    const poolOptions = {
      connections: options.connections ?? 128,
      keepAliveTimeout: options.keepAliveTimeoutMs ?? 4_000,
      pipelining: options.pipelining ?? 1,
      ...(options.onConnect || options.lookup || options.tls
        ? { connect: watchedConnector(timeout, options) }
        : { connectTimeout: timeout }),
    };
    this.#pool = options.upstream ? new Pool(options.upstream.origin, poolOptions) : new Agent(poolOptions);
  }

  /**
   * Sends the request upstream and streams the response to `res`. Resolves
   * when the response has been relayed, when the client went away (the
   * upstream request is then aborted), or when the upstream failed after the
   * response started (the client connection is then destroyed). Rejects, with
   * nothing written to `res`, with ERR_UPSTREAM_UNAVAILABLE, ERR_UPSTREAM_TIMEOUT
   * or ERR_UPSTREAM_FAILED; or with whatever `onResponse` threw.
   */
  async forward(req: IncomingMessage, res: ServerResponse, opts: ForwardOptions): Promise<void> {
    const source = opts.body === undefined ? (announcesBody(req.headers) ? req : null) : opts.body;
    const body = source === null ? null : detach(source);
    const retryable = RETRYABLE_METHODS.has(opts.method) && body === null;
    for (let attempt = 1; ; attempt += 1) {
      const outcome = await this.#attempt(res, opts, body);
      if (outcome.error === null || res.destroyed) return;
      if (outcome.started) {
        res.destroy();
        return;
      }
      if (outcome.internal) throw outcome.error;
      if (retryable && attempt === 1 && isConnectionLost(outcome.error)) continue;
      throw upstreamError(outcome.error);
    }
  }

  #attempt(res: ServerResponse, opts: ForwardOptions, body: Readable | null): Promise<RelayOutcome> {
    return new Promise((resolve) => {
      const onClose = () => {
        if (!res.writableFinished) relay.abort(new Error(CLIENT_GONE));
      };
      const relay = new ResponseRelay({
        res,
        onResponse: opts.onResponse,
        rewriteBody: opts.rewriteBody,
        settle: (outcome) => {
          res.off('close', onClose);
          resolve(outcome);
        },
      });
      res.on('close', onClose);
      if (res.destroyed) relay.abort(new Error(CLIENT_GONE));
      // The app's time starts once it has the whole request: a slow client upload is not its fault.
      if (body === null) relay.armTimeout(opts.timeoutMs);
      else body.once('end', () => relay.armTimeout(opts.timeoutMs));
      this.#pool.dispatch(
        {
          ...target(opts.origin),
          method: opts.method,
          path: opts.path,
          headers: opts.headers,
          body,
          headersTimeout: opts.timeoutMs,
          bodyTimeout: this.#bodyTimeoutMs,
        },
        relay,
      );
    });
  }

  /**
   * Forwards an upgrade request (`req.headers.upgrade` names the protocol;
   * h2c is refused). On `101` the upstream's handshake is written to `socket`
   * and the two connections are spliced until either closes (then it
   * resolves); any other answer is relayed as a plain response and the
   * connection closed (it resolves). Rejects, with nothing written, with the
   * same errors as forward(); the caller answers on the socket.
   */
  forwardUpgrade(
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    opts: UpgradeForwardOptions,
  ): Promise<void> {
    const protocol = req.headers.upgrade;
    if (protocol === undefined || protocol === '' || /(^|,)\s*h2c\s*(,|$)/i.test(protocol)) {
      return Promise.reject(
        new PolicyError('ERR_REQUEST_MALFORMED', 'the upgrade protocol is not supported'),
      );
    }
    return new Promise((resolve, reject) => {
      const onClose = () => relay.abort(new Error(CLIENT_GONE));
      const relay = new UpgradeRelay({
        socket,
        head,
        settle: (outcome) => {
          socket.off('close', onClose);
          if (outcome.error === null || outcome.started || socket.destroyed) resolve();
          else reject(upstreamError(outcome.error));
        },
      });
      socket.once('close', onClose);
      this.#pool.dispatch(
        {
          ...target(opts.origin),
          method: req.method ?? 'GET',
          path: opts.path,
          headers: opts.headers,
          upgrade: protocol,
          headersTimeout: opts.timeoutMs ?? 10_000,
        },
        relay,
      );
    });
  }

  /** Stops taking requests and closes pooled connections once in-flight requests are done. */
  async close(): Promise<void> {
    await this.#pool.close();
  }
}
