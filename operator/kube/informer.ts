/**
 * A list+watch cache of one kind of object that never gives up: client-node's
 * `ListWatch` does the listing, watching and cache diffing, and relists by
 * itself on 410 Gone; but on any other error (API unreachable, 5xx, a failed
 * relist) it reports `error` and stops for good. This wrapper restarts it with
 * exponential backoff and jitter, resuming from the last resourceVersion (a
 * relist follows when that has expired), so consumers see every add, update
 * and delete — including deletions that happened while disconnected, which a
 * relist turns into `onDelete` — and never have to restart anything.
 */
import {
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  ListWatch,
  Watch,
} from '@kubernetes/client-node';
import { type Backoff, backoffDelay, type Delay, sleep } from './backoff.ts';
import { errorFields, type KubeLogger, silentLogger } from './log.ts';

/** What the list function must apply: the informer's label selector, when it has one. */
export interface ListQuery {
  labelSelector?: string;
}

/** Options of {@link ResilientInformer}. */
export interface ResilientInformerOptions<T extends KubernetesObject> {
  kubeConfig: KubeConfig;
  /** The collection's URL path, e.g. `/api/v1/pods` or `/apis/tollgate.dev/v1alpha1/namespaces/shop/apipolicies`. */
  path: string;
  /** Lists the same collection; spread `query` into the request so the selector matches the watch's. */
  list: (query: ListQuery) => Promise<KubernetesListObject<T>>;
  /** Only objects with these labels (`app=x,tier!=y`). Default: all. */
  labelSelector?: string;
  /** Handlers: called synchronously, in order, after the cache changed; a throw is logged, never propagated. */
  onAdd?: (object: T) => void;
  onUpdate?: (object: T, old: T) => void;
  onDelete?: (object: T) => void;
  /** Pacing of restarts after an error. Default 250 ms doubling to 30 s (jittered). */
  backoff?: Backoff;
  /** Sleeps between restarts and watch reconnects. Default a timer. */
  delay?: Delay;
  /** Jitter source in [0, 1). Default `Math.random`. */
  random?: () => number;
  log?: KubeLogger;
  /** Names this informer in logs. Default `path`. */
  name?: string;
}

type Done = (error: unknown) => void;
type Callback = (phase: string, object: unknown, raw?: unknown) => void;

interface WatchHooks {
  stopped(): boolean;
  expired(): void;
}

function isGone(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false;
  const { code, statusCode } = value as { code?: unknown; statusCode?: unknown };
  return code === 410 || statusCode === 410;
}

/** client-node's Watch, made safe to stop at any moment and unable to reject into the void. */
class GuardedWatch extends Watch {
  readonly #hooks: WatchHooks;

  constructor(kubeConfig: KubeConfig, hooks: WatchHooks) {
    super(kubeConfig);
    this.#hooks = hooks;
  }

