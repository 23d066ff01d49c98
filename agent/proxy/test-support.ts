/**
 * Test fixtures for the proxy pieces: an upstream that records what it
 * received, and a proxy wired the way the pipeline will wire these pieces.
 * Everything listens on 127.0.0.1:0; `Fixtures` closes what a file started.
 */

import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo, Server as NetServer } from 'node:net';
import type { PolicyError } from '../errors.ts';
import { Forwarder, type ForwarderOptions } from './forwarder.ts';
import { createInboundServer, type InboundServerOptions } from './inbound-server.ts';
import { sendProblem, writeSocketProblem } from './problem-response.ts';
import { checkRequestFraming } from './request-framing.ts';
import type { ResponseHook } from './response-relay.ts';
import { buildUpstreamHeaders, requestIdFrom } from './upstream-headers.ts';

export async function listen(server: NetServer): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

export async function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/** What the upstream received for one request. */
export interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  rawHeaders: string[];
  body: Buffer;
}

export interface Upstream {
  url: URL;
  server: Server;
  seen: Seen[];
  close(): Promise<void>;
}

/** Answers 200 with a JSON summary once the body is read. */
function echo(req: IncomingMessage, res: ServerResponse, seen: Seen): void {
  req.on('end', () => {
    const summary = JSON.stringify({ method: seen.method, url: seen.url, bodyLength: seen.body.length });
    res.writeHead(200, { 'content-type': 'application/json', 'x-upstream': 'yes' }).end(summary);
  });
}

/** An upstream that records every request (body included) and answers with `handler` (default: echo). */
export async function startUpstream(
  handler: (req: IncomingMessage, res: ServerResponse, seen: Seen) => void = echo,
): Promise<Upstream> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    const entry: Seen = {
      method: req.method ?? '',
      url: req.url ?? '',
      headers: req.headers,
      rawHeaders: req.rawHeaders,
      body: Buffer.alloc(0),
    };
    seen.push(entry);
    req.on('data', (chunk: Buffer) => {
      entry.body = Buffer.concat([entry.body, chunk]);
    });
    handler(req, res, entry);
  });
  const port = await listen(server);
  return { url: new URL(`http://127.0.0.1:${port}`), server, seen, close: () => closeServer(server) };
}

export interface ProxyFixture {
  port: number;
  server: Server;
  forwarder: Forwarder;
  close(): Promise<void>;
}

export interface ProxyFixtureOptions {
  upstream: URL;
  timeoutMs?: number;
  remove?: string[];
  set?: Record<string, string>;
  /** A stand-in for the policy pipeline: a PolicyError denies. */
  deny?: (req: IncomingMessage) => PolicyError | null;
  forwarder?: Partial<ForwarderOptions>;
  onResponse?: ResponseHook;
  server?: Omit<InboundServerOptions, 'onRequest' | 'onUpgrade'>;
}

/** The inbound server, framing check, header rewrite and forwarder, wired as the pipeline will. */
export async function startProxy(options: ProxyFixtureOptions): Promise<ProxyFixture> {
  const forwarder = new Forwarder({ ...options.forwarder, upstream: options.upstream });
  const headersFor = (req: IncomingMessage, requestId: string) =>
    buildUpstreamHeaders(req, {
      clientIp: req.socket.remoteAddress ?? '',
      proto: 'http',
      requestId,
      remove: options.remove ?? [],
      set: options.set ?? {},
    });
  const hook = options.onResponse ? { onResponse: options.onResponse } : {};
  const server = createInboundServer({
    ...options.server,
    onRequest(req, res, ctl) {
      const id = requestIdFrom(req);
      const denial = checkRequestFraming(req) ?? options.deny?.(req) ?? null;
      if (denial) return sendProblem(req, res, denial, id);
      ctl.continue();
      const forwarding = { method: req.method ?? 'GET', path: req.url ?? '/', headers: headersFor(req, id) };
      forwarder
        .forward(req, res, { ...forwarding, timeoutMs: options.timeoutMs ?? 5_000, ...hook })
        .catch((error: unknown) => sendProblem(req, res, error, id));
    },
    onUpgrade(req, socket, head) {
      const id = requestIdFrom(req);
      const denial = checkRequestFraming(req) ?? options.deny?.(req) ?? null;
      if (denial) return writeSocketProblem(socket, denial, id);
      forwarder
        .forwardUpgrade(req, socket, head, { path: req.url ?? '/', headers: headersFor(req, id) })
        .catch((error: unknown) => writeSocketProblem(socket, error, id));
    },
  });
  const port = await listen(server);
  return {
    port,
    server,
    forwarder,
    async close() {
      await closeServer(server);
      await forwarder.close();
    },
  };
}

/** Starts upstreams and proxies for one test file and closes them all, newest first. */
export class Fixtures {
  readonly #closers: Array<() => Promise<void>> = [];

  async upstream(handler?: Parameters<typeof startUpstream>[0]): Promise<Upstream> {
    const upstream = await startUpstream(handler);
    this.#closers.push(upstream.close);
    return upstream;
  }

  async proxy(options: ProxyFixtureOptions): Promise<ProxyFixture> {
    const proxy = await startProxy(options);
    this.#closers.push(proxy.close);
    return proxy;
  }

  /** Registers anything else to close. */
  add(close: () => Promise<void>): void {
    this.#closers.push(close);
  }

  async closeAll(): Promise<void> {
    for (const close of this.#closers.reverse()) await close();
    this.#closers.length = 0;
  }
}
