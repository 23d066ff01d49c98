/**
 * An in-process Kubernetes API test server (node:http on loopback), faithful
 * to the real kube-apiserver for what Tollgate uses: core v1 namespaces, pods,
 * serviceaccounts, secrets, configmaps and events, coordination.k8s.io leases,
 * admissionregistration.k8s.io webhook configurations (stored only: the
 * server calls no webhook), apiextensions.k8s.io CRDs and the custom resources they define (ApiPolicy
 * from `crds/`), and authentication.k8s.io TokenReviews, with discovery,
 * list (paged) / watch, create/get/update/patch/delete, optimistic
 * concurrency, the `status` subresource with generation semantics,
 * finalizers, structural-schema pruning, defaulting and validation, CEL
 * validation rules, and `Status` error bodies shaped like the real server's.
 *
 * This module owns the HTTP surface (routing, bodies, errors) and the public
 * controls; storage (store.ts), writes (writes.ts), lists (paging.ts),
 * watches (watch.ts), discovery (discovery.ts) and tokens (tokens.ts) live
 * beside it. Tests drive it through `@kubernetes/client-node` only, plus a
 * few controls (`closeWatches`, `releaseWatches`, `sendBookmarks`,
 * `issueToken`).
 */
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parse as parseYaml } from 'yaml';
import { discovery } from './discovery.ts';
import { listPage } from './paging.ts';
import { type RequestInfo, requestInfo } from './request-info.ts';
import { isRecord, metaOf, type ResourceType } from './resources.ts';
import { parseSelector, type Requirement } from './selector.ts';
import { ApiError, badRequest, failure, invalid, type Obj, statusBody } from './status.ts';
import { Store } from './store.ts';
import { type IssueTokenOptions, TokenAuthority } from './tokens.ts';
import { WatchHub } from './watch.ts';
import { type WriteOptions, Writer } from './writes.ts';

/** Options of {@link KubeTestServer.start}. */
export interface KubeTestServerOptions {
  /** Watch events retained; a watch (or paged list) from before them gets 410 Expired. Default 1000. */
  historyLimit?: number;
  /** Interval of BOOKMARK events for watches that allow them. Default 60 s, like the real server. */
  bookmarkIntervalMs?: number;
  /** CRD manifests (YAML files) installed at start. */
  crds?: string[];
  /**
   * When set, requests must carry `Authorization: Bearer <token>`, this one
   * or a ServiceAccount token the server issued (for its own audience).
   */
  token?: string;
  /**
   * Called with the authorization attributes of every authenticated request
   * (request-info.ts) and its bearer token (who asks), before it is served:
   * what RBAC would be asked.
   */
  onRequest?: (info: RequestInfo, token: string | undefined) => void;
}

export type { RequestInfo } from './request-info.ts';
export type { IssueTokenOptions } from './tokens.ts';

interface Target {
  type: ResourceType;
  namespace: string | undefined;
  name: string | undefined;
  subresource: string | undefined;
}

const INITIAL_NAMESPACES = ['default', 'kube-node-lease', 'kube-public', 'kube-system'];

function unknownPath(): ApiError {
  return failure(404, 'NotFound', 'the server could not find the requested resource', {});
}