  override async watch(
    path: string,
    query: Record<string, string | number | boolean | undefined>,
    callback: Callback,
    done: Done,
  ): Promise<AbortController> {
    const dead = new AbortController();
    dead.abort();
    // ListWatch starts a watch after a list even when stopped meanwhile.
    if (this.#hooks.stopped()) return dead;
    const onEvent: Callback = (phase, object, raw) => {
      if (phase === 'ERROR' && isGone(object)) this.#hooks.expired();
      callback(phase, object, raw);
    };
    const onDone: Done = (error) => {
      if (isGone(error)) this.#hooks.expired();
      done(error);
    };
    let controller: AbortController;
    try {
      controller = await super.watch(path, query, onEvent, onDone);
    } catch (error) {
      // Authentication set-up throws before Watch's own error handling; ListWatch would not catch it.
      done(error);
      return dead;
    }
    if (this.#hooks.stopped()) controller.abort();
    return controller;
  }
}

function keyOf(object: KubernetesObject): string {
  return `${object.metadata?.namespace ?? ''}/${object.metadata?.name ?? ''}`;
}

/**
 * A self-healing informer over client-node's `ListWatch`. Construction does
 * nothing; {@link start} lists and watches, {@link stop} ends it. The cache
 * keeps serving the last known state while disconnected.
 */
export class ResilientInformer<T extends KubernetesObject> {
  readonly #options: ResilientInformerOptions<T>;
  readonly #log: KubeLogger;
  readonly #name: string;
  readonly #lw: ListWatch<T>;
  readonly #abort = new AbortController();
  /** The last version handed to handlers, for `onUpdate`'s `old`. */
  readonly #previous = new Map<string, T>();
  readonly #synced = Promise.withResolvers<void>();
  #hasSynced = false;
  #started = false;
  #failure = Promise.withResolvers<unknown>();
  #failed = false;
  #loop: Promise<void> | undefined;

  constructor(options: ResilientInformerOptions<T>) {
    this.#options = options;
    this.#log = options.log ?? silentLogger;
    this.#name = options.name ?? options.path;
    const signal = this.#abort.signal;
    const watch = new GuardedWatch(options.kubeConfig, {
      stopped: () => signal.aborted,
      expired: () => this.#log.info({ informer: this.#name }, 'watch expired, relisting'),
    });
    const delay = options.delay ?? sleep;
    this.#lw = new ListWatch<T>(
      options.path,
      watch,
      () => this.#list(),
      false,
      options.labelSelector,
      undefined,
      {
        delayFn: (ms) => delay(ms, signal).catch(() => {}),
      },
    );
    this.#lw.on('add', (object: T) => this.#added(object));
    this.#lw.on('update', (object: T) => this.#updated(object));
    this.#lw.on('delete', (object: T) => this.#deleted(object));
    this.#lw.on('error', (error: unknown) => this.#onError(error));
  }

  /** Whether the first list has been loaded into the cache. */
  get hasSynced(): boolean {
    return this.#hasSynced;
  }

  /**
   * Starts listing and watching, retrying until the API answers; resolves
   * once the first list is in the cache (or at {@link stop}). Idempotent.
   */
  start(): Promise<void> {
    if (!this.#started && !this.#abort.signal.aborted) {
      this.#started = true;
      this.#loop = this.#run();
    }
    return this.#synced.promise;
  }

  /** Stops watching and any pending restart. The cache keeps its last state. */
  async stop(): Promise<void> {
    if (this.#abort.signal.aborted) return;
    this.#abort.abort();
    this.#failure.resolve(undefined);
    this.#synced.resolve();
    await this.#lw.stop();
    await this.#loop;
  }

  /** Every cached object, or those of one namespace. */
  list(namespace?: string): readonly T[] {
    return this.#lw.list(namespace);
  }

  /** The cached object, if any; `namespace` is `undefined` (or '') for cluster-scoped kinds. */
  get(namespace: string | undefined, name: string): T | undefined {
    return this.#lw.get(name, namespace);
  }

  async #run(): Promise<void> {
    const signal = this.#abort.signal;
    const stopped = new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve()));
    const delay = this.#options.delay ?? sleep;
    let attempt = 0;
    while (!signal.aborted) {
      this.#failure = Promise.withResolvers<unknown>();
      this.#failed = false;
      // A held watch connection can keep start() pending; stop() must not wait for it.
      await Promise.race([this.#lw.start().catch((error: unknown) => this.#onError(error)), stopped]);
      if (signal.aborted) return;
      if (!this.#failed) {
        if (attempt > 0) this.#log.info({ informer: this.#name, attempts: attempt }, 'informer recovered');
        attempt = 0;
        this.#hasSynced = true;
        this.#synced.resolve();
      }
      const error = await this.#failure.promise;
      if (signal.aborted) return;
      const delayMs = Math.round(backoffDelay(attempt, this.#options.backoff, this.#options.random));
      attempt++;
      this.#log.warn(
        { informer: this.#name, ...errorFields(error), attempt, delayMs },
        'informer restarting',
      );
      await delay(delayMs, signal).catch(() => {});
    }
  }

  async #list(): Promise<KubernetesListObject<T>> {
    const query: ListQuery =
      this.#options.labelSelector === undefined ? {} : { labelSelector: this.#options.labelSelector };
    const list = await this.#options.list(query);
    if (this.#abort.signal.aborted) throw new Error('informer stopped');
    // Typed list items come without apiVersion and kind; watch events carry them.
    const kind = list.kind?.replace(/List$/, '');
    for (const item of list.items) {
      if (item.kind === undefined && kind !== undefined) item.kind = kind;
      if (item.apiVersion === undefined && list.apiVersion !== undefined) item.apiVersion = list.apiVersion;
    }
    this.#log.debug(
      { informer: this.#name, count: list.items.length, resourceVersion: list.metadata?.resourceVersion },
      'informer listed',
    );
    return list;
  }

  #onError(error: unknown): void {
    if (this.#abort.signal.aborted || this.#failed) return;
    this.#failed = true;
    this.#failure.resolve(error);
  }

  #added(object: T): void {
    if (this.#abort.signal.aborted) return;
    this.#previous.set(keyOf(object), object);
    this.#call('add', () => this.#options.onAdd?.(object), object);
  }

  #updated(object: T): void {
    if (this.#abort.signal.aborted) return;
    const key = keyOf(object);
    const old = this.#previous.get(key);
    this.#previous.set(key, object);
    if (old === undefined) this.#call('add', () => this.#options.onAdd?.(object), object);
    else this.#call('update', () => this.#options.onUpdate?.(object, old), object);
  }

  #deleted(object: T): void {
    if (this.#abort.signal.aborted) return;
    this.#previous.delete(keyOf(object));
    this.#call('delete', () => this.#options.onDelete?.(object), object);
  }

  #call(event: string, handler: () => void, object: T): void {
    try {
      handler();
    } catch (error) {
      this.#log.error(
        { informer: this.#name, event, object: keyOf(object), ...errorFields(error) },
        'informer handler failed',
      );
    }
  }
}
