/**
 * The operator: informers on ApiPolicies, Pods and Namespaces feed the index;
 * index changes enqueue pushes (to every sidecar this replica serves) and
 * status reconciliation (written by the Lease leader only); sidecar ACKs are
 * recorded on their Pods so the leader sees every replica's sidecars.
 * Informer callbacks only update the index and enqueue, never do I/O.
 */
import { status as GrpcStatus } from '@grpc/grpc-js';
import {
  AuthenticationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  type KubernetesObject,
  PatchStrategy,
  setHeaderOptions,
} from '@kubernetes/client-node';
import type { PolicyBundle } from '../policy/compile/bundle.ts';
import type { SignRequest } from '../proto/identity-service.ts';
import { type Hello, TRUST_BUNDLE_REPORT, type TrustBundle } from '../proto/policy-service.ts';
import { Metrics } from '../telemetry/metrics.ts';
import { OperatorMetrics, publishOperatorEvent } from '../telemetry/operator-metrics.ts';
import { AdmissionController } from './admission/admission-controller.ts';
import { injectorOptions } from './admission/injector-options.ts';
import { WorkloadSignError, WorkloadSigner } from './ca/workload-signer.ts';
import type { OperatorConfig } from './config.ts';
import { HealthServer } from './health-server.ts';
import { meshOf } from './index/mesh-endpoints.ts';
import { type PodInfo, PolicyIndex, podInfo, serviceInfo } from './index/policy-index.ts';
import { EventRecorder } from './kube/event-recorder.ts';
import { ResilientInformer } from './kube/informer.ts';
import { LeaderElector } from './kube/leader-election.ts';
import type { KubeLogger } from './kube/log.ts';
import { shareDispatchers } from './kube/shared-dispatcher.ts';
import { patchStatus } from './kube/status-patcher.ts';
import { AckRecorder } from './push/ack-recorder.ts';
import { MeshPush } from './push/mesh-push.ts';
import { PolicyServer, type SignOutcome } from './push/policy-server.ts';
import { PushQueue } from './push/push-queue.ts';
import { pushTrustBundle, SessionRegistry, type SidecarSession } from './push/sessions.ts';
import { authenticateHello, type TokenReviewResult } from './push/sidecar-auth.ts';
import { type AckState, annotatedAck } from './status/policy-status.ts';
import { StatusReconciler } from './status/status-reconciler.ts';

export const GROUP = 'tollgate.dev';
export const VERSION = 'v1alpha1';
export const PLURAL = 'apipolicies';
/** The longest sidecar report read. */
const MAX_REPORT = 4096;

export interface OperatorOptions {
  kubeConfig: KubeConfig;
  config: Pick<
    OperatorConfig,
    | 'grpcListen'
    | 'healthListen'
    | 'servingSecret'
    | 'namespace'
    | 'leaseName'
    | 'identity'
    | 'leaseDurationMs'
    | 'renewDeadlineMs'
    | 'retryPeriodMs'
  > &
    // Without these (tests of the policy plane): no webhook server, the serving Secret is only read.
    Partial<
      Pick<
        OperatorConfig,
        | 'webhookListen'
        | 'agentImage'
        | 'agentImagePullPolicy'
        | 'initImage'
        | 'initImagePullPolicy'
        | 'nativeSidecars'
        | 'manageCertificates'
        | 'trustDomain'
        | 'workloadCertTtlMs'
        | 'caRotateBeforeMs'
        | 'agentResources'
        | 'agentLogLevel'
        | 'agentOtlp'
        | 'agentRedisUrl'
      >
    >;
  log: KubeLogger;
  /** Written on injected pods (`tollgate.dev/injector-version`). Default `unknown`. */
  version?: string;
  /** Interval of serving-certificate checks (renewal, reload, caBundle). Default 60 s. */
  certificateCheckMs?: number;
  /** Push debounce (default 20 ms) and status debounce (default 50 ms). */
  pushDebounceMs?: number;
  statusDebounceMs?: number;
  /** Merges a burst of pod changes into one mesh push to every sidecar. Default 500 ms. */
  meshDebounceMs?: number;
  /** Coalescing of ACK annotations on Pods. Default 100 ms. */
  ackFlushMs?: number;
}

export interface OperatorAddresses {
  grpcPort: number;
  healthPort: number;
  /** Undefined when no webhook server runs. */
  webhookPort: number | undefined;
}

