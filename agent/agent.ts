/**
 * The agent: a policy source (a file, or the operator's stream), the inbound
 * proxy running the pipeline, the forwarder to the app and the admin server,
 * wired together. Fails closed: until a policy is loaded every request gets 503.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo, Server as NetServer, Socket } from 'node:net';
import type { Diagnostic } from '../policy/diagnostics.ts';
import { formatDiagnostic } from '../policy/diagnostics.ts';
import { RateLimiter } from '../policy/ratelimit/rate-limiter.ts';
import type { Mesh } from '../proto/policy-service.ts';
import { createAdminServer } from './admin/admin-server.ts';
import type { AgentConfig } from './config.ts';
import { PolicyError, RESCUE } from './errors.ts';
import { type IdentityProvider, TlsIdentity } from './identity/tls-identity.ts';
import { TrustStore } from './identity/trust-store.ts';
import { Inventory } from './inventory/inventory.ts';
import { callerKey, InventoryTracker } from './inventory/request-tracker.ts';
import { MeshDirectory, meshEndpointsOf } from './outbound/mesh.ts';
import { MeshFile } from './outbound/mesh-file.ts';
import { OutboundProxy } from './outbound/outbound-proxy.ts';
import { bundleStates } from './pipeline/bundle-state.ts';
import {
  decideRequest,
  type ForwardPlan,
  type PipelineEnv,
  type RequestInfo,
} from './pipeline/decide-request.ts';
import { clientKey, protectionEnv } from './pipeline/protection/protection.ts';
import { GlobalLimiter } from './pipeline/ratelimit/global-limiter.ts';
import { connectWithin, createRedisClient, redactRedisUrl } from './pipeline/ratelimit/redis-client.ts';
import { ResponseFilter } from './pipeline/respond/response-filter.ts';
import { type PreparedBody, prepareBody } from './pipeline/validate/request-body.ts';
import { detectingServer, peerOf } from './proxy/connection-detect.ts';
import { Forwarder } from './proxy/forwarder.ts';
import { createInboundServer, drainServer } from './proxy/inbound-server.ts';
import { sendProblem, writeSocketProblem } from './proxy/problem-response.ts';
import { checkRequestFraming } from './proxy/request-framing.ts';
import { requestIdFrom } from './proxy/upstream-headers.ts';
import { createPolicySource, type PolicySource } from './source/policy-source.ts';
import { subscribeAccessLog } from './telemetry/access-log.ts';
import { type RequestRecord, type SecurityEvent, securityEvents, subscribeTo } from './telemetry/channels.ts';
import type { JsonLineWriter } from './telemetry/json-line.ts';
import { Metrics } from './telemetry/metrics.ts';
import { RequestMetrics } from './telemetry/request-metrics.ts';
import { RequestTelemetry } from './telemetry/request-telemetry.ts';

/** The logging calls the agent makes (pino's shape). */
export interface Logger {
  debug(fields: object, msg: string): void;
  info(fields: object, msg: string): void;
  warn(fields: object, msg: string): void;
  error(fields: object, msg: string): void;
  isLevelEnabled?(level: string): boolean;
}

export interface AgentDeps {
  logger: Logger;
  /** Writes the per-request access line in `logger`'s format and destination, cheaper than `logger.info`. */
  accessLine?: JsonLineWriter;
  now?: () => number;
  fetch?: typeof fetch;
  /** This build's version, reported to the operator (default 'unknown'). */
  agentVersion?: string;
}

export class PolicyLoadError extends Error {
  readonly code = 'ERR_POLICY_LOAD';
  readonly diagnostics: Diagnostic[];
  constructor(diagnostics: Diagnostic[]) {
    super('the policy could not be loaded');
    this.diagnostics = diagnostics;
  }
}

function clientIp(socket: Socket): string {
  const ip = socket.remoteAddress ?? '';
  return ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
}

