/**
 * The inbound HTTP/1.1 listener: node:http with the strict parser and bounded
 * timeouts, problem+json answers for bytes that never became a request, the
 * `Expect: 100-continue` hand-off (the 100 goes out only once the pipeline has
 * allowed the request), upgrade routing, and graceful drain. It decides
 * nothing about policy: every parsed request goes to `onRequest`.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { PolicyError } from '../errors.ts';
import { sendProblem, writeSocketProblem } from './problem-response.ts';
import { requestIdFrom } from './upstream-headers.ts';

/** What the pipeline may do with the connection beyond answering. */
export interface InboundControl {
  /** True when the client sent `Expect: 100-continue` and waits before sending the body. */
  readonly expectsContinue: boolean;
  /**
   * Sends `100 Continue` when the client expects it (at most once, never after
   * a response started). Call only once the request is allowed: until then a
   * denial is the final response and closes the connection.
   */
  continue(): void;
}

export interface InboundServerOptions {
  /** Every parsed request (including ones expecting 100-continue, and refused upgrades such as h2c). */
  onRequest(req: IncomingMessage, res: ServerResponse, ctl: InboundControl): void;
  /** Accepted upgrade requests (any protocol but h2c); the socket already has an error listener. */
  onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** Largest request head in bytes. Default: 16 KiB. */
  maxHeaderSize?: number;
  /** Time to receive the request head. Default: 10 s. */
  headersTimeoutMs?: number;
  /** Time to receive the whole request. Default: 60 s. */
  requestTimeoutMs?: number;
  /** Idle time before a keep-alive connection is closed. Default: 5 s. */
  keepAliveTimeoutMs?: number;
  /** Open connections beyond which new ones are dropped. Default: 4096. */
  maxConnections?: number;
  /** Requests per keep-alive connection, 0 for unlimited. Default: 0. */
  maxRequestsPerSocket?: number;
}

interface ServerState {
  draining: boolean;
  /**
   * Open connections, so a drain can mark the response each is writing
   * `Connection: close`. Connections, not responses: a Set that every request
   * joins and leaves keeps each request's objects alive through young-generation
   * collections (V8 then promotes them all: 10x the scavenge pauses).
   */
  readonly connections: Set<Duplex>;
  readonly upgraded: Set<Duplex>;
}

/** Per-server state drainServer needs; keyed weakly so servers are collected normally. */
const states = new WeakMap<Server, ServerState>();

/** h2c is never upgraded to: such requests are served as plain HTTP/1.1 (Upgrade is not forwarded). */
function acceptsUpgrade(req: IncomingMessage): boolean {
  const protocols = (req.headers.upgrade ?? '').toLowerCase().split(',');
  return protocols.every((p) => p.trim() !== 'h2c');
}

function handleRequest(
  options: InboundServerOptions,
  state: ServerState,
  req: IncomingMessage,
  res: ServerResponse,
  expectsContinue: boolean,
): void {
  // Until the 100 is sent the client may hold its body back: a denial must close the connection.
  if (state.draining || expectsContinue) res.setHeader('connection', 'close');
  let continued = false;
  const ctl: InboundControl = {
    expectsContinue,
    continue() {
      if (!expectsContinue || continued || res.headersSent) return;
      continued = true;
      if (!state.draining) res.removeHeader('connection');
      res.writeContinue();
    },
  };
  try {
    options.onRequest(req, res, ctl);
  } catch (error) {
    sendProblem(req, res, error, requestIdFrom(req));
  }
}

function handleUpgrade(
  options: InboundServerOptions,
  state: ServerState,
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
): void {
  // After an upgrade node:http no longer listens for socket errors; an unheard one would crash the process.
  socket.on('error', () => socket.destroy());
  if (state.draining) {
    writeSocketProblem(
      socket,
      new PolicyError('ERR_UPSTREAM_UNAVAILABLE', 'the server is shutting down'),
      requestIdFrom(req),
    );
    return;
  }
  state.upgraded.add(socket);
  socket.once('close', () => state.upgraded.delete(socket));
  try {
    options.onUpgrade(req, socket, head);
  } catch (error) {
    writeSocketProblem(socket, error, requestIdFrom(req));
  }
}

/** True when a response on this socket already put bytes on the wire (writing a raw answer would corrupt it). */
function responseStarted(socket: Duplex): boolean {
  const current: unknown = Reflect.get(socket, '_httpMessage');
  return current instanceof ServerResponse && current.headersSent;
}

