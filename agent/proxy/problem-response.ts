/**
 * Writing a denial (problem+json from errors.ts `rescue`) on the two kinds of
 * connection the inbound server hands out: a ServerResponse, and a bare socket
 * (parse errors before a request exists, refused upgrades). Owns the rule for
 * when the connection must close after the answer.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { PolicyError, type ProblemResponse, rescue } from '../errors.ts';
import { announcesBody } from './request-framing.ts';

/** A status the rescue table does not have (408, 431), with the problem title to show. */
export interface StatusOverride {
  status: number;
  title: string;
}

/** rescue(error), with the status and title replaced when `override` is given. */
export function problemFor(error: unknown, requestId: string, override?: StatusOverride): ProblemResponse {
  const problem = rescue(error, requestId);
  if (override === undefined) return problem;
  const parsed: unknown = JSON.parse(problem.body);
  const body = JSON.stringify({ ...(parsed as object), status: override.status, title: override.title });
  return {
    status: override.status,
    headers: { ...problem.headers, 'content-length': String(Buffer.byteLength(body)) },
    body,
  };
}

/** True when the request announced a body that has not been read to its end. */
export function bodyUnread(req: IncomingMessage): boolean {
  return announcesBody(req.headers) && !req.complete;
}

export interface SendProblemOptions {
  /**
   * Close the connection after the answer. Default: when the error is
   * ERR_REQUEST_MALFORMED (framing cannot be trusted) or the request body was
   * not read (so unread bytes are never parsed as the next request, and a
   * client waiting for `100 Continue` is not left hanging).
   */
  close?: boolean;
}

/**
 * Answers `req` with the problem response for `error`. When the response has
 * already started, the only honest signal left is to destroy the connection.
 */
export function sendProblem(
  req: IncomingMessage,
  res: ServerResponse,
  error: unknown,
  requestId: string,
  options: SendProblemOptions = {},
): void {
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  const malformed = error instanceof PolicyError && error.code === 'ERR_REQUEST_MALFORMED';
  const close = options.close ?? (malformed || bodyUnread(req));
  const problem = rescue(error, requestId);
  if (close && bodyUnread(req)) lingerOnClose(req.socket);
  res.writeHead(problem.status, close ? { ...problem.headers, connection: 'close' } : problem.headers);
  res.end(problem.body);
}

/** How long a connection answered before its body was read keeps draining it. */
export const LINGER_MS = 2000;

/**
 * A lingering close, as nginx does: closing a socket with unread request bytes
 * makes the kernel send a reset, and a reset can discard the answer before the
 * client reads it (a client still uploading would see a broken connection, not
 * the 413). So once the answer is flushed the socket is half-closed, the rest
 * of the body is read and dropped (Node's server drains it), and the socket is
 * destroyed when the client closes its side or after LINGER_MS.
 */
function lingerOnClose(socket: Socket): void {
  socket.destroySoon = function lingeringDestroySoon(this: Socket) {
    const timer = setTimeout(() => this.destroy(), LINGER_MS);
    timer.unref();
    this.once('close', () => clearTimeout(timer));
    this.once('end', () => this.destroy());
    if (this.writable) this.end();
  };
}

/** The bytes of a complete HTTP/1.1 response that closes the connection. */
export function rawResponse(status: number, headers: Readonly<Record<string, string>>, body: string): string {
  const lines = [`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}`];
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  lines.push('connection: close', '', body);
  return lines.join('\r\n');
}

/**
 * Writes the problem response for `error` straight onto `socket` and closes it
 * once flushed; writes nothing when the socket can no longer take data.
 */
export function writeSocketProblem(
  socket: Duplex,
  error: unknown,
  requestId: string,
  override?: StatusOverride,
): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const problem = problemFor(error, requestId, override);
  socket.end(rawResponse(problem.status, problem.headers, problem.body), () => socket.destroy());
}