export class Operator {
  readonly index = new PolicyIndex();
  readonly sessions = new SessionRegistry();
  readonly metrics = new Metrics();
  readonly #o: OperatorOptions;
  readonly #core: CoreV1Api;
  readonly #custom: CustomObjectsApi;
  readonly #auth: AuthenticationV1Api;
  readonly #queue: PushQueue;
  readonly #mesh: MeshPush;
  readonly #status: StatusReconciler;
  readonly #acks: AckRecorder;
  readonly #events: EventRecorder;
  readonly #admission: AdmissionController;
  readonly #signer: WorkloadSigner;
  #informers: ResilientInformer<KubernetesObject>[] = [];
  #server: PolicyServer | undefined;
  #health: HealthServer | undefined;
  #elector: LeaderElector | undefined;
  #ready = false;
  #stopped = false;
  #unsubscribe: () => void = () => {};

  constructor(options: OperatorOptions) {
    this.#o = options;
    const kc = shareDispatchers(options.kubeConfig);
    this.#core = kc.makeApiClient(CoreV1Api);
    this.#custom = kc.makeApiClient(CustomObjectsApi);
    this.#auth = kc.makeApiClient(AuthenticationV1Api);
    this.#queue = new PushQueue({
      sessions: this.sessions,
      bundleFor: (s) => {
        const pod = this.index.pod(s.namespace, s.pod);
        return pod ? this.index.bundleFor(pod) : undefined;
      },
      debounceMs: options.pushDebounceMs ?? 20,
      onPush: () => publishOperatorEvent({ type: 'push', ok: true }),
    });
    this.#mesh = new MeshPush({
      sessions: this.sessions,
      mesh: () =>
        meshOf(this.index.pods(), this.index.services(), options.config.trustDomain ?? 'cluster.local'),
      debounceMs: options.meshDebounceMs ?? 500,
    });
    this.#events = new EventRecorder({ kubeConfig: kc, log: options.log, instance: options.config.identity });
    this.#status = new StatusReconciler({
      index: this.index,
      acks: (pod) => this.#ackOf(pod),
      writeStatus: (record, status) =>
        patchStatus(
          this.#custom,
          { group: GROUP, version: VERSION, plural: PLURAL, namespace: record.namespace, name: record.name },
          status,
        ),
      emitEvent: (record, event) =>
        void this.#events.record(
          {
            apiVersion: `${GROUP}/${VERSION}`,
            kind: 'ApiPolicy',
            metadata: { namespace: record.namespace, name: record.name, uid: record.uid },
          },
          event.type,
          event.reason,
          event.message,
        ),
      log: options.log,
      debounceMs: options.statusDebounceMs ?? 50,
    });
    this.#acks = new AckRecorder({
      annotate: async (namespace, name, annotations) => {
        await this.#core.patchNamespacedPod(
          { namespace, name, body: { metadata: { annotations } } },
          setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
        );
      },
      log: options.log,
      flushMs: options.ackFlushMs ?? 100,
    });
    this.#admission = this.#admissionController();
    this.#signer = new WorkloadSigner({
      trustDomain: options.config.trustDomain ?? 'cluster.local',
      ...(options.config.workloadCertTtlMs === undefined ? {} : { ttlMs: options.config.workloadCertTtlMs }),
      ca: () => this.#admission.signingCa,
    });
  }

  /** True once the informers synced and the policy stream serves. */
  get ready(): boolean {
    return this.#ready;
  }

  get leader(): boolean {
    return this.#elector?.isLeader ?? false;
  }

  /** The bundle the operator would send to a pod now (for diagnostics and tests). */
  bundleForPod(namespace: string, name: string): PolicyBundle | undefined {
    const pod = this.index.pod(namespace, name);
    return pod ? this.index.bundleFor(pod).bundle : undefined;
  }

  async start(): Promise<OperatorAddresses> {
    const { config, log } = this.#o;
    const tls = await this.#admission.startCertificates();
    this.#unsubscribe = new OperatorMetrics(this.metrics).subscribe();
    this.#health = new HealthServer({
      host: config.healthListen.host,
      port: config.healthListen.port,
      ready: () => this.#ready,
      metrics: () => this.#renderMetrics(),
    });
    const health = await this.#health.start();
    this.#informers = [
      this.#namespaceInformer(),
      this.#podInformer(),
      this.#serviceInformer(),
      this.#policyInformer(),
    ];
    await Promise.all(this.#informers.map((i) => i.start()));
    this.#server = new PolicyServer({
      listen: `${config.grpcListen.host}:${config.grpcListen.port}`,
      tls,
      authenticate: (hello) => this.#authenticate(hello),
      sessions: this.sessions,
      queue: this.#queue,
      trustBundle: () => this.#admission.trustBundle,
      log,
      onAck: (s, version) => {
        publishOperatorEvent({ type: 'ack', result: 'ack' });
        this.#acks.ack(s.namespace, s.pod, version);
        this.#markPod(s.namespace, s.pod);
      },
      onNack: (s, version, error) => {
        publishOperatorEvent({ type: 'ack', result: 'nack' });
        this.#acks.nack(s.namespace, s.pod, version, error);
        this.#markPod(s.namespace, s.pod);
      },
      onReport: (s, kind, json) => this.#report(s, kind, json),
      sign: (request) => this.#sign(request),
      onConnect: (s) => {
        publishOperatorEvent({ type: 'sidecar', change: 'connected' });
        this.#markPod(s.namespace, s.pod);
      },
      onGreeted: (s) => this.#mesh.greet(s),
      onDisconnect: () => publishOperatorEvent({ type: 'sidecar', change: 'disconnected' }),
    });
    const grpcPort = await this.#server.start();
    const webhookPort = await this.#admission.startWebhook(tls);
    this.#elector = new LeaderElector({
      kubeConfig: this.#o.kubeConfig,
      namespace: config.namespace,
      name: config.leaseName,
      identity: config.identity,
      leaseDurationMs: config.leaseDurationMs,
      renewDeadlineMs: config.renewDeadlineMs,
      retryPeriodMs: config.retryPeriodMs,
      log,
      onStartedLeading: () => {
        log.info({ identity: config.identity }, 'leading');
        this.#status.setActive(true);
        this.#admission.setLeader(true);
      },
      onStoppedLeading: () => {
        log.info({ identity: config.identity }, 'no longer leading');
        this.#status.setActive(false);
        this.#admission.setLeader(false);
      },
    });
    this.#elector.start();
    this.#ready = true;
    return { grpcPort, healthPort: health.port, webhookPort };
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#ready = false;
    this.#queue.close();
    this.#mesh.close();
    this.#status.close();
    await this.#acks.flush();
    this.#acks.close();
    await this.#elector?.stop();
    await Promise.all(this.#informers.map((i) => i.stop()));
    await this.#server?.close();
    await this.#admission.stop();
    await this.#health?.close();
    this.#unsubscribe();
  }

  /** Ends every sidecar stream now (they reconnect); for tests. */
  dropStreams(): void {
    this.#server?.forceShutdown();
  }

  #admissionController(): AdmissionController {
    const { config, log } = this.#o;
    return new AdmissionController({
      kubeConfig: this.#o.kubeConfig,
      servingSecret: config.servingSecret,
      manageCertificates: config.manageCertificates ?? false,
      ...(config.trustDomain ? { trustDomain: config.trustDomain } : {}),
      ...(config.webhookListen && config.agentImage
        ? {
            webhook: {
              listen: config.webhookListen,
              inject: injectorOptions(
                { ...config, agentImage: config.agentImage },
                this.#o.version ?? 'unknown',
              ),
            },
          }
        : {}),
      namespaceLabels: (namespace) => this.index.namespaceLabels(namespace),
      log,
      ...(this.#o.certificateCheckMs === undefined ? {} : { certificateCheckMs: this.#o.certificateCheckMs }),
      onTrustBundle: (bundle) => this.#pushTrustBundle(bundle),
      ...(config.caRotateBeforeMs === undefined ? {} : { caRotateBeforeMs: config.caRotateBeforeMs }),
      ...(config.workloadCertTtlMs === undefined ? {} : { workloadCertTtlMs: config.workloadCertTtlMs }),
    });
  }

  /** A new trust bundle goes to every sidecar this replica serves, at once (no debounce: it changes rarely). */
  #pushTrustBundle(bundle: TrustBundle | null): void {
    let sent = 0;
    for (const session of this.sessions.all()) if (pushTrustBundle(session, bundle)) sent++;
    if (sent > 0) this.#o.log.info({ version: bundle?.version, sidecars: sent }, 'trust bundle pushed');
  }

  /** IdentityService.Sign: the pod authenticated as for a Hello, then its CSR signed for its service account. */
  async #sign(request: SignRequest): Promise<SignOutcome> {
    const who = { 'pod.namespace': request.podNamespace, 'pod.name': request.podName };
    const auth = await this.#authenticate(request);
    if (!auth.ok) {
      this.#o.log.warn({ ...who, code: GrpcStatus[auth.code], reason: auth.message }, 'sign refused');
      return auth;
    }
    try {
      const signed = await this.#signer.sign(request.csr, {
        namespace: auth.pod.namespace,
        serviceAccount: auth.serviceAccount,
      });
      this.#o.log.info(
        { ...who, spiffeId: signed.spiffeId, notAfter: signed.notAfter.toISOString() },
        'workload certificate signed',
      );
      return { ok: true, certChain: signed.certChain, trustBundle: signed.trustBundle };
    } catch (error) {
      if (!(error instanceof WorkloadSignError)) throw error;
      const code =
        error.code === 'ERR_SIGN_CSR_INVALID' ? GrpcStatus.INVALID_ARGUMENT : GrpcStatus.UNAVAILABLE;
      this.#o.log.warn({ ...who, code: GrpcStatus[code], reason: error.message }, 'sign refused');
      return { ok: false, code, message: error.message };
    }
  }

  async #authenticate(hello: Pick<Hello, 'podName' | 'podNamespace' | 'token'>) {
    return authenticateHello(
      hello,
      async (token, audiences): Promise<TokenReviewResult> => {
        const review = await this.#auth.createTokenReview({ body: { spec: { token, audiences } } });
        const s = review.status ?? {};
        return {
          authenticated: s.authenticated === true,
          ...(s.user?.username === undefined ? {} : { username: s.user.username }),
          ...(s.user?.extra === undefined ? {} : { extra: s.user.extra }),
          ...(s.error === undefined ? {} : { error: s.error }),
        };
      },
      async (namespace, name) => {
        const known = this.index.pod(namespace, name);
        if (known) return known;
        try {
          return podInfo(await this.#core.readNamespacedPod({ namespace, name }));
        } catch {
          return undefined;
        }
      },
    );
  }

  /**
   * A sidecar's report. `client-blocked` (protection blocked a client key)
   * becomes a Warning Event on the pod; anything else is logged at debug.
   * Reports are untrusted input: bounded, parsed defensively, never thrown on.
   */
  #report(session: SidecarSession, kind: string, json: string): void {
    const who = { 'pod.namespace': session.namespace, 'pod.name': session.pod, kind };
    if (kind === TRUST_BUNDLE_REPORT && json.length <= MAX_REPORT) {
      this.#trustReport(session, json);
      return;
    }
    if (kind !== 'client-blocked' || json.length > MAX_REPORT) {
      this.#o.log.debug(who, 'sidecar report ignored');
      return;
    }
    let fields: Record<string, unknown>;
    try {
      const parsed: unknown = JSON.parse(json);
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
        throw new Error('not an object');
      fields = parsed as Record<string, unknown>;
    } catch {
      this.#o.log.debug(who, 'sidecar report malformed');
      return;
    }
    const text = (k: string) => (typeof fields[k] === 'string' ? (fields[k] as string).slice(0, 256) : '?');
    this.#podWarning(
      session,
      'ClientBlocked',
      `protection blocked client ${text('key')} (${text('reason')}) until ${text('until')}; policy ${text('policy')}, mode ${text('mode')}`,
    );
  }

  /** A Warning Event on the session's pod. */
  #podWarning(session: SidecarSession, reason: string, message: string): void {
    const pod = this.index.pod(session.namespace, session.pod);
    void this.#events.record(
      {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { namespace: session.namespace, name: session.pod, ...(pod ? { uid: pod.uid } : {}) },
      },
      'Warning',
      reason,
      message,
    );
  }

  /**
   * A sidecar's answer to a trust bundle: an accepted version is recorded on
   * the session (`tollgate_operator_trust_bundle_sidecars`); a rejection is a
   * warn log and a Warning Event `TrustBundleRejected` on the pod.
   */
  #trustReport(session: SidecarSession, json: string): void {
    const who = { 'pod.namespace': session.namespace, 'pod.name': session.pod };
    let report: { version?: unknown; result?: unknown; error?: unknown };
    try {
      report = JSON.parse(json) ?? {};
    } catch {
      this.#o.log.debug(who, 'sidecar report malformed');
      return;
    }
    const version = typeof report.version === 'string' ? report.version.slice(0, 128) : '?';
    if (report.result === 'accepted') {
      session.trustVersion = version;
      return;
    }
    const error = typeof report.error === 'string' ? report.error.slice(0, 512) : '?';
    this.#o.log.warn({ ...who, version, error }, 'sidecar rejected trust bundle');
    this.#podWarning(
      session,
      'TrustBundleRejected',
      `the sidecar rejected trust bundle ${version}: ${error}`,
    );
  }

  /** Local sessions know first; the Pod annotations carry what other replicas heard. */
  #ackOf(pod: PodInfo): AckState {
    return this.sessions.ackFor(pod.namespace, pod.name) ?? annotatedAck(pod);
  }

  #markPod(namespace: string, name: string): void {
    const pod = this.index.pod(namespace, name);
    if (!pod) return;
    for (const p of this.index.policiesSelecting(namespace, pod.labels))
      this.#status.mark(p.namespace, p.name);
  }

  #markNamespace(namespace: string): void {
    for (const p of this.index.policies())
      if (p.namespace === namespace) this.#status.mark(p.namespace, p.name);
  }

  #watched(
    resource: 'ApiPolicy' | 'Pod' | 'Namespace' | 'Service',
    event: 'ADDED' | 'MODIFIED' | 'DELETED',
  ): void {
    publishOperatorEvent({ type: 'watch', resource, event });
  }

  #policyInformer(): ResilientInformer<KubernetesObject> {
    const changed = (obj: KubernetesObject, event: 'ADDED' | 'MODIFIED') => {
      this.#watched('ApiPolicy', event);
      const namespace = obj.metadata?.namespace ?? 'default';
      if (!this.index.upsertPolicy(obj)) return;
      const record = this.index.policy(namespace, obj.metadata?.name ?? '');
      publishOperatorEvent(
        record?.valid === false
          ? { type: 'compile', ok: false, reason: 'Invalid' }
          : { type: 'compile', ok: true },
      );
      this.#queue.enqueueNamespace(namespace);
      this.#markNamespace(namespace);
    };
    return new ResilientInformer<KubernetesObject>({
      kubeConfig: this.#o.kubeConfig,
      path: `/apis/${GROUP}/${VERSION}/${PLURAL}`,
      list: (query) =>
        this.#custom.listClusterCustomObject({
          group: GROUP,
          version: VERSION,
          plural: PLURAL,
          ...query,
        }) as never,
      onAdd: (obj) => changed(obj, 'ADDED'),
      onUpdate: (obj) => changed(obj, 'MODIFIED'),
      onDelete: (obj) => {
        this.#watched('ApiPolicy', 'DELETED');
        const namespace = obj.metadata?.namespace ?? 'default';
        const name = obj.metadata?.name ?? '';
        this.index.deletePolicy(namespace, name);
        this.#status.forget(namespace, name);
        this.#queue.enqueueNamespace(namespace);
        this.#markNamespace(namespace);
      },
      log: this.#o.log,
      name: 'apipolicies',
    });
  }

  #podInformer(): ResilientInformer<KubernetesObject> {
    const changed = (obj: KubernetesObject, event: 'ADDED' | 'MODIFIED') => {
      this.#watched('Pod', event);
      const pod = podInfo(obj);
      const before = this.index.upsertPod(pod);
      if (before && JSON.stringify(before) === JSON.stringify(pod)) return;
      this.#queue.enqueuePod(pod.namespace, pod.name);
      this.#mesh.changed();
      for (const labels of before ? [before.labels, pod.labels] : [pod.labels]) {
        for (const p of this.index.policiesSelecting(pod.namespace, labels))
          this.#status.mark(p.namespace, p.name);
      }
    };
    return new ResilientInformer<KubernetesObject>({
      kubeConfig: this.#o.kubeConfig,
      path: '/api/v1/pods',
      list: (query) => this.#core.listPodForAllNamespaces({ ...query }) as never,
      onAdd: (obj) => changed(obj, 'ADDED'),
      onUpdate: (obj) => changed(obj, 'MODIFIED'),
      onDelete: (obj) => {
        this.#watched('Pod', 'DELETED');
        const gone = this.index.deletePod(obj.metadata?.namespace ?? 'default', obj.metadata?.name ?? '');
        if (!gone) return;
        this.#mesh.changed();
        for (const p of this.index.policiesSelecting(gone.namespace, gone.labels))
          this.#status.mark(p.namespace, p.name);
      },
      log: this.#o.log,
      name: 'pods',
    });
  }

  /** Services, for the mesh only (a Service whose pods are all meshed is a meshed destination). */
  #serviceInformer(): ResilientInformer<KubernetesObject> {
    const changed = (obj: KubernetesObject, event: 'ADDED' | 'MODIFIED') => {
      this.#watched('Service', event);
      const service = serviceInfo(obj);
      const before = this.index.upsertService(service);
      if (before && JSON.stringify(before) === JSON.stringify(service)) return;
      this.#mesh.changed();
    };
    return new ResilientInformer<KubernetesObject>({
      kubeConfig: this.#o.kubeConfig,
      path: '/api/v1/services',
      list: (query) => this.#core.listServiceForAllNamespaces({ ...query }) as never,
      onAdd: (obj) => changed(obj, 'ADDED'),
      onUpdate: (obj) => changed(obj, 'MODIFIED'),
      onDelete: (obj) => {
        this.#watched('Service', 'DELETED');
        if (this.index.deleteService(obj.metadata?.namespace ?? 'default', obj.metadata?.name ?? ''))
          this.#mesh.changed();
      },
      log: this.#o.log,
      name: 'services',
    });
  }

  #namespaceInformer(): ResilientInformer<KubernetesObject> {
    const changed = (obj: KubernetesObject, event: 'ADDED' | 'MODIFIED') => {
      this.#watched('Namespace', event);
      this.index.upsertNamespace(obj.metadata?.name ?? '', obj.metadata?.labels ?? {});
      const phase = (obj as { status?: { phase?: string } }).status?.phase;
      this.#admission.namespaceSeen(obj.metadata?.name ?? '', phase === 'Terminating');
    };
    return new ResilientInformer<KubernetesObject>({
      kubeConfig: this.#o.kubeConfig,
      path: '/api/v1/namespaces',
      list: (query) => this.#core.listNamespace({ ...query }) as never,
      onAdd: (obj) => changed(obj, 'ADDED'),
      onUpdate: (obj) => changed(obj, 'MODIFIED'),
      onDelete: (obj) => {
        this.#watched('Namespace', 'DELETED');
        this.index.deleteNamespace(obj.metadata?.name ?? '');
        this.#admission.namespaceGone(obj.metadata?.name ?? '');
      },
      log: this.#o.log,
      name: 'namespaces',
    });
  }

  #renderMetrics(): string {
    this.metrics.set(
      'tollgate_operator_connected_sidecars',
      {},
      this.sessions.size,
      'Sidecar streams this replica serves.',
    );
    const byTrust = new Map<string, number>();
    for (const s of this.sessions.all()) byTrust.set(s.trustVersion, (byTrust.get(s.trustVersion) ?? 0) + 1);
    this.metrics.reset('tollgate_operator_trust_bundle_sidecars');
    for (const [version, count] of byTrust)
      this.metrics.set(
        'tollgate_operator_trust_bundle_sidecars',
        { version },
        count,
        'Sidecar streams of this replica by the trust bundle version they accepted ("" none yet).',
      );
    this.metrics.reset('tollgate_operator_trust_bundle_info');
    this.metrics.set(
      'tollgate_operator_trust_bundle_info',
      { version: this.#admission.trustBundle?.version ?? '' },
      1,
      'The trust bundle this replica distributes.',
    );
    this.metrics.set(
      'tollgate_operator_leader',
      {},
      this.leader ? 1 : 0,
      '1 on the replica that writes status.',
    );
    const mem = process.memoryUsage();
    this.metrics.set(
      'process_resident_memory_bytes',
      {},
      mem.rss,
      'Resident memory of the operator process.',
    );
    this.metrics.set('nodejs_heap_used_bytes', {}, mem.heapUsed, 'V8 heap in use.');
    this.metrics.set('nodejs_heap_total_bytes', {}, mem.heapTotal, 'V8 heap reserved.');
    this.metrics.set(
      'nodejs_external_memory_bytes',
      {},
      mem.external,
      'Memory of C++ objects bound to JavaScript (buffers, TLS).',
    );
    return this.metrics.render();
  }
}