function methodNotAllowed(): ApiError {
  return failure(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource');
}

function selectorOf(query: URLSearchParams): Requirement[] {
  try {
    return parseSelector(query.get('labelSelector') ?? '');
  } catch (error) {
    throw badRequest(error instanceof Error ? error.message : String(error));
  }
}

/** The Kubernetes API test server. */
export class KubeTestServer {
  readonly #server = createServer((req, res) => {
    this.#handle(req, res).catch((error: unknown) => {
      this.#sendError(res, error);
    });
  });
  readonly #store: Store;
  readonly #watches: WatchHub;
  readonly #writer: Writer;
  readonly #tokens: TokenAuthority;
  readonly #token: string | undefined;
  readonly #onRequest: ((info: RequestInfo, token: string | undefined) => void) | undefined;
  #url = '';

  private constructor(options: KubeTestServerOptions, store: Store, tokens: TokenAuthority) {
    this.#store = store;
    this.#tokens = tokens;
    this.#token = options.token;
    this.#onRequest = options.onRequest;
    this.#watches = new WatchHub(store, options.bookmarkIntervalMs ?? 60_000);
    this.#writer = new Writer(store, (type) => this.#watches.closeType(type));
    for (const name of INITIAL_NAMESPACES) {
      this.#writer.create(store.type('', 'namespaces'), undefined, { metadata: { name } });
    }
    for (const file of options.crds ?? []) {
      const crd: unknown = parseYaml(readFileSync(file, 'utf8'));
      if (!isRecord(crd)) throw new Error(`${file}: not a CRD manifest`);
      this.#writer.create(store.type('apiextensions.k8s.io', 'customresourcedefinitions'), undefined, crd);
    }
  }

  /** Starts a server on 127.0.0.1 on a free port. */
  static async start(options: KubeTestServerOptions = {}): Promise<KubeTestServer> {
    const store = new Store(options.historyLimit ?? 1000);
    const server = new KubeTestServer(options, store, await TokenAuthority.create(store));
    await new Promise<void>((resolve) => server.#server.listen(0, '127.0.0.1', resolve));
    const { port } = server.#server.address() as AddressInfo;
    server.#url = `http://127.0.0.1:${port}`;
    return server;
  }

  /** `http://127.0.0.1:PORT`. */
  get url(): string {
    return this.#url;
  }

  /** The current (latest) resourceVersion. */
  get resourceVersion(): string {
    return String(this.#store.rv);
  }

  /** Number of open watch streams. */
  get watchCount(): number {
    return this.#watches.count;
  }

  /**
   * Ends every open watch stream, as the server does at a watch timeout.
   * With `hold`, new watch requests wait (unanswered) until {@link releaseWatches}.
   */
  closeWatches(options: { hold?: boolean } = {}): void {
    this.#watches.closeAll(options.hold === true);
  }

  /** Serves the watch requests held since `closeWatches({ hold: true })`. */
  releaseWatches(): void {
    this.#watches.release();
  }

  /** Sends a BOOKMARK now to every watch that allows bookmarks. */
  sendBookmarks(): void {
    this.#watches.bookmarkAll();
  }

  /**
   * Mints a ServiceAccount token like a projected one (see tokens.ts):
   * audiences default to the API server's, lifetime to 3600 s. Rejects when
   * the service account, or the bound pod, does not exist.
   */
  issueToken(options: IssueTokenOptions): Promise<string> {
    return this.#tokens.issue(options);
  }

  /** Stops the server, ending open watches and pending controller work. */
  async close(): Promise<void> {
    this.releaseWatches();
    this.closeWatches();
    this.#writer.controllers.close();
    await new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }

  // --- HTTP -----------------------------------------------------------------

  #send(res: ServerResponse, code: number, body: unknown, headers: Record<string, string> = {}): void {
    res.writeHead(code, {
      'content-type': 'application/json',
      'cache-control': 'no-cache, private',
      ...headers,
    });
    res.end(JSON.stringify(body));
  }

  #sendError(res: ServerResponse, error: unknown): void {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const apiError =
      error instanceof ApiError
        ? error
        : failure(500, 'InternalError', `Internal error occurred: ${String(error)}`);
    this.#send(res, apiError.body.code, apiError.body, apiError.headers);
  }

  async #readBody(req: IncomingMessage): Promise<unknown> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    if (text.trim() === '') return undefined;
    try {
      return JSON.parse(text);
    } catch (error) {
      throw badRequest(`error decoding request body: ${String(error)}`);
    }
  }

  async #authenticated(req: IncomingMessage): Promise<boolean> {
    if (this.#token === undefined) return true;
    const header = req.headers.authorization ?? '';
    if (header === `Bearer ${this.#token}`) return true;
    const bearer = /^Bearer\s+(\S+)$/i.exec(header)?.[1];
    return bearer !== undefined && (await this.#tokens.review(bearer, [])).authenticated === true;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!(await this.#authenticated(req))) {
      this.#send(res, 401, statusBody('Failure', 401, 'Unauthorized', 'Unauthorized'));
      return;
    }
    const bearer = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
    this.#onRequest?.(requestInfo(req.method ?? 'GET', req.url ?? '/'), bearer);
    const url = new URL(req.url ?? '/', 'http://localhost');
    const segments = url.pathname.split('/').filter((s) => s !== '');
    const method = req.method ?? 'GET';
    const document = discovery(this.#store.types(), segments, this.#url.replace('http://', ''));
    if (document !== undefined) {
      if (method !== 'GET') throw failure(405, 'MethodNotAllowed', 'the server does not allow this method');
      this.#send(res, 200, document);
      return;
    }
    const target = this.#resolve(segments);
    const query = url.searchParams;
    const options: WriteOptions = { fieldValidation: query.get('fieldValidation') ?? 'Warn', warnings: [] };
    if (target.type.virtual) {
      if (method !== 'POST' || target.name !== undefined) throw methodNotAllowed();
      this.#send(res, 201, await this.#tokenReview(await this.#readBody(req)));
      return;
    }
    if (target.name === undefined) await this.#collection(req, res, target, query, options);
    else await this.#single(req, res, { ...target, name: target.name }, options);
  }

  async #collection(
    req: IncomingMessage,
    res: ServerResponse,
    target: Target,
    query: URLSearchParams,
    options: WriteOptions,
  ): Promise<void> {
    const { type, namespace } = target;
    const method = req.method ?? 'GET';
    if (method === 'GET') {
      const watch = query.get('watch');
      const request = { type, namespace, selector: selectorOf(query), query };
      if (watch === 'true' || watch === '1') this.#watches.watch(req, res, request);
      else this.#send(res, 200, listPage(this.#store, request));
      return;
    }
    if (method === 'POST') {
      if (type.namespaced && namespace === undefined) throw unknownPath();
      const body = await this.#readBody(req);
      if (!isRecord(body)) throw badRequest('the body of the request was not an object');
      const created = this.#writer.create(type, namespace, body, options);
      this.#send(res, 201, created, this.#warningHeaders(options.warnings));
      return;
    }
    if (method === 'DELETE') {
      this.#send(res, 200, this.#writer.deleteCollection(type, namespace, selectorOf(query)));
      return;
    }
    throw methodNotAllowed();
  }

  async #single(
    req: IncomingMessage,
    res: ServerResponse,
    target: Target & { name: string },
    options: WriteOptions,
  ): Promise<void> {
    const { type, namespace, name, subresource } = target;
    const method = req.method ?? 'GET';
    if (subresource === 'token') {
      if (method !== 'POST') throw methodNotAllowed();
      this.#send(res, 201, await this.#tokenRequest(namespace ?? 'default', name, await this.#readBody(req)));
      return;
    }
    if (method === 'GET') {
      this.#send(res, 200, this.#store.get(type, namespace, name));
      return;
    }
    if (method === 'PUT' || method === 'PATCH') {
      const body = await this.#readBody(req);
      const current = this.#store.get(type, namespace, name);
      const next =
        method === 'PUT' ? body : this.#writer.patch(type, current, body, req.headers['content-type'] ?? '');
      if (!isRecord(next)) throw badRequest('the body of the request was not an object');
      const updated = this.#writer.update(type, namespace, name, subresource, next, options);
      this.#send(res, 200, updated, this.#warningHeaders(options.warnings));
      return;
    }
    if (method === 'DELETE') {
      const body = await this.#readBody(req);
      this.#send(res, 200, this.#writer.delete(type, namespace, name, body));
      return;
    }
    throw methodNotAllowed();
  }

  /**
   * POST serviceaccounts/NAME/token (the TokenRequest API): a token for the
   * service account, bound to the pod of `spec.boundObjectRef` when given.
   */
  async #tokenRequest(namespace: string, serviceAccount: string, body: unknown): Promise<Obj> {
    if (!isRecord(body)) throw badRequest('the body of the request was not an object');
    const spec = isRecord(body.spec) ? body.spec : {};
    const audiences = Array.isArray(spec.audiences)
      ? spec.audiences.filter((a): a is string => typeof a === 'string')
      : [];
    const expirationSeconds = typeof spec.expirationSeconds === 'number' ? spec.expirationSeconds : 3600;
    if (expirationSeconds < 600) {
      throw invalid(
        { group: 'authentication.k8s.io', plural: 'tokenrequests', kind: 'TokenRequest' },
        serviceAccount,
        [
          {
            reason: 'FieldValueInvalid',
            field: 'spec.expirationSeconds',
            message: `Invalid value: ${expirationSeconds}: may not specify a duration less than 10 minutes`,
          },
        ],
      );
    }
    const ref = isRecord(spec.boundObjectRef) ? spec.boundObjectRef : undefined;
    const pod =
      ref && ref.kind === 'Pod' && typeof ref.name === 'string'
        ? { name: ref.name, uid: typeof ref.uid === 'string' ? ref.uid : '' }
        : undefined;
    const token = await this.issueToken({
      namespace,
      serviceAccount,
      ...(pod ? { pod } : {}),
      ...(audiences.length > 0 ? { audiences } : {}),
      expirationSeconds,
    });
    return {
      kind: 'TokenRequest',
      apiVersion: 'authentication.k8s.io/v1',
      metadata: { name: serviceAccount, namespace, creationTimestamp: null },
      spec: { ...spec, expirationSeconds },
      status: { token, expirationTimestamp: new Date(Date.now() + expirationSeconds * 1000).toISOString() },
    };
  }

  /** POST tokenreviews: the review is answered (201), never stored. */
  async #tokenReview(body: unknown): Promise<Obj> {
    if (!isRecord(body)) throw badRequest('the body of the request was not an object');
    const type = this.#store.type('authentication.k8s.io', 'tokenreviews');
    if ((body.apiVersion ?? 'authentication.k8s.io/v1') !== 'authentication.k8s.io/v1') {
      throw badRequest(
        `the API version in the data (${String(body.apiVersion)}) does not match the expected API version (authentication.k8s.io/v1)`,
      );
    }
    const spec = isRecord(body.spec) ? body.spec : {};
    const token = typeof spec.token === 'string' ? spec.token : '';
    if (token === '') throw badRequest('token is required for TokenReview in authentication');
    const audiences = Array.isArray(spec.audiences)
      ? spec.audiences.filter((a): a is string => typeof a === 'string')
      : [];
    return {
      kind: type.kind,
      apiVersion: 'authentication.k8s.io/v1',
      metadata: { ...metaOf(structuredClone(body)), creationTimestamp: null },
      spec: { token, ...(audiences.length > 0 ? { audiences } : {}) },
      status: await this.#tokens.review(token, audiences),
    };
  }

  #warningHeaders(warnings: string[]): Record<string, string> {
    if (warnings.length === 0) return {};
    return { warning: warnings.map((w) => `299 - ${JSON.stringify(w)}`).join(', ') };
  }

  #lookup(group: string, version: string, plural: string | undefined): ResourceType | undefined {
    if (plural === undefined) return undefined;
    const type = this.#store.findType(group, plural);
    return type !== undefined && type.version === version ? type : undefined;
  }

  #resolve(segments: string[]): Target {
    let group: string;
    let version: string;
    let rest: string[];
    if (segments[0] === 'api' && segments[1] === 'v1') {
      group = '';
      version = 'v1';
      rest = segments.slice(2);
    } else if (segments[0] === 'apis' && segments.length >= 4) {
      group = segments[1] ?? '';
      version = segments[2] ?? '';
      rest = segments.slice(3);
    } else {
      throw unknownPath();
    }
    if (rest[0] === 'namespaces' && rest.length >= 3) {
      const type = this.#lookup(group, version, rest[2]);
      if (type?.namespaced === true && rest.length <= 5) return this.#target(type, rest[1], rest[3], rest[4]);
    }
    const type = this.#lookup(group, version, rest[0]);
    if (type === undefined || rest.length > 3 || (type.namespaced && rest.length > 1)) throw unknownPath();
    return this.#target(type, undefined, rest[1], rest[2]);
  }

  #target(
    type: ResourceType,
    namespace: string | undefined,
    name: string | undefined,
    sub: string | undefined,
  ): Target {
    const token = sub === 'token' && type.group === '' && type.plural === 'serviceaccounts';
    if (sub !== undefined && !(sub === 'status' && type.statusSubresource) && !token) throw unknownPath();
    return { type, namespace, name, subresource: sub };
  }
}
