/**
 * The admission webhook endpoint: HTTPS (node:https) serving AdmissionReview
 * v1 on the handler paths (`/inject`, `/validate`) and `GET /healthz`.
 *
 * Every request is untrusted until checked: POST only (405), a JSON content
 * type (415), a body under the size limit (413), a parseable AdmissionReview
 * v1 with a request and a uid (400, the message says what is wrong). A handler
 * that throws never takes the server down: the review is answered with a
 * denial (500 in its status), since the webhooks fail closed. The TLS
 * certificate is swapped in place (`setSecureContext`) when it is renewed.
 */

import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { PemPair } from '../ca/certificates.ts';
import { errorFields, type KubeLogger, silentLogger } from '../kube/log.ts';
import {
  type AdmissionRequest,
  type AdmissionResult,
  AdmissionReviewError,
  admissionResponse,
  parseAdmissionReview,
} from './admission-review.ts';

export type AdmissionHandler = (request: AdmissionRequest) => AdmissionResult | Promise<AdmissionResult>;

export interface WebhookServerOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  tls: PemPair;
  /** Path → handler, e.g. `{ '/inject': ..., '/validate': ... }`. */
  handlers: Readonly<Record<string, AdmissionHandler>>;
  /** Largest accepted body. Default 6 MiB (an object and its old version at etcd's 1.5 MiB each, with room). */
  maxBodyBytes?: number;
  /** Time a request has to arrive whole. Default 10 s (the API server waits at most 30 s). */
  requestTimeoutMs?: number;
  log?: KubeLogger;
}

class HttpError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

export class WebhookServer {
  readonly #o: WebhookServerOptions;
  readonly #log: KubeLogger;
  readonly #server: Server;

  constructor(options: WebhookServerOptions) {
    this.#o = options;
    this.#log = options.log ?? silentLogger;
    this.#server = createServer(
      { cert: options.tls.cert, key: options.tls.key, minVersion: 'TLSv1.2' },
      (req, res) => {
        this.#handle(req, res).catch((error: unknown) => {
          this.#log.error({ ...errorFields(error) }, 'webhook request failed');
          if (!res.headersSent) this.#plain(res, 500, 'internal error');
          else res.destroy();
        });
      },
    );
    this.#server.requestTimeout = options.requestTimeoutMs ?? 10_000;
    this.#server.headersTimeout = Math.min(this.#server.requestTimeout, 10_000);
    this.#server.on('tlsClientError', (error) =>
      this.#log.debug({ ...errorFields(error) }, 'webhook TLS handshake failed'),
    );
  }

  /** Listens; resolves with the port. */
  async start(): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.#o.port, this.#o.host, () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
    return (this.#server.address() as AddressInfo).port;
  }

  /** Presents `pair` on new connections from now on. */
  setTls(pair: PemPair): void {
    this.#server.setSecureContext({ cert: pair.cert, key: pair.key, minVersion: 'TLSv1.2' });
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?', 1)[0] ?? '/';
    if (path === '/healthz') {
      if (req.method !== 'GET' && req.method !== 'HEAD')
        return this.#plain(res, 405, 'use GET', { allow: 'GET, HEAD' });
      return this.#plain(res, 200, 'ok');
    }
    const handler = Object.hasOwn(this.#o.handlers, path) ? this.#o.handlers[path] : undefined;
    if (!handler) return this.#plain(res, 404, `no webhook at ${path}`);
    let request: AdmissionRequest;
    try {
      if (req.method !== 'POST') throw new HttpError(405, 'an AdmissionReview must be POSTed');
      const type = (req.headers['content-type'] ?? '').split(';', 1)[0]?.trim().toLowerCase();
      if (type !== 'application/json')
        throw new HttpError(415, `content-type must be application/json, got ${JSON.stringify(type ?? '')}`);
      request = parseAdmissionReview(await this.#json(req));
    } catch (error) {
      if (error instanceof HttpError)
        return this.#plain(res, error.status, error.message, error.status === 405 ? { allow: 'POST' } : {});
      if (error instanceof AdmissionReviewError)
        return this.#plain(res, 400, `invalid AdmissionReview: ${error.message}`);
      throw error;
    }
    const result = await this.#decide(handler, request, path);
    const body = JSON.stringify(admissionResponse(request.uid, result));
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  }

  async #decide(
    handler: AdmissionHandler,
    request: AdmissionRequest,
    path: string,
  ): Promise<AdmissionResult> {
    const fields = {
      webhook: path,
      uid: request.uid,
      operation: request.operation,
      kind: request.kind.kind,
      namespace: request.namespace,
      name: request.name,
    };
    try {
      const result = await handler(request);
      this.#log.debug(
        { ...fields, allowed: result.allowed, patched: (result.patch?.length ?? 0) > 0 },
        'admission reviewed',
      );
      return result;
    } catch (error) {
      this.#log.error({ ...fields, ...errorFields(error) }, 'admission handler failed');
      return {
        allowed: false,
        status: {
          code: 500,
          reason: 'InternalError',
          message: 'the Tollgate webhook failed; see the operator log',
        },
      };
    }
  }

  async #json(req: IncomingMessage): Promise<unknown> {
    const limit = this.#o.maxBodyBytes ?? 6 * 1024 * 1024;
    const declared = Number(req.headers['content-length'] ?? Number.NaN);
    if (declared > limit) throw new HttpError(413, `the body exceeds ${limit} bytes`);
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > limit) throw new HttpError(413, `the body exceeds ${limit} bytes`);
      chunks.push(chunk);
    }
    try {
      return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
    } catch (error) {
      throw new HttpError(400, `the body is not JSON: ${(error as Error).message}`);
    }
  }

  #plain(res: ServerResponse, status: number, message: string, headers: Record<string, string> = {}): void {
    const body = `${message}\n`;
    res.writeHead(status, {
      'content-type': 'text/plain; charset=utf-8',
      'content-length': Buffer.byteLength(body),
      ...headers,
      // An unread request body would otherwise keep the connection busy.
      ...(status >= 400 ? { connection: 'close' } : {}),
    });
    res.end(body);
  }
}
