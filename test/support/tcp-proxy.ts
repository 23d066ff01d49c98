/**
 * A loopback TCP proxy for tests that need the network between a client and
 * a server (the Kubernetes API test server, say) to fail and come back on the
 * same address: `up` forwards bytes, `reset` drops every open connection and
 * resets new ones (an unreachable API), `http500` answers every new
 * connection's first request with a bare 500 and closes it (a broken API),
 * `stall` accepts connections and never answers (a hung API).
 */

import type { AddressInfo } from 'node:net';
import { connect, createServer, type Server, type Socket } from 'node:net';

/** What the proxy does with connections. */
export type ProxyMode = 'up' | 'reset' | 'http500' | 'stall';

const HTTP_500_BODY = JSON.stringify({
  kind: 'Status',
  apiVersion: 'v1',
  metadata: {},
  status: 'Failure',
  message: 'injected failure',
  reason: 'InternalError',
  code: 500,
});
const HTTP_500 = [
  'HTTP/1.1 500 Internal Server Error',
  'content-type: application/json',
  `content-length: ${Buffer.byteLength(HTTP_500_BODY)}`,
  'connection: close',
  '',
  HTTP_500_BODY,
].join('\r\n');

/** A TCP proxy on a loopback address (127.0.0.1 unless told) in front of `target`. */
export class TcpProxy {
  readonly #server: Server;
  readonly #target: { host: string; port: number };
  readonly #sockets = new Set<Socket>();
  #mode: ProxyMode = 'up';
  #connections = 0;

  private constructor(target: URL) {
    this.#target = { host: target.hostname, port: Number(target.port) };
    this.#server = createServer((socket) => this.#accept(socket));
  }

  /**
   * Starts a proxy on a free port forwarding to `target` (`http://HOST:PORT`);
   * `host` is its loopback address (another one, such as 127.0.0.3, stands
   * for a Service's cluster IP in front of a pod).
   */
  static async start(target: string, host = '127.0.0.1'): Promise<TcpProxy> {
    const proxy = new TcpProxy(new URL(target));
    await new Promise<void>((resolve) => proxy.#server.listen(0, host, resolve));
    return proxy;
  }

  /** `http://HOST:PORT` */
  get url(): string {
    const { address, port } = this.#server.address() as AddressInfo;
    return `http://${address}:${port}`;
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  /** Connections accepted so far, in any mode. */
  get connections(): number {
    return this.#connections;
  }

  get mode(): ProxyMode {
    return this.#mode;
  }

  /** Switches mode; leaving `up` drops every open connection. */
  setMode(mode: ProxyMode): void {
    this.#mode = mode;
    if (mode !== 'up') for (const socket of this.#sockets) socket.destroy();
  }

  /** Stops the proxy and drops its connections. */
  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #track(socket: Socket): void {
    this.#sockets.add(socket);
    socket.on('close', () => this.#sockets.delete(socket));
    socket.on('error', () => {});
  }

  #accept(client: Socket): void {
    this.#connections++;
    this.#track(client);
    if (this.#mode === 'reset') {
      client.resetAndDestroy();
      return;
    }
    if (this.#mode === 'stall') {
      client.resume();
      return;
    }
    if (this.#mode === 'http500') {
      client.once('data', () => client.end(HTTP_500));
      return;
    }
    const upstream = connect(this.#target);
    this.#track(upstream);
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  }
}
