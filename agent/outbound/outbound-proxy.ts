/**
 * The outbound listener (`--outbound HOST:PORT`): the capture rules redirect
 * the app's outbound TCP here, and each HTTP/1.1 request is forwarded to the
 * destination its target or `Host` header names (destination.ts), over a
 * keep-alive pool per destination, its body and response streamed. No policy
 * is enforced outbound yet (mTLS origination comes later): this is a plain,
 * transparent forward proxy that adds no header. It refuses destinations that
 * are itself (508), answers 400 when the destination cannot be told, 502 when
 * it cannot be reached, 504 when it does not answer in time.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo, LookupFunction, Socket } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { Duplex } from 'node:stream';
import type { Logger } from '../agent.ts';
import type { HostPort } from '../config.ts';
import { PolicyError, RESCUE } from '../errors.ts';
import { Forwarder } from '../proxy/forwarder.ts';
import { createInboundServer, drainServer, type InboundControl } from '../proxy/inbound-server.ts';
import { sendProblem, writeSocketProblem } from '../proxy/problem-response.ts';
import { checkRequestFraming } from '../proxy/request-framing.ts';
import { outboundRequestHeaders, requestIdFrom } from '../proxy/upstream-headers.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import { canonicalAddress, type Destination, destinationOf, isOwnListener } from './destination.ts';

export interface OutboundProxyOptions {
  listen: HostPort;
  logger: Logger;
  metrics: Metrics;
  /** One `info` line per request (`outbound request`). Default true. */
  accessLog?: boolean;
  /** This host's addresses, for the loop check. Default: every address of os.networkInterfaces(). */
  localAddresses?: () => Iterable<string>;
  /** Time for the destination's response head. Default: 30 s. */
  timeoutMs?: number;
  /** Time to connect to the destination. Default: 5 s. */
  connectTimeoutMs?: number;
  /** Resolves destination names. Default: the system's (dns.lookup). */
  lookup?: LookupFunction;
  now?: () => number;
}

const REQUESTS = 'tollgate_outbound_requests_total';
const NOT_HTTP = 'tollgate_outbound_not_http_total';

function interfaceAddresses(): string[] {
  return Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((a) => a.address));
}

function endpoint(address: string | undefined, port: number | undefined): string {
  return `${canonicalAddress(address ?? '')}:${port ?? 0}`;
}

/** What the app sees for a failure: "unavailable" means the destination could not be reached (502). */
function outboundError(e: unknown): unknown {
  if (e instanceof PolicyError && e.code === 'ERR_UPSTREAM_UNAVAILABLE') {
    const mapped = new PolicyError('ERR_OUTBOUND_UNREACHABLE', 'the destination could not be reached');
    mapped.cause = e.cause;
    return mapped;
  }
  return e;
}

const LOOP = () => new PolicyError('ERR_OUTBOUND_LOOP', 'the destination is this outbound proxy');

export class OutboundProxy {
  readonly #options: OutboundProxyOptions;
  readonly #forwarder: Forwarder;
  /** Local ends (`address:port`) of the connections the proxy opened: one arriving here is a loop. */
  readonly #own = new Set<string>();
  readonly #now: () => number;
  #server: Server | undefined;
  #port = 0;
  #lastNotHttpWarning = Number.NEGATIVE_INFINITY;