/** Bytes that never became a request: 408 for a timeout, 431 for an oversized head, else 400; then close. */
function handleClientError(error: Error & { code?: string }, socket: Duplex): void {
  if (error.code === 'ECONNRESET' || !socket.writable || responseStarted(socket)) {
    socket.destroy();
    return;
  }
  const id = randomUUID();
  if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    const timeout = new PolicyError('ERR_REQUEST_MALFORMED', 'the request was not received in time');
    writeSocketProblem(socket, timeout, id, { status: 408, title: 'Request timeout' });
  } else if (error.code === 'HPE_HEADER_OVERFLOW') {
    const large = new PolicyError('ERR_REQUEST_MALFORMED', 'the request head is too large');
    writeSocketProblem(socket, large, id, { status: 431, title: 'Request header fields too large' });
  } else {
    writeSocketProblem(
      socket,
      new PolicyError('ERR_REQUEST_MALFORMED', 'the request could not be parsed'),
      id,
    );
  }
}

/**
 * An HTTP/1.1 server (not yet listening) that hands every request to
 * `options.onRequest` and every accepted upgrade to `options.onUpgrade`.
 * CONNECT is answered 405. Parser settings: strict, Host required on
 * HTTP/1.1, duplicate headers not joined (see request-framing.ts).
 */
export function createInboundServer(options: InboundServerOptions): Server {
  const headersTimeout = options.headersTimeoutMs ?? 10_000;
  const server = createServer({
    insecureHTTPParser: false,
    requireHostHeader: true,
    joinDuplicateHeaders: false,
    maxHeaderSize: options.maxHeaderSize ?? 16 * 1024,
    headersTimeout,
    requestTimeout: options.requestTimeoutMs ?? 60_000,
    keepAliveTimeout: options.keepAliveTimeoutMs ?? 5_000,
    // Node checks the two timeouts on this interval (default 30 s), which would make them late by that much.
    connectionsCheckingInterval: Math.max(10, Math.min(1_000, Math.floor(headersTimeout / 4))),
    shouldUpgradeCallback: acceptsUpgrade,
  });
  server.maxConnections = options.maxConnections ?? 4096;
  server.maxRequestsPerSocket = options.maxRequestsPerSocket ?? 0;
  const state: ServerState = { draining: false, connections: new Set(), upgraded: new Set() };
  server.on('connection', (socket: Duplex) => {
    state.connections.add(socket);
    socket.once('close', () => state.connections.delete(socket));
  });
  states.set(server, state);
  server.on('request', (req, res) => handleRequest(options, state, req, res, false));
  server.on('checkContinue', (req, res) => handleRequest(options, state, req, res, true));
  server.on('upgrade', (req, socket, head) => handleUpgrade(options, state, req, socket, head));
  server.on('connect', (req, socket) => {
    socket.on('error', () => socket.destroy());
    const refused = new PolicyError('ERR_ROUTE_METHOD', 'CONNECT is not supported', {
      allow: 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS',
    });
    writeSocketProblem(socket, refused, requestIdFrom(req));
  });
  server.on('clientError', handleClientError);
  return server;
}

export interface DrainOptions {
  /** How long in-flight requests (and upgraded connections) may run before they are cut. */
  timeoutMs: number;
}

/**
 * Graceful shutdown: stop accepting, close idle keep-alive connections (and
 * each one as it goes idle), answer any request that still arrives with
 * `Connection: close`, let in-flight requests finish, and destroy whatever is
 * left after `timeoutMs`. Resolves once the server is closed.
 */
export async function drainServer(server: Server, options: DrainOptions): Promise<void> {
  const state = states.get(server);
  if (state) {
    state.draining = true;
    for (const socket of state.connections) {
      const res: unknown = Reflect.get(socket, '_httpMessage');
      if (res instanceof ServerResponse && !res.headersSent) res.setHeader('connection', 'close');
    }
  }
  let closed = false;
  const done = new Promise<void>((resolve) => {
    server.close(() => {
      closed = true;
      resolve();
    });
  });
  server.closeIdleConnections();
  const sweep = setInterval(() => server.closeIdleConnections(), 50);
  const deadline = new AbortController();
  try {
    await Promise.race([
      done,
      sleep(options.timeoutMs, undefined, { signal: deadline.signal }).catch(() => {}),
    ]);
    if (!closed) {
      server.closeAllConnections();
      for (const socket of state?.upgraded ?? []) socket.destroy();
      await done;
    }
  } finally {
    clearInterval(sweep);
    deadline.abort();
  }
}