export class Agent {
  readonly metrics = new Metrics();
  readonly inventory: Inventory;
  readonly #tracker: InventoryTracker;
  readonly #config: AgentConfig;
  readonly #deps: AgentDeps;
  readonly #source: PolicySource;
  readonly #forwarder: Forwarder;
  readonly #responses: ResponseFilter;
  readonly #env: PipelineEnv;
  /** Request records published on the telemetry channels (agent/telemetry/channels.ts). */
  readonly #telemetry: RequestTelemetry;
  #unsubscribe: (() => void)[] = [];
  /** Global rate limits shared through Redis; null without --redis-url. */
  readonly #global: { limiter: GlobalLimiter; connect: () => Promise<void>; store: string } | null;
  #warnedPerSidecar = false;
  #inbound: Server | undefined;
  #admin: Server | undefined;
  #outbound: OutboundProxy | undefined;
  /** The meshed destinations (from `--mesh` or the operator), sent over mTLS by the outbound listener. */
  readonly mesh = new MeshDirectory();
  #meshFile: MeshFile | undefined;
  /** With mTLS: the listener that tells TLS from plaintext, and the identity it presents. */
  #listener: NetServer | undefined;
  #identity: IdentityProvider | undefined;
  /** Operator mode: the mesh roots from the policy stream (and Sign responses). */
  readonly #trust: TrustStore | null;

