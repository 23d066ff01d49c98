/**
 * Test clients: raw sockets for bytes a well-behaved HTTP client would never
 * send (or to watch exactly what comes back, byte by byte), and a plain
 * node:http client for ordinary requests.
 */
import { once } from 'node:events';
import { request as httpRequest, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import { connect, type Socket } from 'node:net';

export interface RawExchange {
  /** Everything the server sent, latin1. */
  text: string;
  /** True when the server closed the connection within the wait. */
  closed: boolean;
}

/** Sends `data` as is and collects the answer until the server closes or `waitMs` passes. */
export function rawExchange(port: number, data: string | Buffer, waitMs = 2_000): Promise<RawExchange> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () =>
      socket.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data),
    );
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ text, closed: false });
    }, waitMs);
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ text, closed: true });
    });
  });
}

/** The status code of the first response in `text`, or 0. */
export function statusOf(text: string): number {
  const match = /^HTTP\/1\.[01] (\d{3})/.exec(text);
  return match ? Number(match[1]) : 0;
}

/** The body of the first response in `text` (after the blank line). */
export function bodyOf(text: string): string {
  const at = text.indexOf('\r\n\r\n');
  return at < 0 ? '' : text.slice(at + 4);
}

/** A raw connection whose received bytes can be awaited piece by piece. */
export interface RawClient {
  socket: Socket;
  /** Everything received so far, latin1. */
  text(): string;
  /** Resolves with everything received once it matches `pattern`; rejects after `timeoutMs`. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Resolves when the connection is closed. */
  closed: Promise<void>;
}

export async function openRawClient(port: number): Promise<RawClient> {
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  let received = '';
  socket.on('data', (chunk: Buffer) => {
    received += chunk.toString('latin1');
    socket.emit('received');
  });
  socket.on('error', () => {});
  const closed = once(socket, 'close').then(() => {});
  const waitFor = (pattern: RegExp, timeoutMs = 2_000) =>
    new Promise<string>((resolve, reject) => {
      const check = () => {
        if (!pattern.test(received)) return;
        cleanup();
        resolve(received);
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out waiting for ${pattern}; received ${JSON.stringify(received)}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        socket.off('received', check);
        socket.off('close', check);
      };
      socket.on('received', check);
      socket.on('close', check);
      check();
    });
  return { socket, text: () => received, waitFor, closed };
}

export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface SendOptions {
  method?: string;
  path?: string;
  headers?: OutgoingHttpHeaders;
  body?: string;
}

/** One request over a fresh connection (no agent), body read as UTF-8. */
export function send(port: number, options: SendOptions = {}): Promise<Reply> {
  const { method = 'GET', path = '/', headers = {} } = options;
  return new Promise<Reply>((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, agent: false, method, path, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(options.body);
  });
}