  constructor(options: OutboundProxyOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#forwarder = new Forwarder({
      upstream: null,
      connectTimeoutMs: options.connectTimeoutMs ?? 5_000,
      onConnect: (socket) => this.#track(socket),
      ...(options.lookup ? { lookup: options.lookup } : {}),
    });
  }

  /** Starts listening; resolves with the bound address. */
  start(): Promise<AddressInfo> {
    const server = createInboundServer({
      onRequest: (req, res, ctl) => this.#handle(req, res, ctl),
      onUpgrade: (req, socket, head) => this.#handleUpgrade(req, socket, head),
    });
    server.on('clientError', (e: Error & { code?: string }) => this.#notHttp(e));
    this.#server = server;
    const { host, port } = this.#options.listen;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        const address = server.address() as AddressInfo;
        this.#port = address.port;
        resolve(address);
      });
    });
  }

  /** Graceful stop: no new connections, in-flight requests finish (up to timeoutMs). */
  async stop(timeoutMs: number): Promise<void> {
    if (this.#server) await drainServer(this.#server, { timeoutMs });
    await this.#forwarder.close();
  }

  #track(socket: Socket): void {
    const key = endpoint(socket.localAddress, socket.localPort);
    this.#own.add(key);
    socket.once('close', () => this.#own.delete(key));
  }

  /** The destination, or the reason to refuse the request. */
  #destination(req: IncomingMessage): Destination {
    if (this.#own.has(endpoint(req.socket.remoteAddress, req.socket.remotePort))) throw LOOP();
    const host = req.headers.host;
    const dest = destinationOf(req.url ?? '', typeof host === 'string' ? host : undefined);
    const local = this.#options.localAddresses ?? interfaceAddresses;
    if (dest.port === this.#port && isOwnListener(dest, this.#port, local())) throw LOOP();
    return dest;
  }

  #handle(req: IncomingMessage, res: ServerResponse, ctl: InboundControl): void {
    const started = this.#now();
    let dest: Destination | null = null;
    res.once('close', () => this.#record(req, res.headersSent ? res.statusCode : null, dest, started));
    const run = async () => {
      const framing = checkRequestFraming(req);
      if (framing) throw framing;
      dest = this.#destination(req);
      ctl.continue();
      await this.#forwarder.forward(req, res, {
        origin: dest.origin,
        method: req.method ?? 'GET',
        path: dest.path,
        headers: outboundRequestHeaders(req),
        timeoutMs: this.#options.timeoutMs ?? 30_000,
      });
    };
    run().catch((e: unknown) => this.#refuse(req, e, (err, id) => sendProblem(req, res, err, id)));
  }

  #handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const started = this.#now();
    let dest: Destination | null = null;
    const run = async () => {
      const framing = checkRequestFraming(req);
      if (framing) throw framing;
      dest = this.#destination(req);
      await this.#forwarder.forwardUpgrade(req, socket, head, {
        origin: dest.origin,
        path: dest.path,
        headers: outboundRequestHeaders(req),
      });
      this.#record(req, 101, dest, started);
    };
    run().catch((e: unknown) =>
      this.#refuse(req, e, (err, id) => {
        writeSocketProblem(socket, err, id);
        this.#record(req, err instanceof PolicyError ? RESCUE[err.code].status : 500, dest, started);
      }),
    );
  }

  #refuse(req: IncomingMessage, e: unknown, answer: (error: unknown, requestId: string) => void): void {
    const error = outboundError(e);
    if (!(error instanceof PolicyError))
      this.#options.logger.error({ err: String(error) }, 'outbound request failed');
    answer(error, requestIdFrom(req));
  }

  /** The access line and the counter, once the exchange is over (status null: no response was sent). */
  #record(req: IncomingMessage, status: number | null, dest: Destination | null, started: number): void {
    const label = status === null ? 'aborted' : String(status);
    this.#options.metrics.inc(REQUESTS, { status: label }, 1, 'Outbound requests of the app, by status');
    if (this.#options.accessLog === false) return;
    const url = req.url ?? '';
    this.#options.logger.info(
      {
        event: 'tollgate.outbound',
        method: req.method,
        destination: dest?.authority ?? null,
        path: dest ? dest.path.split('?')[0] : url.split('?')[0],
        status: label,
        latencyMs: this.#now() - started,
      },
      'outbound request',
    );
  }

  /** Bytes that are not HTTP/1.1 (TLS, a database protocol): the port should not be captured. */
  #notHttp(e: Error & { code?: string }): void {
    if (e.code === 'ECONNRESET' || e.code === 'ERR_HTTP_REQUEST_TIMEOUT') return;
    this.#options.metrics.inc(NOT_HTTP, {}, 1, 'Outbound connections that were not HTTP/1.1');
    const now = this.#now();
    if (now - this.#lastNotHttpWarning < 60_000) return;
    this.#lastNotHttpWarning = now;
    this.#options.logger.warn(
      { code: e.code ?? null },
      'outbound connection is not HTTP/1.1: exclude its port or CIDR from capture',
    );
  }
}
