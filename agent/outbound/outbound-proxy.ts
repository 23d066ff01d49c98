/**
 * The outbound listener (`--outbound HOST:PORT`): the capture rules redirect
 * the app's outbound TCP here, and each HTTP/1.1 request is forwarded to the
 * destination its target or `Host` header names (destination.ts), over a
 * keep-alive pool per destination, its body and response streamed. No policy
 * is enforced outbound; the proxy adds no header. A destination in the mesh
 * (mesh.ts: its address and port are where a Tollgate agent answers) is sent
 * over mTLS with this sidecar's workload certificate, and must prove one of
 * the SPIFFE IDs the mesh lists for it; any other destination is passed
 * through in plaintext. It refuses destinations that are itself (508),
 * answers 400 when the destination cannot be told, 502 when it cannot be
 * reached or does not prove its identity, 503 when a meshed destination is
 * called before this sidecar has a certificate, 504 when it does not answer in
 * time.
 */

import { lookup as dnsLookup } from 'node:dns';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo, LookupFunction, Socket } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { Duplex } from 'node:stream';
import type { ConnectionOptions, PeerCertificate } from 'node:tls';
import ipaddr from 'ipaddr.js';
import { LRUCache } from 'lru-cache';
import type { Logger } from '../agent.ts';
import type { HostPort } from '../config.ts';
import { PolicyError, RESCUE } from '../errors.ts';
import { type IdentityProvider, spiffeIdOf } from '../identity/tls-identity.ts';
import { Forwarder } from '../proxy/forwarder.ts';
import { createInboundServer, drainServer, type InboundControl } from '../proxy/inbound-server.ts';
import { sendProblem, writeSocketProblem } from '../proxy/problem-response.ts';
import { checkRequestFraming } from '../proxy/request-framing.ts';
import { errorCode } from '../proxy/upstream-errors.ts';
import { outboundRequestHeaders, requestIdFrom } from '../proxy/upstream-headers.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import { canonicalAddress, type Destination, destinationOf, isOwnListener } from './destination.ts';
import type { MeshDirectory } from './mesh.ts';

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
  /** The meshed destinations (sent over mTLS). Default: none. */
  mesh?: MeshDirectory;
  /** This sidecar's workload identity, presented to meshed destinations. None: they get plaintext. */
  identity?: IdentityProvider | null;
  now?: () => number;
}

/** Where a request goes: its origin, and for a meshed destination the identities it may prove. */
interface Route {
  origin: string;
  identities: readonly string[] | null;
}

/** How long a resolved destination name is trusted for the mesh lookup. */
const RESOLVED_TTL_MS = 5_000;

const REQUESTS = 'tollgate_outbound_requests_total';
const NOT_HTTP = 'tollgate_outbound_not_http_total';

function interfaceAddresses(): string[] {
  return Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((a) => a.address));
}

function endpoint(address: string | undefined, port: number | undefined): string {
  return `${canonicalAddress(address ?? '')}:${port ?? 0}`;
}

/**
 * What the app sees for a failure: "unavailable" means the destination could
 * not be reached (502); over mTLS, a handshake that failed means it did not
 * prove a mesh identity (502).
 */
function outboundError(e: unknown, route: Route | null): unknown {
  if (!(e instanceof PolicyError)) return e;
  let mapped: PolicyError | null = null;
  if (e.code === 'ERR_UPSTREAM_UNAVAILABLE')
    mapped = new PolicyError('ERR_OUTBOUND_UNREACHABLE', 'the destination could not be reached');
  else if (e.code === 'ERR_UPSTREAM_FAILED' && route?.identities && isTlsFailure(errorCode(e.cause)))
    mapped = new PolicyError(
      'ERR_OUTBOUND_MTLS',
      'the meshed destination did not complete mTLS with an identity the mesh lists for it',
    );
  if (!mapped) return e;
  mapped.cause = e.cause;
  return mapped;
}

/** A TLS handshake or verification failure (Node's ERR_TLS_/ERR_SSL_ codes, OpenSSL's verify codes), not a bad answer. */
function isTlsFailure(code: string | undefined): boolean {
  if (code === undefined) return false;
  if (/^ERR_(TLS|SSL)_/.test(code) || code === 'EPROTO') return true;
  return /^[A-Z0-9_]+$/.test(code) && !/^(E[A-Z]+|ERR_.*|UND_ERR_.*|HPE_.*)$/.test(code);
}

/** Why a meshed destination's certificate is refused (Node's checkServerIdentity contract: an Error or undefined). */
function identityCheck(identities: readonly string[]) {
  return (_host: string, cert: PeerCertificate): Error | undefined => {
    const id = spiffeIdOf(cert.subjectaltname);
    if (id !== null && identities.includes(id)) return undefined;
    return Object.assign(
      new Error(`the destination presented ${id ?? 'no single SPIFFE ID'}, not ${identities.join(' or ')}`),
      { code: 'ERR_TLS_PEER_IDENTITY' },
    );
  };
}

const LOOP = () => new PolicyError('ERR_OUTBOUND_LOOP', 'the destination is this outbound proxy');

