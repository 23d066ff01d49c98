/**
 * An in-process Kubernetes API test server (node:http on loopback), faithful
 * to the real kube-apiserver for what Tollgate uses: core v1 namespaces, pods,
 * serviceaccounts, secrets, configmaps and events, coordination.k8s.io leases,
 * apiextensions.k8s.io CRDs and the custom resources they define (ApiPolicy
 * from `crds/`), with discovery, list/watch, create/get/update/patch/delete,
 * optimistic concurrency, the `status` subresource with generation semantics,
 * structural-schema pruning, defaulting and validation, and `Status` error
 * bodies shaped like the real server's.
 *
 * One global, monotonically increasing resourceVersion orders every write.
 * The last `historyLimit` events are retained for watches; a watch from an
 * older version gets the real server's `ERROR` event with a 410 Expired
 * Status. Tests drive it through `@kubernetes/client-node` only, plus a few
 * controls (`closeWatches`, `releaseWatches`, `sendBookmarks`).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parse as parseYaml } from 'yaml';
import { applyJsonPatch, applyMergePatch } from './patch.ts';
import { CrdSchema } from './schema.ts';
import { matches, parseSelector, type Requirement } from './selector.ts';
import {
  ApiError,
  alreadyExists,
  badRequest,
  conflict,
  expired,
  failure,
  invalid,
  MODIFIED,
  notFound,
  type Obj,
  statusBody,
} from './status.ts';

/** A kind of object the server serves. */
export interface ResourceType {
  group: string;
  version: string;
  plural: string;
  singular: string;
  kind: string;
  namespaced: boolean;
  shortNames: string[];
  /** Has a `status` subresource: main writes keep status, status writes keep the rest. */
  statusSubresource: boolean;
  /** Maintains `metadata.generation` (CRDs and custom resources). */
  generation: boolean;
  /** Served by a CRD (its list items carry apiVersion and kind). */
  custom: boolean;
  schema?: CrdSchema;
}

/** Options of {@link KubeTestServer.start}. */
export interface KubeTestServerOptions {
  /** Watch events retained; a watch from before them gets 410 Expired. Default 1000. */
  historyLimit?: number;
  /** Interval of BOOKMARK events for watches that allow them. Default 60 s, like the real server. */
  bookmarkIntervalMs?: number;
  /** CRD manifests (YAML files) installed at start. */
  crds?: string[];
  /** When set, requests must carry `Authorization: Bearer <token>`. */
  token?: string;
}

type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

interface HistoryEvent {
  rv: number;
  typeKey: string;
  type: EventType;
  object: Obj;
  previous: Obj | undefined;
}

interface Watcher {
  typeKey: string;
  namespace: string | undefined;
  selector: Requirement[];
  res: ServerResponse;
  bookmarks: boolean;
  kind: string;
  apiVersion: string;
  timers: NodeJS.Timeout[];
}

interface Target {
  type: ResourceType;
  namespace: string | undefined;
  name: string | undefined;
  subresource: string | undefined;
}

const CORE: Array<Omit<ResourceType, 'group' | 'version' | 'custom' | 'generation'>> = [
  {
    plural: 'namespaces',
    singular: 'namespace',
    kind: 'Namespace',
    namespaced: false,
    shortNames: ['ns'],
    statusSubresource: true,
  },
  {
    plural: 'pods',
    singular: 'pod',
    kind: 'Pod',
    namespaced: true,
    shortNames: ['po'],
    statusSubresource: true,
  },
  {
    plural: 'serviceaccounts',
    singular: 'serviceaccount',
    kind: 'ServiceAccount',
    namespaced: true,
    shortNames: ['sa'],
    statusSubresource: false,
  },
  {
    plural: 'secrets',
    singular: 'secret',
    kind: 'Secret',
    namespaced: true,
    shortNames: [],
    statusSubresource: false,
  },
  {
    plural: 'configmaps',
    singular: 'configmap',
    kind: 'ConfigMap',
    namespaced: true,
    shortNames: ['cm'],
    statusSubresource: false,
  },
  {
    plural: 'events',
    singular: 'event',
    kind: 'Event',
    namespaced: true,
    shortNames: ['ev'],
    statusSubresource: false,
  },
];