  constructor(config: AgentConfig, deps: AgentDeps) {
    this.#config = config;
    this.#deps = deps;
    const now = deps.now ?? Date.now;
    this.#telemetry = new RequestTelemetry({ now });
    let loadedAt: number | null = null;
    this.metrics.gauge(
      'tollgate_policy_bundle_age_seconds',
      {},
      () => (loadedAt === null ? Number.NaN : (now() - loadedAt) / 1000),
      'Seconds since the enforced bundle was loaded',
    );
    const upstreamPort = Number(config.upstream.port || 80);
    this.inventory = new Inventory({ now });
    this.#tracker = new InventoryTracker(this.inventory, (route) =>
      (this.#source.current?.policyFor(upstreamPort)?.policy.routes ?? []).some(
        (r) => r.name === route && r.deprecation !== null,
      ),
    );
    this.#trust = config.operator ? this.#trustStore() : null;
    this.#source = createPolicySource(
      config,
      this.#trust ? { ...deps, trust: this.#trust } : deps,
      {
        path: config.policyPath,
        workload: { port: upstreamPort, ...(config.labels ? { labels: config.labels } : {}) },
        onLoad: (engine, diagnostics) => {
          for (const d of diagnostics)
            deps.logger.warn({ diagnostic: formatDiagnostic(d) }, 'policy warning');
          this.metrics.inc('tollgate_policy_reloads_total', { result: 'success' });
          const global = engine.bundle.policies.some((p) => p.rateLimits.some((l) => l.scope === 'Global'));
          if (global && !config.redisUrl && !this.#warnedPerSidecar) {
            this.#warnedPerSidecar = true;
            deps.logger.warn({}, 'Global rate limits act per sidecar: no --redis-url to share them through');
          }
          loadedAt = now();
          this.metrics.set(
            'tollgate_policy_bundle_loaded_timestamp_seconds',
            {},
            loadedAt / 1000,
            'When the enforced bundle was loaded (Unix seconds)',
          );
          this.metrics.reset('tollgate_policy_bundle_info');
          this.metrics.set(
            'tollgate_policy_bundle_info',
            { version: engine.bundle.version },
            1,
            'Loaded bundle',
          );
          deps.logger.info(
            { version: engine.bundle.version, policies: engine.bundle.policies.length },
            'policy loaded',
          );
        },
        onReject: (diagnostics) => {
          this.metrics.inc('tollgate_policy_reloads_total', { result: 'rejected' });
          const lines = diagnostics.map(formatDiagnostic);
          deps.logger.error({ diagnostics: lines }, 'policy rejected, keeping the last good one');
        },
      },
      { onMesh: (mesh) => this.#applyMesh(mesh) },
    );
    this.#forwarder = new Forwarder({ upstream: config.upstream });
    this.#responses = new ResponseFilter({ metrics: this.metrics, logger: deps.logger });
    const authnOptions = { ...(deps.fetch ? { fetch: deps.fetch } : {}), now };
    const local = new RateLimiter({ now });
    this.#global = null;
    if (config.redisUrl) {
      const timeoutMs = config.redisTimeoutMs ?? 50;
      const client = createRedisClient(config.redisUrl, {
        timeoutMs,
        onError: (e) => deps.logger.debug({ err: e.message }, 'rate limit store connection error'),
      });
      const limiter = new GlobalLimiter({
        client,
        local,
        logger: deps.logger,
        metrics: this.metrics,
        timeoutMs,
      });
      const store = redactRedisUrl(config.redisUrl);
      this.#global = { limiter, connect: () => connectWithin(client, 2_000), store };
    }
    this.#env = {
      port: upstreamPort,
      limiter: this.#global?.limiter ?? local,
      now,
      state: bundleStates(authnOptions),
      protection: protectionEnv({ metrics: this.metrics, now }),
    };
  }

  /**
   * Starts the policy source (throws PolicyLoadError when a policy file is
   * invalid; an unreachable operator is not an error), then starts listening.
   */
  async start(): Promise<{ listen: AddressInfo; admin: AddressInfo; outbound: AddressInfo | null }> {
    const refused = await this.#source.start();
    if (refused) throw new PolicyLoadError(refused);
    this.#unsubscribe.push(
      subscribeAccessLog({
        logger: this.#deps.logger,
        ...(this.#deps.accessLine ? { line: this.#deps.accessLine } : {}),
        source: this.#telemetry,
        access: this.#config.accessLog ?? true,
        subject: this.#config.logSubject ?? 'none',
      }),
    );
    const requestMetrics = new RequestMetrics(this.metrics, this.#telemetry).subscribe();
    this.#unsubscribe.push(() => requestMetrics.close());
    const source = this.#source;
    if (source.report) {
      // Blocks become Kubernetes Events on the pod, through the operator.
      this.#unsubscribe.push(
        subscribeTo<SecurityEvent>(securityEvents, (e) => {
          if (e.name === 'client_blocked') source.report?.('client-blocked', e.fields);
        }),
      );
    }
    if (this.#global) {
      // Bounded: an unreachable store only means local buckets until it answers.
      await this.#global.connect();
      const up = await this.#global.limiter.check();
      this.#deps.logger.info({ store: this.#global.store, up }, 'Global rate limits shared through Redis');
    }
    this.#admin = createAdminServer({
      engine: () => this.#source.current,
      metrics: this.metrics,
      inventory: () => this.inventory.snapshot(),
    });
    this.#inbound = createInboundServer({
      onRequest: (req, res, ctl) => this.#handle(req, res, ctl),
      onUpgrade: (req, socket, head) => this.#handleUpgrade(req, socket as Socket, head),
    });
    const admin = await listen(this.#admin, this.#config.admin.host, this.#config.admin.port);
    const inbound = await listen(
      await this.#inboundListener(),
      this.#config.listen.host,
      this.#config.listen.port,
    );
    let outbound: AddressInfo | null = null;
    if (this.#config.outbound) {
      this.#watchMeshFile();
      this.#outbound = new OutboundProxy({
        listen: this.#config.outbound,
        logger: this.#deps.logger,
        metrics: this.metrics,
        accessLog: this.#config.accessLog ?? true,
        mesh: this.mesh,
        identity: this.#identity ?? null,
      });
      outbound = await this.#outbound.start();
    }
    return { listen: inbound, admin, outbound };
  }

  /**
   * The inbound port's listener: the HTTP server itself, or with an identity
   * (certificate files, or the operator's certificates) a listener that
   * detects TLS per connection (one port for both) and presents the identity
   * in force, read per connection so a renewal reaches new connections only.
   */
  async #inboundListener(): Promise<Server | NetServer> {
    const http = this.#inbound as Server;
    const identity = await this.#identityProvider();
    if (!identity) return http;
    this.#identity = identity;
    this.metrics.gauge(
      'tollgate_mtls_certificate_expiry_timestamp_seconds',
      {},
      () => (identity.current ? identity.current.notAfter.getTime() / 1000 : Number.NaN),
      'Expiry of the certificate the inbound port presents (NaN: none yet)',
    );
    const logger = this.#deps.logger;
    this.#listener = detectingServer(http, {
      context: () => identity.current?.context ?? null,
      anchors: () => identity.current?.anchors ?? [],
      onRefused: (reason, remote) => {
        this.metrics.inc(
          'tollgate_mtls_refused_total',
          {},
          1,
          'TLS connections refused (handshake, certificate, SPIFFE ID)',
        );
        logger.debug({ reason, remote }, 'tls connection refused');
      },
    });
    return this.#listener;
  }

  /** The trust store of operator mode: every change logged and shown as `tollgate_mtls_trust_bundle_info`. */
  #trustStore(): TrustStore {
    const trust = new TrustStore();
    trust.onChange((t) => {
      this.metrics.reset('tollgate_mtls_trust_bundle_info');
      this.metrics.set(
        'tollgate_mtls_trust_bundle_info',
        { version: t.version },
        1,
        'The mesh trust bundle in force (operator mode)',
      );
      this.#deps.logger.info(
        { version: t.version, roots: t.anchors.length, source: t.source },
        'trust bundle in force',
      );
    });
    return trust;
  }

  /**
   * The operator's mesh: replaces the one in force unless it is malformed
   * (then kept, and logged). True when it is in force (also when it already was).
   */
  #applyMesh(message: Mesh): boolean {
    const problems: string[] = [];
    const endpoints = meshEndpointsOf(message.endpoints, problems);
    if (problems.length > 0 || typeof message.version !== 'string') {
      this.#deps.logger.error(
        { version: String(message.version), problems: problems.slice(0, 10) },
        'mesh from the operator rejected, keeping the one in force',
      );
      return false;
    }
    if (message.version === this.mesh.version) return true;
    this.mesh.replace(endpoints, message.version);
    this.#deps.logger.info({ version: message.version, endpoints: endpoints.length }, 'mesh updated');
    return true;
  }

  /** Standalone `--mesh`: loaded now (throws when unusable), then watched. */
  #watchMeshFile(): void {
    const path = this.#config.meshFile;
    if (!path) return;
    const logger = this.#deps.logger;
    this.#meshFile = new MeshFile({
      path,
      mesh: this.mesh,
      onReload: (endpoints) => logger.info({ endpoints }, 'mesh reloaded'),
      onReject: (e) => logger.error({ error: e.message }, 'mesh file rejected, keeping the one in force'),
    });
    this.#meshFile.watch();
    logger.info({ endpoints: this.mesh.size }, 'mesh loaded');
  }

  /** The identity from files, from the operator (loaded only then), or none. */
  async #identityProvider(): Promise<IdentityProvider | null> {
    const logger = this.#deps.logger;
    const files = this.#config.tls;
    if (files) {
      const identity = new TlsIdentity({
        files,
        onReload: (id) =>
          logger.info(
            { spiffeId: id.spiffeId, notAfter: id.notAfter.toISOString() },
            'tls identity reloaded',
          ),
        onReject: (e) =>
          logger.error({ error: e.message }, 'tls identity files rejected, keeping the one in force'),
      });
      identity.watch();
      logger.info(
        { spiffeId: identity.current.spiffeId, notAfter: identity.current.notAfter.toISOString() },
        'tls identity loaded',
      );
      return identity;
    }
    const op = this.#config.operator;
    if (!op?.mtls) return null;
    const { OperatorIdentity } = await import('./identity/operator-identity.ts');
    const identity = new OperatorIdentity({
      target: op.target,
      caFile: op.caFile,
      serverName: op.serverName,
      tokenFile: op.tokenFile,
      podName: op.podName,
      podNamespace: op.podNamespace,
      logger,
      backoff: { minMs: op.backoffMs.min, maxMs: op.backoffMs.max },
      ...(this.#trust ? { trust: this.#trust } : {}),
    });
    identity.start();
    return identity;
  }

  /** Graceful stop: no new connections, in-flight requests finish (up to timeoutMs). */
  async stop(timeoutMs = 10_000): Promise<void> {
    this.#source.close();
    this.#identity?.close();
    this.#meshFile?.close();
    this.#listener?.close();
    await Promise.all([
      this.#inbound ? drainServer(this.#inbound, { timeoutMs }) : undefined,
      this.#outbound?.stop(timeoutMs),
    ]);
    if (this.#admin) await drainServer(this.#admin, { timeoutMs: 1000 });
    await this.#forwarder.close();
    this.#global?.limiter.close();
    for (const unsubscribe of this.#unsubscribe) unsubscribe();
    this.#unsubscribe = [];
  }

  /** The request's info, its facts filled by the pipeline into its telemetry record. */
  #info(req: IncomingMessage): { info: RequestInfo; record: RequestRecord } {
    const info: RequestInfo = {
      req,
      requestId: requestIdFrom(req),
      clientIp: clientIp(req.socket),
      proto: 'http',
      peerId: null,
    };
    const peer = peerOf(req.socket);
    if (peer) {
      info.peerId = peer.id;
      info.peerCertHash = peer.hash;
      info.proto = 'https';
    }
    const record = this.#telemetry.begin(info, clientKey(info));
    info.facts = record.facts;
    return { info, record };
  }

  #handle(req: IncomingMessage, res: ServerResponse, ctl: { continue(): void }): void {
    const { info, record } = this.#info(req);
    this.#tracker.watch(req, res, callerKey(info));
    this.#telemetry.watch(record, res);
    const framing = checkRequestFraming(req);
    if (framing) {
      this.#deny(req, res, info, record, framing);
      return;
    }
    decideRequest(this.#source.current, info, this.#env)
      .then(async (plan) => {
        this.#tracker.plan(req, plan);
        this.#telemetry.planned(record, plan);
        // The app continues the trace of the request's span (a tracing subscriber set it).
        if (record.propagate) Object.assign(plan.headers, record.propagate);
        // The head is allowed and the body is about to be read: now the client may send it.
        ctl.continue();
        let prepared: PreparedBody;
        try {
          prepared = await prepareBody(req, plan.body, (f) => this.#logFinding(info, plan.route, f));
        } catch (e) {
          throw bodyDenial(e, plan);
        }
        for (const f of [...plan.findings, ...prepared.findings]) this.#logFinding(info, plan.route, f);
        this.#telemetry.findings(
          record,
          prepared.findings.map((f) => f.code),
        );
        if (prepared.length !== null) plan.headers['content-length'] = String(prepared.length);
        try {
          const rewriteBody = this.#responses.hookFor(plan, req.method ?? 'GET');
          await this.#forwarder.forward(req, res, {
            method: req.method ?? 'GET',
            path: plan.path,
            headers: plan.headers,
            timeoutMs: plan.timeoutMs,
            ...(prepared.body ? { body: prepared.body } : {}),
            // The request id is echoed in every mode: it is proxy hygiene, not policy.
            onResponse: () => ({ ...plan.responseHeaders, 'x-request-id': info.requestId }),
            ...(rewriteBody ? { rewriteBody } : {}),
          });
        } catch (e) {
          // A body that crossed the limit while streaming aborted the upstream request: say 413.
          const overflow = prepared.overflow();
          throw overflow ? bodyDenial(overflow, plan) : e;
        }
      })
      .catch((e: unknown) => this.#deny(req, res, info, record, e));
  }

  #handleUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    const { info, record } = this.#info(req);
    const refuse = (e: unknown) => {
      this.#tracker.refusedUpgrade(req, e, callerKey(info));
      this.#recordError(info, record, e);
      writeSocketProblem(socket, e, info.requestId);
      this.#telemetry.end(record, e instanceof PolicyError ? RESCUE[e.code].status : 500);
    };
    const framing = checkRequestFraming(req);
    if (framing) {
      refuse(framing);
      return;
    }
    decideRequest(this.#source.current, info, this.#env)
      .then((plan) => {
        for (const f of plan.findings) this.#logFinding(info, plan.route, f);
        this.#tracker.plan(req, plan);
        this.#telemetry.planned(record, plan);
        if (record.propagate) Object.assign(plan.headers, record.propagate);
        return this.#forwarder
          .forwardUpgrade(req, socket, head, { path: plan.path, headers: plan.headers })
          .then(() => {
            this.#tracker.finish(req, 101, callerKey(info));
            this.#telemetry.end(record, 101);
          });
      })
      .catch(refuse);
  }

  #deny(
    req: IncomingMessage,
    res: ServerResponse,
    info: RequestInfo,
    record: RequestRecord,
    e: unknown,
  ): void {
    this.#tracker.denial(req, e);
    this.#recordError(info, record, e);
    sendProblem(req, res, e, info.requestId);
  }

  #logFinding(info: RequestInfo, route: string | null, f: PolicyError): void {
    const errors = f.extensions.errors;
    this.#deps.logger.info(
      { requestId: info.requestId, route, code: f.code, mode: 'Audit', ...(errors ? { errors } : {}) },
      'request would be denied',
    );
  }

  /** The denial goes to the request's record (the access log tells it); an unexpected failure is logged. */
  #recordError(info: RequestInfo, record: RequestRecord, e: unknown): void {
    this.#telemetry.denied(record, e);
    if (!(e instanceof PolicyError) || e.code === 'ERR_INTERNAL')
      this.#deps.logger.error({ requestId: info.requestId, err: String(e) }, 'request failed');
  }
}

/**
 * A denial of the body stage, with the route's response headers (rate limit,
 * deprecation: none in Audit mode) as every response of the route has them.
 */
function bodyDenial(e: unknown, plan: ForwardPlan): unknown {
  if (!(e instanceof PolicyError)) return e;
  const denial = new PolicyError(
    e.code,
    e.detail,
    { ...plan.responseHeaders, ...e.headers },
    { ...e.extensions },
  );
  denial.route = plan.route;
  return denial;
}

function listen(server: Server | NetServer, host: string, port: number): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}
