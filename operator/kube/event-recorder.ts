/**
 * Kubernetes Events about the objects the operator manages (`kubectl
 * describe` shows them), as core/v1 Events in the object's namespace. Like
 * client-go's event correlator, a repeat of the same event (same object uid,
 * type, reason and message) within the aggregation window bumps the existing
 * Event's `count` and `lastTimestamp` with a merge patch instead of creating
 * another. Recording never throws and never blocks the caller's loop on
 * failure: errors are logged, and memory stays bounded by an LRU of recent
 * events.
 */
import { randomInt } from 'node:crypto';
import { CoreV1Api, type CoreV1Event, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import { LRUCache } from 'lru-cache';
import { errorFields, type KubeLogger, silentLogger } from './log.ts';
import { mergePatch, statusOf } from './request-options.ts';

/** An Event's type. */
export type EventType = 'Normal' | 'Warning';

/** The Event calls the recorder makes (a `CoreV1Api` has them). */
export type EventApi = Pick<CoreV1Api, 'createNamespacedEvent' | 'patchNamespacedEvent'>;

/** Options of {@link EventRecorder}. */
export interface EventRecorderOptions {
  /** Builds the Event client; or pass `api`. */
  kubeConfig?: KubeConfig;
  api?: EventApi;
  /** This replica, e.g. the pod name: `reportingInstance` and `source.host`. */
  instance: string;
  /** `source.component`. Default `tollgate-operator`. */
  component?: string;
  /** `reportingComponent` (core/v1's name for the reporting controller). Default `tollgate.dev/operator`. */
  controller?: string;
  /** Repeats within this long of the last occurrence update the same Event. Default 10 min. */
  aggregationWindowMs?: number;
  /** How many recent events are remembered for aggregation. Default 4096. */
  cacheSize?: number;
  /** Clock in ms. Default `Date.now`. */
  now?: () => number;
  log?: KubeLogger;
}

/** Longest message kept; longer ones are cut (events.k8s.io's limit on a note). */
const MAX_MESSAGE = 1024;
/** Longest object-name prefix, leaving room for `.` and a 16-digit hex suffix in a 253-character name. */
const MAX_NAME_PREFIX = 236;

interface Recent {
  namespace: string;
  name: string;
  count: number;
  lastSeen: number;
}

interface Occurrence {
  object: KubernetesObject;
  type: EventType;
  reason: string;
  message: string;
}

/** Records Events; construction does no I/O. */
export class EventRecorder {
  readonly #api: EventApi;
  readonly #instance: string;
  readonly #component: string;
  readonly #controller: string;
  readonly #windowMs: number;
  readonly #now: () => number;
  readonly #log: KubeLogger;
  readonly #recent: LRUCache<string, Recent>;
  /** The write in flight per event key, so repeats are counted in order. */
  readonly #pending = new Map<string, Promise<void>>();

  constructor(options: EventRecorderOptions) {
    const api = options.api ?? options.kubeConfig?.makeApiClient(CoreV1Api);
    if (api === undefined) throw new TypeError('EventRecorder needs kubeConfig or api');
    this.#api = api;
    this.#instance = options.instance;
    this.#component = options.component ?? 'tollgate-operator';
    this.#controller = options.controller ?? 'tollgate.dev/operator';
    this.#windowMs = options.aggregationWindowMs ?? 10 * 60_000;
    this.#now = options.now ?? Date.now;
    this.#log = options.log ?? silentLogger;
    this.#recent = new LRUCache({ max: options.cacheSize ?? 4096 });
  }

  /**
   * Records an event about `object` (which needs `metadata.name`; `kind` and
   * `apiVersion` go into the reference as given). Resolves when written or
   * when the failure has been logged; never rejects.
   */
  record(object: KubernetesObject, type: EventType, reason: string, message: string): Promise<void> {
    const occurrence: Occurrence = { object, type, reason, message: message.slice(0, MAX_MESSAGE) };
    const meta = object.metadata ?? {};
    const key = JSON.stringify([
      meta.uid ?? `${object.kind}/${meta.namespace}/${meta.name}`,
      type,
      reason,
      occurrence.message,
    ]);
    const previous = this.#pending.get(key) ?? Promise.resolve();
    const next = previous.then(() => this.#write(key, occurrence));
    this.#pending.set(key, next);
    void next.then(() => {
      if (this.#pending.get(key) === next) this.#pending.delete(key);
    });
    return next;
  }

  async #write(key: string, occurrence: Occurrence): Promise<void> {
    try {
      const now = this.#now();
      const recent = this.#recent.get(key);
      if (recent !== undefined && now - recent.lastSeen <= this.#windowMs) {
        if (await this.#bump(recent, now)) return;
        this.#recent.delete(key);
      }
      const created = await this.#create(occurrence, now);
      this.#recent.set(key, created);
    } catch (error) {
      const { object, type, reason } = occurrence;
      this.#log.warn(
        {
          object: `${object.kind ?? ''}/${object.metadata?.namespace ?? ''}/${object.metadata?.name ?? ''}`,
          type,
          reason,
          ...errorFields(error),
        },
        'event not recorded',
      );
    }
  }

  /** Counts a repeat on the existing Event; false when that Event is gone (expired on the server). */
  async #bump(recent: Recent, now: number): Promise<boolean> {
    try {
      await this.#api.patchNamespacedEvent(
        {
          namespace: recent.namespace,
          name: recent.name,
          body: { count: recent.count + 1, lastTimestamp: new Date(now) },
        },
        mergePatch(),
      );
    } catch (error) {
      if (statusOf(error) === 404) return false;
      throw error;
    }
    recent.count++;
    recent.lastSeen = now;
    return true;
  }

  async #create({ object, type, reason, message }: Occurrence, now: number): Promise<Recent> {
    const meta = object.metadata ?? {};
    const objectName = meta.name ?? '';
    const namespace = meta.namespace === undefined || meta.namespace === '' ? 'default' : meta.namespace;
    // client-go's naming: the object's name and the time in hex nanoseconds (here ms plus random ns).
    const suffix = (BigInt(now) * 1_000_000n + BigInt(randomInt(1_000_000))).toString(16);
    const event: CoreV1Event = {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name: `${objectName.slice(0, MAX_NAME_PREFIX)}.${suffix}`, namespace },
      involvedObject: {
        ...(object.apiVersion === undefined ? {} : { apiVersion: object.apiVersion }),
        ...(object.kind === undefined ? {} : { kind: object.kind }),
        ...(meta.namespace === undefined ? {} : { namespace: meta.namespace }),
        name: objectName,
        ...(meta.uid === undefined ? {} : { uid: meta.uid }),
        ...(meta.resourceVersion === undefined ? {} : { resourceVersion: meta.resourceVersion }),
      },
      type,
      reason,
      message,
      source: { component: this.#component, host: this.#instance },
      reportingComponent: this.#controller,
      reportingInstance: this.#instance,
      firstTimestamp: new Date(now),
      lastTimestamp: new Date(now),
      count: 1,
    };
    const created = await this.#api.createNamespacedEvent({ namespace, body: event });
    return { namespace, name: created.metadata?.name ?? event.metadata.name ?? '', count: 1, lastSeen: now };
  }
}
