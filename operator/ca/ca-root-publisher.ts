/**
 * Keeps the ConfigMap `tollgate-ca-root` (key `ca.crt`: the CA that signs the
 * operator's serving certificate) in every namespace, like Istio's
 * istio-ca-root-cert: injected agents mount it to verify the operator. The
 * namespace informer reports namespaces (no I/O in its callbacks: they only
 * queue); a worker creates or updates the ConfigMap where it is missing or
 * differs, retrying failures with backoff. Only the active replica (the Lease
 * leader) writes; a periodic resync repairs ConfigMaps edited or deleted by
 * hand.
 */
import { CoreV1Api, type KubeConfig, type V1ConfigMap } from '@kubernetes/client-node';
import { CA_ROOT_CONFIGMAP } from '../admission/sidecar-containers.ts';
import { type Backoff, backoffDelay } from '../kube/backoff.ts';
import { errorFields, type KubeLogger, silentLogger } from '../kube/log.ts';
import { statusOf } from '../kube/request-options.ts';

export const CA_ROOT_KEY = 'ca.crt';

export interface CaRootPublisherOptions {
  kubeConfig: KubeConfig;
  /** Default `tollgate-ca-root`. */
  name?: string;
  /** Retry pacing of a namespace whose write failed. Default 1 s doubling to 60 s. */
  backoff?: Backoff;
  /** Every namespace is checked again this often while active. Default 1 h. */
  resyncMs?: number;
  log?: KubeLogger;
}

export class CaRootPublisher {
  readonly #o: CaRootPublisherOptions;
  readonly #core: CoreV1Api;
  readonly #log: KubeLogger;
  readonly #name: string;
  readonly #namespaces = new Set<string>();
  readonly #queue = new Set<string>();
  readonly #failures = new Map<string, number>();
  readonly #timers = new Set<NodeJS.Timeout>();
  #root: string | null = null;
  #active = false;
  #closed = false;
  #draining: Promise<void> | undefined;
  #resync: NodeJS.Timeout | undefined;

  constructor(options: CaRootPublisherOptions) {
    this.#o = options;
    this.#core = options.kubeConfig.makeApiClient(CoreV1Api);
    this.#log = options.log ?? silentLogger;
    this.#name = options.name ?? CA_ROOT_CONFIGMAP;
  }

  /** The CA to publish (PEM); a change queues every namespace. */
  setRoot(pem: string | null): void {
    if (pem === this.#root) return;
    this.#root = pem;
    this.#enqueueAll();
  }

  /** Writes only while active (the Lease leader); activation queues every namespace. */
  setActive(active: boolean): void {
    if (active === this.#active) return;
    this.#active = active;
    clearInterval(this.#resync);
    if (!active) return;
    this.#resync = setInterval(() => this.#enqueueAll(), this.#o.resyncMs ?? 3_600_000);
    this.#resync.unref();
    this.#enqueueAll();
  }

  /** A namespace exists (informer add or update); a terminating one is skipped. */
  namespaceSeen(name: string, terminating = false): void {
    if (terminating) {
      this.namespaceGone(name);
      return;
    }
    if (this.#namespaces.has(name)) return;
    this.#namespaces.add(name);
    this.#enqueue(name);
  }

  namespaceGone(name: string): void {
    this.#namespaces.delete(name);
    this.#queue.delete(name);
    this.#failures.delete(name);
  }

  /** Resolves once the queue is empty (retries still pending on timers are not awaited). */
  async idle(): Promise<void> {
    for (let d = this.#draining; d !== undefined; d = this.#draining) await d;
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#resync);
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    this.#queue.clear();
  }

  #enqueueAll(): void {
    for (const ns of this.#namespaces) this.#enqueue(ns);
  }

  #enqueue(namespace: string): void {
    if (this.#closed) return;
    this.#queue.add(namespace);
    if (this.#active && this.#root !== null) this.#draining ??= this.#drain();
  }

  async #drain(): Promise<void> {
    // Leave the informer's call stack before any I/O.
    await Promise.resolve();
    while (this.#active && !this.#closed && this.#root !== null) {
      const [namespace] = this.#queue;
      if (namespace === undefined) break;
      this.#queue.delete(namespace);
      if (!this.#namespaces.has(namespace)) continue;
      try {
        await this.#publish(namespace, this.#root);
        this.#failures.delete(namespace);
      } catch (error) {
        this.#retry(namespace, error);
      }
    }
    this.#draining = undefined;
  }

  #retry(namespace: string, error: unknown): void {
    const attempt = this.#failures.get(namespace) ?? 0;
    this.#failures.set(namespace, attempt + 1);
    const delay = backoffDelay(attempt, this.#o.backoff ?? { initialMs: 1000, maxMs: 60_000 });
    this.#log.warn(
      { namespace, retryInMs: Math.round(delay), ...errorFields(error) },
      'CA root publish failed',
    );
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      this.#enqueue(namespace);
    }, delay);
    timer.unref();
    this.#timers.add(timer);
  }

  async #publish(namespace: string, root: string): Promise<void> {
    let existing: V1ConfigMap | undefined;
    try {
      existing = await this.#core.readNamespacedConfigMap({ namespace, name: this.#name });
    } catch (error) {
      if (statusOf(error) !== 404) throw error;
    }
    if (existing?.data?.[CA_ROOT_KEY] === root) return;
    const body: V1ConfigMap = {
      metadata: {
        name: this.#name,
        namespace,
        labels: { 'app.kubernetes.io/managed-by': 'tollgate-operator' },
        ...(existing?.metadata?.resourceVersion
          ? { resourceVersion: existing.metadata.resourceVersion }
          : {}),
      },
      data: { [CA_ROOT_KEY]: root },
    };
    try {
      if (existing) await this.#core.replaceNamespacedConfigMap({ namespace, name: this.#name, body });
      else await this.#core.createNamespacedConfigMap({ namespace, body });
      this.#log.info({ namespace, configmap: this.#name }, existing ? 'CA root updated' : 'CA root created');
    } catch (error) {
      // Someone else wrote meanwhile: look again.
      if (statusOf(error) === 409) this.#queue.add(namespace);
      else if (statusOf(error) === 404) this.namespaceGone(namespace);
      // A terminating namespace refuses new objects (403), as does missing RBAC: no retry until the next resync.
      else if (statusOf(error) === 403)
        this.#log.warn({ namespace, ...errorFields(error) }, 'CA root publish refused');
      else throw error;
    }
  }
}