export class OutboundProxy {
  readonly #options: OutboundProxyOptions;
  readonly #forwarder: Forwarder;
  /** Local ends (`address:port`) of the connections the proxy opened: one arriving here is a loop. */
  readonly #own = new Set<string>();
  readonly #now: () => number;
  /** Destination names → address, for the mesh lookup (the connection then goes to that address). */
  readonly #resolved = new LRUCache<string, string>({ max: 1024, ttl: RESOLVED_TTL_MS });
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
      tls: (host, port) => this.#tlsOptions(host, port),
    });
  }

  /** The TLS options for a connection to a meshed destination: the certificate in force, its identity check. */
  #tlsOptions(host: string, port: number): ConnectionOptions {
    const current = this.#options.identity?.current;
    if (!current)
      throw new PolicyError('ERR_OUTBOUND_NO_IDENTITY', 'this sidecar has no workload certificate yet');
    const address = host.replace(/^\[|\]$/g, '');
    const identities = this.#options.mesh?.lookup(address, port);
    if (!identities)
      throw new PolicyError('ERR_OUTBOUND_UNREACHABLE', 'the destination left the mesh; retry the request');
    return {
      secureContext: current.context,
      rejectUnauthorized: true,
      ALPNProtocols: ['http/1.1'],
      checkServerIdentity: identityCheck(identities),
    };
  }

  /**
   * The route of a destination: over mTLS to its address when the mesh lists
   * it (and this sidecar has an identity to present), else as it was named.
   */
  async #route(dest: Destination): Promise<Route> {
    const plain = { origin: dest.origin, identities: null };
    const mesh = this.#options.mesh;
    if (!mesh || mesh.size === 0 || !this.#options.identity) return plain;
    const address = ipaddr.isValid(dest.host) ? dest.host : await this.#resolve(dest.host);
    if (address === null) return plain;
    const identities = mesh.lookup(address, dest.port);
    if (!identities) return plain;
    const host = canonicalAddress(address);
    return { origin: `https://${host.includes(':') ? `[${host}]` : host}:${dest.port}`, identities };
  }

  /** The destination name's address (cached briefly), null when it does not resolve. */
  async #resolve(name: string): Promise<string | null> {
    const known = this.#resolved.get(name);
    if (known !== undefined) return known;
    const lookup = this.#options.lookup ?? (dnsLookup as LookupFunction);
    const address = await new Promise<string | null>((resolve) => {
      lookup(name, {}, (error, result) => resolve(error || typeof result !== 'string' ? null : result));
    });
    if (address !== null) this.#resolved.set(name, address);
    return address;
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
    let route: Route | null = null;
    res.once('close', () => this.#record(req, res.headersSent ? res.statusCode : null, dest, route, started));
    const run = async () => {
      const framing = checkRequestFraming(req);
      if (framing) throw framing;
      dest = this.#destination(req);
      route = await this.#route(dest);
      ctl.continue();
      await this.#forwarder.forward(req, res, {
        origin: route.origin,
        method: req.method ?? 'GET',
        path: dest.path,
        headers: outboundRequestHeaders(req),
        timeoutMs: this.#options.timeoutMs ?? 30_000,
      });
    };
    run().catch((e: unknown) => this.#refuse(req, e, route, (err, id) => sendProblem(req, res, err, id)));
  }

  #handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const started = this.#now();
    let dest: Destination | null = null;
    let route: Route | null = null;
    const run = async () => {
      const framing = checkRequestFraming(req);
      if (framing) throw framing;
      dest = this.#destination(req);
      route = await this.#route(dest);
      await this.#forwarder.forwardUpgrade(req, socket, head, {
        origin: route.origin,
        path: dest.path,
        headers: outboundRequestHeaders(req),
      });
      this.#record(req, 101, dest, route, started);
    };
    run().catch((e: unknown) =>
      this.#refuse(req, e, route, (err, id) => {
        writeSocketProblem(socket, err, id);
        const status = err instanceof PolicyError ? RESCUE[err.code].status : 500;
        this.#record(req, status, dest, route, started);
      }),
    );
  }

  #refuse(
    req: IncomingMessage,
    e: unknown,
    route: Route | null,
    answer: (error: unknown, requestId: string) => void,
  ): void {
    const error = outboundError(e, route);
    if (error instanceof PolicyError && error.code === 'ERR_OUTBOUND_MTLS')
      this.#options.logger.warn(
        { destination: route?.origin ?? null, error: String((error.cause as Error | undefined)?.message) },
        'outbound mTLS refused',
      );
    if (!(error instanceof PolicyError))
      this.#options.logger.error({ err: String(error) }, 'outbound request failed');
    answer(error, requestIdFrom(req));
  }

  /** The access line and the counter, once the exchange is over (status null: no response was sent). */
  #record(
    req: IncomingMessage,
    status: number | null,
    dest: Destination | null,
    route: Route | null,
    started: number,
  ): void {
    const label = status === null ? 'aborted' : String(status);
    const mtls = route?.identities ? 'true' : 'false';
    this.#options.metrics.inc(
      REQUESTS,
      { status: label, mtls },
      1,
      'Outbound requests of the app, by status and whether they went over mTLS',
    );
    if (this.#options.accessLog === false) return;
    const url = req.url ?? '';
    this.#options.logger.info(
      {
        event: 'tollgate.outbound',
        method: req.method,
        destination: dest?.authority ?? null,
        mtls: route?.identities != null,
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