const BUILTIN: ResourceType[] = [
  ...CORE.map((t) => ({ ...t, group: '', version: 'v1', custom: false, generation: false })),
  {
    group: 'coordination.k8s.io',
    version: 'v1',
    plural: 'leases',
    singular: 'lease',
    kind: 'Lease',
    namespaced: true,
    shortNames: [],
    statusSubresource: false,
    generation: false,
    custom: false,
  },
  {
    group: 'apiextensions.k8s.io',
    version: 'v1',
    plural: 'customresourcedefinitions',
    singular: 'customresourcedefinition',
    kind: 'CustomResourceDefinition',
    namespaced: false,
    shortNames: ['crd', 'crds'],
    statusSubresource: true,
    generation: true,
    custom: false,
  },
];

const INITIAL_NAMESPACES = ['default', 'kube-node-lease', 'kube-public', 'kube-system'];

function isRecord(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function metaOf(object: Obj): Obj {
  if (!isRecord(object.metadata)) object.metadata = {};
  return object.metadata as Obj;
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function labelsOf(object: Obj): Record<string, string> {
  const labels = metaOf(object).labels;
  const out: Record<string, string> = {};
  if (isRecord(labels)) for (const [k, v] of Object.entries(labels)) if (typeof v === 'string') out[k] = v;
  return out;
}

function apiVersionOf(type: ResourceType): string {
  return type.group === '' ? type.version : `${type.group}/${type.version}`;
}

function typeKey(type: Pick<ResourceType, 'group' | 'plural'>): string {
  return `${type.group}/${type.plural}`;
}

/** The real server's timestamp format: RFC 3339 in UTC, whole seconds. */
function timestamp(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Everything but metadata and status: what a generation counts changes of. */
function specPart(object: Obj): Obj {
  const { metadata: _m, status: _s, apiVersion: _a, kind: _k, ...rest } = object;
  return rest;
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** The Kubernetes API test server. */
export class KubeTestServer {
  readonly #server = createServer((req, res) => {
    this.#handle(req, res).catch((error: unknown) => {
      this.#sendError(res, error);
    });
  });
  readonly #types = new Map<string, ResourceType>();
  readonly #objects = new Map<string, Obj>();
  readonly #history: HistoryEvent[] = [];
  readonly #watchers = new Set<Watcher>();
  readonly #held: Array<() => void> = [];
  readonly #historyLimit: number;
  readonly #bookmarkIntervalMs: number;
  readonly #token: string | undefined;
  #rv = 0;
  #compacted = 0;
  #holding = false;
  #url = '';

  private constructor(options: KubeTestServerOptions) {
    this.#historyLimit = options.historyLimit ?? 1000;
    this.#bookmarkIntervalMs = options.bookmarkIntervalMs ?? 60_000;
    this.#token = options.token;
    for (const type of BUILTIN) this.#types.set(typeKey(type), type);
    for (const name of INITIAL_NAMESPACES) {
      this.#create(this.#type('', 'namespaces'), undefined, { metadata: { name } }, 'Strict');
    }
    for (const file of options.crds ?? []) {
      const crd: unknown = parseYaml(readFileSync(file, 'utf8'));
      if (!isRecord(crd)) throw new Error(`${file}: not a CRD manifest`);
      this.#create(this.#type('apiextensions.k8s.io', 'customresourcedefinitions'), undefined, crd, 'Strict');
    }
  }

  /** Starts a server on 127.0.0.1 on a free port. */
  static async start(options: KubeTestServerOptions = {}): Promise<KubeTestServer> {
    const server = new KubeTestServer(options);
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
    return String(this.#rv);
  }

  /** Number of open watch streams. */
  get watchCount(): number {
    return this.#watchers.size;
  }

  /**
   * Ends every open watch stream, as the server does at a watch timeout.
   * With `hold`, new watch requests wait (unanswered) until {@link releaseWatches}.
   */
  closeWatches(options: { hold?: boolean } = {}): void {
    if (options.hold === true) this.#holding = true;
    for (const watcher of [...this.#watchers]) this.#endWatch(watcher);
  }

  /** Serves the watch requests held since `closeWatches({ hold: true })`. */
  releaseWatches(): void {
    this.#holding = false;
    for (const resume of this.#held.splice(0)) resume();
  }

  /** Sends a BOOKMARK now to every watch that allows bookmarks. */
  sendBookmarks(): void {
    for (const watcher of this.#watchers) if (watcher.bookmarks) this.#bookmark(watcher);
  }

  /** Stops the server, ending open watches. */
  async close(): Promise<void> {
    this.releaseWatches();
    this.closeWatches();
    await new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }

  #type(group: string, plural: string): ResourceType {
    const type = this.#types.get(`${group}/${plural}`);
    if (type === undefined) throw new Error(`no type ${group}/${plural}`);
    return type;
  }

  // --- HTTP -----------------------------------------------------------------

  #send(res: ServerResponse, code: number, body: unknown, headers: Record<string, string> = {}): void {
    const text = JSON.stringify(body);
    res.writeHead(code, {
      'content-type': 'application/json',
      'cache-control': 'no-cache, private',
      ...headers,
    });
    res.end(text);
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

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (this.#token !== undefined && req.headers.authorization !== `Bearer ${this.#token}`) {
      this.#send(res, 401, statusBody('Failure', 401, 'Unauthorized', 'Unauthorized'));
      return;
    }
    const url = new URL(req.url ?? '/', 'http://localhost');
    const segments = url.pathname.split('/').filter((s) => s !== '');
    const method = req.method ?? 'GET';
    const discovery = this.#discovery(segments);
    if (discovery !== undefined) {
      if (method !== 'GET') throw failure(405, 'MethodNotAllowed', 'the server does not allow this method');
      this.#send(res, 200, discovery);
      return;
    }
    const target = this.#resolve(segments);
    const query = url.searchParams;
    const fieldValidation = query.get('fieldValidation') ?? 'Warn';
    const { type, namespace, name, subresource } = target;
    if (name === undefined) {
      if (method === 'GET') {
        const watch = query.get('watch');
        if (watch === 'true' || watch === '1') this.#watch(req, res, target, query);
        else this.#send(res, 200, this.#list(type, namespace, query));
        return;
      }
      if (method === 'POST') {
        if (type.namespaced && namespace === undefined) throw this.#unknownPath();
        const body = await this.#readBody(req);
        if (!isRecord(body)) throw badRequest('the body of the request was not an object');
        const warnings: string[] = [];
        const created = this.#create(type, namespace, body, fieldValidation, warnings);
        this.#send(res, 201, created, this.#warningHeaders(warnings));
        return;
      }
      if (method === 'DELETE') {
        this.#send(res, 200, this.#deleteCollection(type, namespace, query));
        return;
      }
      throw failure(
        405,
        'MethodNotAllowed',
        'the server does not allow this method on the requested resource',
      );
    }
    if (method === 'GET') {
      this.#send(res, 200, this.#get(type, namespace, name));
      return;
    }
    if (method === 'PUT' || method === 'PATCH') {
      const body = await this.#readBody(req);
      const warnings: string[] = [];
      const current = this.#get(type, namespace, name);
      let next: unknown;
      if (method === 'PUT') next = body;
      else next = this.#patch(type, current, body, req.headers['content-type'] ?? '');
      if (!isRecord(next)) throw badRequest('the body of the request was not an object');
      const updated = this.#update(type, namespace, name, subresource, next, fieldValidation, warnings);
      this.#send(res, 200, updated, this.#warningHeaders(warnings));
      return;
    }
    if (method === 'DELETE') {
      const body = await this.#readBody(req);
      this.#send(res, 200, this.#delete(type, namespace, name, body));
      return;
    }
    throw failure(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource');
  }

  #warningHeaders(warnings: string[]): Record<string, string> {
    if (warnings.length === 0) return {};
    return { warning: warnings.map((w) => `299 - ${JSON.stringify(w)}`).join(', ') };
  }

  #unknownPath(): ApiError {
    return failure(404, 'NotFound', 'the server could not find the requested resource', {});
  }

  #lookup(group: string, version: string, plural: string | undefined): ResourceType | undefined {
    if (plural === undefined) return undefined;
    const type = this.#types.get(`${group}/${plural}`);
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
      throw this.#unknownPath();
    }
    if (rest[0] === 'namespaces' && rest.length >= 3) {
      const type = this.#lookup(group, version, rest[2]);
      if (type?.namespaced === true && rest.length <= 5) {
        return this.#target(type, rest[1], rest[3], rest[4]);
      }
    }
    const type = this.#lookup(group, version, rest[0]);
    if (type === undefined || rest.length > 3 || (type.namespaced && rest.length > 1))
      throw this.#unknownPath();
    return this.#target(type, undefined, rest[1], rest[2]);
  }

  #target(
    type: ResourceType,
    namespace: string | undefined,
    name: string | undefined,
    sub: string | undefined,
  ): Target {
    if (sub !== undefined && !(sub === 'status' && type.statusSubresource)) throw this.#unknownPath();
    return { type, namespace, name, subresource: sub };
  }

  // --- discovery ------------------------------------------------------------

  #resourceList(group: string, version: string): Obj {
    const resources: Obj[] = [];
    for (const t of this.#types.values()) {
      if (t.group !== group || t.version !== version) continue;
      resources.push({
        name: t.plural,
        singularName: t.singular,
        namespaced: t.namespaced,
        kind: t.kind,
        verbs: ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'],
        ...(t.shortNames.length > 0 ? { shortNames: t.shortNames } : {}),
      });
      if (t.statusSubresource) {
        resources.push({
          name: `${t.plural}/status`,
          singularName: '',
          namespaced: t.namespaced,
          kind: t.kind,
          verbs: ['get', 'patch', 'update'],
        });
      }
    }
    return {
      kind: 'APIResourceList',
      apiVersion: 'v1',
      groupVersion: group === '' ? version : `${group}/${version}`,
      resources,
    };
  }

  #groups(): Obj[] {
    const versions = new Map<string, string>();
    for (const t of this.#types.values()) if (t.group !== '') versions.set(t.group, t.version);
    return [...versions].map(([name, version]) => {
      const gv = { groupVersion: `${name}/${version}`, version };
      return { name, versions: [gv], preferredVersion: gv };
    });
  }

  #discovery(segments: string[]): Obj | undefined {
    const path = segments.join('/');
    if (path === 'version') {
      return {
        major: '1',
        minor: '33',
        gitVersion: 'v1.33.0-tollgate-test',
        platform: `${process.platform}/${process.arch}`,
      };
    }
    if (path === 'api') {
      return {
        kind: 'APIVersions',
        versions: ['v1'],
        serverAddressByClientCIDRs: [
          { clientCIDR: '0.0.0.0/0', serverAddress: this.#url.replace('http://', '') },
        ],
      };
    }
    if (path === 'api/v1') return this.#resourceList('', 'v1');
    if (path === 'apis') return { kind: 'APIGroupList', apiVersion: 'v1', groups: this.#groups() };
    if (segments[0] === 'apis' && segments.length === 2) {
      const group = this.#groups().find((g) => g.name === segments[1]);
      if (group === undefined) throw this.#unknownPath();
      return { kind: 'APIGroup', apiVersion: 'v1', ...group };
    }
    if (segments[0] === 'apis' && segments.length === 3) {
      const list = this.#resourceList(segments[1] ?? '', segments[2] ?? '');
      if ((list.resources as Obj[]).length === 0) throw this.#unknownPath();
      return list;
    }
    return undefined;
  }

  // --- store ----------------------------------------------------------------

  #key(type: ResourceType, namespace: string | undefined, name: string): string {
    return `${typeKey(type)}/${namespace ?? ''}/${name}`;
  }

  #record(type: ResourceType, eventType: EventType, object: Obj, previous: Obj | undefined): void {
    const event: HistoryEvent = { rv: this.#rv, typeKey: typeKey(type), type: eventType, object, previous };
    this.#history.push(event);
    while (this.#history.length > this.#historyLimit) {
      const dropped = this.#history.shift();
      if (dropped !== undefined) this.#compacted = dropped.rv;
    }
    for (const watcher of this.#watchers) this.#deliver(watcher, event);
  }

  #get(type: ResourceType, namespace: string | undefined, name: string): Obj {
    const object = this.#objects.get(this.#key(type, namespace, name));
    if (object === undefined) throw notFound(type, name);
    return structuredClone(object);
  }

  #selector(query: URLSearchParams): Requirement[] {
    try {
      return parseSelector(query.get('labelSelector') ?? '');
    } catch (error) {
      throw badRequest(error instanceof Error ? error.message : String(error));
    }
  }

  #matching(type: ResourceType, namespace: string | undefined, selector: Requirement[]): Obj[] {
    const prefix = `${typeKey(type)}/${namespace === undefined ? '' : `${namespace}/`}`;
    return [...this.#objects]
      .filter(([key, object]) => key.startsWith(prefix) && matches(selector, labelsOf(object)))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, object]) => structuredClone(object));
  }

  #list(type: ResourceType, namespace: string | undefined, query: URLSearchParams): Obj {
    const items = this.#matching(type, namespace, this.#selector(query)).map((item) => {
      if (type.custom) return item;
      const { apiVersion: _a, kind: _k, ...rest } = item;
      return rest;
    });
    return {
      apiVersion: apiVersionOf(type),
      kind: `${type.kind}List`,
      metadata: { resourceVersion: String(this.#rv) },
      items,
    };
  }

  /** Prunes, defaults and validates a custom resource; throws the server's errors. */
  #admit(type: ResourceType, name: string, object: Obj, fieldValidation: string, warnings: string[]): void {
    const schema = type.schema;
    if (schema === undefined) return;
    const unknown = schema.prune(object);
    if (unknown.length > 0) {
      if (fieldValidation === 'Strict') {
        const fields = unknown.map((u) => `unknown field "${u}"`).join(', ');
        throw badRequest(
          `${type.kind} in version "${type.version}" cannot be handled as a ${type.kind}: strict decoding error: ${fields}`,
        );
      }
      if (fieldValidation === 'Warn') for (const u of unknown) warnings.push(`unknown field "${u}"`);
    }
    const causes = schema.validate(object);
    if (causes.length > 0) throw invalid(type, name, causes);
  }

  #checkTypeMeta(type: ResourceType, body: Obj): void {
    const apiVersion = str(body.apiVersion);
    const kind = str(body.kind);
    if (
      (apiVersion !== undefined && apiVersion !== apiVersionOf(type)) ||
      (kind !== undefined && kind !== type.kind)
    ) {
      throw badRequest(
        `the API version in the data (${apiVersion ?? ''}) does not match the expected API version (${apiVersionOf(type)})`,
      );
    }
  }

  #create(
    type: ResourceType,
    namespace: string | undefined,
    body: Obj,
    fieldValidation: string,
    warnings: string[] = [],
  ): Obj {
    this.#checkTypeMeta(type, body);
    const object = structuredClone(body);
    const meta = metaOf(object);
    const bodyNamespace = str(meta.namespace);
    if (type.namespaced) {
      if (bodyNamespace !== undefined && bodyNamespace !== namespace) {
        throw badRequest(
          'the namespace of the provided object does not match the namespace sent on the request',
        );
      }
      if (
        namespace !== undefined &&
        !this.#objects.has(this.#key(this.#type('', 'namespaces'), undefined, namespace))
      ) {
        throw notFound(this.#type('', 'namespaces'), namespace);
      }
    }
    let name = str(meta.name);
    const generateName = str(meta.generateName);
    if ((name === undefined || name === '') && generateName !== undefined) {
      name = `${generateName}${randomBytes(4).toString('hex').slice(0, 5)}`;
    }
    if (name === undefined || name === '') {
      throw invalid(type, '', [
        {
          reason: 'FieldValueRequired',
          message: 'Required value: name or generateName is required',
          field: 'metadata.name',
        },
      ]);
    }
    const key = this.#key(type, namespace, name);
    if (this.#objects.has(key)) throw alreadyExists(type, name);
    if (type.statusSubresource && type.custom) delete object.status;
    this.#admit(type, name, object, fieldValidation, warnings);
    if (type.plural === 'customresourcedefinitions') this.#installCrd(object);
    if (type.plural === 'namespaces') {
      object.spec = { finalizers: ['kubernetes'] };
      object.status = { phase: 'Active' };
    }
    this.#rv++;
    const stored: Obj = { apiVersion: apiVersionOf(type), kind: type.kind, ...object };
    const storedMeta = metaOf(stored);
    storedMeta.name = name;
    if (type.namespaced) storedMeta.namespace = namespace;
    else delete storedMeta.namespace;
    storedMeta.uid = randomUUID();
    storedMeta.resourceVersion = String(this.#rv);
    if (type.generation) storedMeta.generation = 1;
    else delete storedMeta.generation;
    storedMeta.creationTimestamp = timestamp();
    if (type.plural === 'namespaces') {
      storedMeta.labels = { ...labelsOf(stored), 'kubernetes.io/metadata.name': name };
    }
    this.#objects.set(key, stored);
    this.#record(type, 'ADDED', structuredClone(stored), undefined);
    return structuredClone(stored);
  }

  #patch(type: ResourceType, current: Obj, patch: unknown, contentType: string): unknown {
    const mediaType = contentType.split(';')[0]?.trim() ?? '';
    if (mediaType === 'application/merge-patch+json') return applyMergePatch(current, patch);
    if (mediaType === 'application/json-patch+json') {
      try {
        return applyJsonPatch(current, patch);
      } catch (error) {
        throw failure(
          422,
          'Invalid',
          `the server rejected our request due to an error in our request: ${String(error)}`,
        );
      }
    }
    if (mediaType === 'application/strategic-merge-patch+json' && !type.custom) {
      // Approximation: strategic merge treated as a merge patch (no list merge keys).
      return applyMergePatch(current, patch);
    }
    throw failure(
      415,
      'UnsupportedMediaType',
      `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json${type.custom ? '' : ', application/strategic-merge-patch+json'}`,
    );
  }

  #update(
    type: ResourceType,
    namespace: string | undefined,
    name: string,
    subresource: string | undefined,
    body: Obj,
    fieldValidation: string,
    warnings: string[],
  ): Obj {
    this.#checkTypeMeta(type, body);
    const key = this.#key(type, namespace, name);
    const current = this.#objects.get(key);
    if (current === undefined) throw notFound(type, name);
    const meta = metaOf(body);
    const bodyName = str(meta.name);
    if (bodyName !== undefined && bodyName !== name) {
      throw badRequest(`the name of the object (${bodyName}) does not match the name on the URL (${name})`);
    }
    const requestedRv = str(meta.resourceVersion);
    const currentMeta = metaOf(current);
    if (requestedRv !== undefined && requestedRv !== '' && requestedRv !== currentMeta.resourceVersion) {
      throw conflict(type, name, MODIFIED);
    }
    let next: Obj;
    if (subresource === 'status') {
      next = { ...structuredClone(current), status: structuredClone(body.status) };
      if (body.status === undefined) delete next.status;
    } else {
      next = structuredClone(body);
      if (type.statusSubresource && current.status !== undefined)
        next.status = structuredClone(current.status);
      else if (type.statusSubresource) delete next.status;
    }
    if (subresource === 'status') {
      // Only status changes through the subresource; metadata stays as stored.
      next.metadata = structuredClone(currentMeta);
    }
    this.#admit(type, name, next, fieldValidation, warnings);
    const finalMeta = metaOf(next);
    for (const field of ['uid', 'creationTimestamp', 'name', 'namespace']) {
      if (currentMeta[field] === undefined) delete finalMeta[field];
      else finalMeta[field] = currentMeta[field];
    }
    if (type.generation) {
      const bump = subresource !== 'status' && !sameJson(specPart(next), specPart(current));
      const generation = typeof currentMeta.generation === 'number' ? currentMeta.generation : 1;
      finalMeta.generation = bump ? generation + 1 : generation;
    } else {
      delete finalMeta.generation;
    }
    next.apiVersion = apiVersionOf(type);
    next.kind = type.kind;
    finalMeta.resourceVersion = currentMeta.resourceVersion;
    if (sameJson(next, current)) return structuredClone(current); // a no-op write keeps the version
    this.#rv++;
    finalMeta.resourceVersion = String(this.#rv);
    const stored = { apiVersion: next.apiVersion, kind: next.kind, ...next };
    this.#objects.set(key, stored);
    this.#record(type, 'MODIFIED', structuredClone(stored), structuredClone(current));
    return structuredClone(stored);
  }

  #remove(type: ResourceType, key: string, object: Obj): Obj {
    this.#objects.delete(key);
    this.#rv++;
    const gone = structuredClone(object);
    metaOf(gone).resourceVersion = String(this.#rv);
    this.#record(type, 'DELETED', structuredClone(gone), structuredClone(object));
    if (type.plural === 'namespaces') {
      const name = str(metaOf(object).name) ?? '';
      for (const [k, o] of [...this.#objects]) {
        const t = this.#types.get(k.split('/').slice(0, 2).join('/'));
        if (t?.namespaced === true && metaOf(o).namespace === name) this.#remove(t, k, o);
      }
    }
    if (type.plural === 'customresourcedefinitions') this.#uninstallCrd(object);
    return gone;
  }

  #delete(type: ResourceType, namespace: string | undefined, name: string, options: unknown): Obj {
    const key = this.#key(type, namespace, name);
    const current = this.#objects.get(key);
    if (current === undefined) throw notFound(type, name);
    const preconditions = isRecord(options) && isRecord(options.preconditions) ? options.preconditions : {};
    const meta = metaOf(current);
    const rv = str(preconditions.resourceVersion);
    if (rv !== undefined && rv !== meta.resourceVersion) {
      throw conflict(
        type,
        name,
        `the ResourceVersion in the precondition (${rv}) does not match the ResourceVersion in record (${String(meta.resourceVersion)}). The object might have been modified`,
      );
    }
    const uid = str(preconditions.uid);
    if (uid !== undefined && uid !== meta.uid) {
      throw conflict(
        type,
        name,
        `the UID in the precondition (${uid}) does not match the UID in record (${String(meta.uid)}). The object might have been deleted and then recreated`,
      );
    }
    const gone = this.#remove(type, key, current);
    if (type.custom || type.plural === 'customresourcedefinitions') return gone;
    const details = {
      name,
      ...(type.group === '' ? {} : { group: type.group }),
      kind: type.plural,
      uid: String(meta.uid),
    };
    return statusBody('Success', 200, undefined, undefined, details) as unknown as Obj;
  }

  #deleteCollection(type: ResourceType, namespace: string | undefined, query: URLSearchParams): Obj {
    const selector = this.#selector(query);
    const items: Obj[] = [];
    for (const object of this.#matching(type, namespace, selector)) {
      const meta = metaOf(object);
      const key = this.#key(type, str(meta.namespace), str(meta.name) ?? '');
      const current = this.#objects.get(key);
      if (current !== undefined) items.push(this.#remove(type, key, current));
    }
    return {
      apiVersion: apiVersionOf(type),
      kind: `${type.kind}List`,
      metadata: { resourceVersion: String(this.#rv) },
      items,
    };
  }

  // --- CRDs -----------------------------------------------------------------

  #installCrd(crd: Obj): void {
    const spec = isRecord(crd.spec) ? crd.spec : {};
    const names = isRecord(spec.names) ? spec.names : {};
    const group = str(spec.group) ?? '';
    const plural = str(names.plural) ?? '';
    const versions = Array.isArray(spec.versions) ? spec.versions.filter(isRecord) : [];
    const served = versions.find((v) => v.storage === true) ?? versions[0];
    if (served === undefined || group === '' || plural === '') {
      throw invalid(
        this.#type('apiextensions.k8s.io', 'customresourcedefinitions'),
        str(metaOf(crd).name) ?? '',
        [{ reason: 'FieldValueRequired', message: 'Required value', field: 'spec' }],
      );
    }
    const subresources = isRecord(served.subresources) ? served.subresources : {};
    const schema =
      isRecord(served.schema) && isRecord(served.schema.openAPIV3Schema)
        ? served.schema.openAPIV3Schema
        : undefined;
    const type: ResourceType = {
      group,
      version: str(served.name) ?? 'v1',
      plural,
      singular: str(names.singular) ?? plural,
      kind: str(names.kind) ?? plural,
      namespaced: spec.scope !== 'Cluster',
      shortNames: Array.isArray(names.shortNames)
        ? names.shortNames.filter((n): n is string => typeof n === 'string')
        : [],
      statusSubresource: isRecord(subresources.status),
      generation: true,
      custom: true,
      ...(schema === undefined ? {} : { schema: new CrdSchema(schema) }),
    };
    this.#types.set(typeKey(type), type);
    const now = timestamp();
    crd.status = {
      acceptedNames: structuredClone(names),
      conditions: [
        {
          type: 'NamesAccepted',
          status: 'True',
          lastTransitionTime: now,
          reason: 'NoConflicts',
          message: 'no conflicts found',
        },
        {
          type: 'Established',
          status: 'True',
          lastTransitionTime: now,
          reason: 'InitialNamesAccepted',
          message: 'the initial names have been accepted',
        },
      ],
      storedVersions: [type.version],
    };
  }

  #uninstallCrd(crd: Obj): void {
    const spec = isRecord(crd.spec) ? crd.spec : {};
    const names = isRecord(spec.names) ? spec.names : {};
    const type = this.#types.get(`${str(spec.group) ?? ''}/${str(names.plural) ?? ''}`);
    if (type === undefined || !type.custom) return;
    for (const [key, object] of [...this.#objects])
      if (key.startsWith(`${typeKey(type)}/`)) this.#remove(type, key, object);
    for (const watcher of [...this.#watchers]) if (watcher.typeKey === typeKey(type)) this.#endWatch(watcher);
    this.#types.delete(typeKey(type));
  }

  // --- watch ----------------------------------------------------------------

  #write(watcher: Watcher, type: string, object: Obj): void {
    watcher.res.write(`${JSON.stringify({ type, object })}\n`);
  }

  #bookmark(watcher: Watcher): void {
    this.#write(watcher, 'BOOKMARK', {
      kind: watcher.kind,
      apiVersion: watcher.apiVersion,
      metadata: { resourceVersion: String(this.#rv), creationTimestamp: null },
    });
  }

  #deliver(watcher: Watcher, event: HistoryEvent): void {
    if (event.typeKey !== watcher.typeKey) return;
    const namespace = str(metaOf(event.object).namespace);
    if (watcher.namespace !== undefined && namespace !== watcher.namespace) return;
    const now = matches(watcher.selector, labelsOf(event.object));
    const before = event.previous !== undefined && matches(watcher.selector, labelsOf(event.previous));
    if (event.type === 'MODIFIED') {
      if (now && before) this.#write(watcher, 'MODIFIED', event.object);
      else if (now) this.#write(watcher, 'ADDED', event.object);
      else if (before) this.#write(watcher, 'DELETED', event.object);
    } else if (event.type === 'DELETED' ? before : now) {
      this.#write(watcher, event.type, event.object);
    }
  }

  #endWatch(watcher: Watcher): void {
    for (const timer of watcher.timers) clearTimeout(timer);
    this.#watchers.delete(watcher);
    watcher.res.end();
  }

  #watch(req: IncomingMessage, res: ServerResponse, target: Target, query: URLSearchParams): void {
    const selector = this.#selector(query);
    const start = (): void => {
      if (res.destroyed) return;
      res.writeHead(200, {
        'content-type': 'application/json',
        'transfer-encoding': 'chunked',
        'cache-control': 'no-cache, private',
      });
      res.flushHeaders();
      const watcher: Watcher = {
        typeKey: typeKey(target.type),
        namespace: target.namespace,
        selector,
        res,
        bookmarks: query.get('allowWatchBookmarks') === 'true',
        kind: target.type.kind,
        apiVersion: apiVersionOf(target.type),
        timers: [],
      };
      const rvParam = query.get('resourceVersion') ?? '';
      if (rvParam === '' || rvParam === '0') {
        for (const object of this.#matching(target.type, target.namespace, selector))
          this.#write(watcher, 'ADDED', object);
      } else {
        const rv = Number(rvParam);
        if (!Number.isInteger(rv) || rv < 0) {
          this.#write(
            watcher,
            'ERROR',
            badRequest(`invalid resource version: ${rvParam}`).body as unknown as Obj,
          );
          res.end();
          return;
        }
        if (rv < this.#compacted) {
          // Like the watch cache: a 200 stream carrying one ERROR event, then the end.
          this.#write(watcher, 'ERROR', expired(rv, this.#compacted + 1).body as unknown as Obj);
          res.end();
          return;
        }
        for (const event of this.#history) if (event.rv > rv) this.#deliver(watcher, event);
      }
      this.#watchers.add(watcher);
      if (watcher.bookmarks) {
        const tick = (): void => {
          this.#bookmark(watcher);
          watcher.timers[0] = setTimeout(tick, this.#bookmarkIntervalMs);
        };
        watcher.timers[0] = setTimeout(tick, this.#bookmarkIntervalMs);
      }
      const timeoutSeconds = Number(query.get('timeoutSeconds') ?? '0');
      if (timeoutSeconds > 0)
        watcher.timers[1] = setTimeout(() => this.#endWatch(watcher), timeoutSeconds * 1000);
      res.on('close', () => {
        for (const timer of watcher.timers) clearTimeout(timer);
        this.#watchers.delete(watcher);
      });
    };
    if (this.#holding) {
      this.#held.push(start);
      req.on('close', () => {
        const i = this.#held.indexOf(start);
        if (i >= 0) this.#held.splice(i, 1);
      });
    } else {
      start();
    }
  }
}
