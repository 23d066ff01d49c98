/**
 * The push queue: sessions that may need a new bundle are enqueued (by pod or
 * by namespace), repeats merge, and after a short debounce each one is sent its
 * workload's bundle, only when the version differs from what it has.
 */
import type { WorkloadBundle } from '../index/policy-index.ts';
import type { SessionRegistry, SidecarSession } from './sessions.ts';

export interface PushQueueOptions {
  sessions: SessionRegistry;
  /** The bundle for a session's pod; undefined when the pod is unknown (nothing is sent). */
  bundleFor: (session: SidecarSession) => WorkloadBundle | undefined;
  /** Delay that merges a burst of changes into one push. Default 20 ms. */
  debounceMs?: number;
  /** Called after each push, for metrics and tests. */
  onPush?: (session: SidecarSession, version: string) => void;
}

export class PushQueue {
  readonly #options: PushQueueOptions;
  readonly #pending = new Set<SidecarSession>();
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: PushQueueOptions) {
    this.#options = options;
  }

  enqueue(sessions: Iterable<SidecarSession>): void {
    if (this.#closed) return;
    for (const s of sessions) this.#pending.add(s);
    if (this.#pending.size > 0 && this.#timer === undefined) {
      this.#timer = setTimeout(() => this.flush(), this.#options.debounceMs ?? 20);
    }
  }

  enqueueNamespace(namespace: string): void {
    this.enqueue(this.#options.sessions.inNamespace(namespace));
  }

  enqueuePod(namespace: string, pod: string): void {
    this.enqueue(this.#options.sessions.forPod(namespace, pod));
  }

  /** Pushes everything pending now. */
  flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const batch = [...this.#pending];
    this.#pending.clear();
    for (const session of batch) this.pushNow(session);
  }

  /** Sends the session its bundle when its version differs from the last one sent. */
  pushNow(session: SidecarSession): void {
    const bundle = this.#options.bundleFor(session);
    if (!bundle || bundle.version === session.sentVersion) return;
    session.sentVersion = bundle.version;
    session.send(bundle.version, bundle.json);
    this.#options.onPush?.(session, bundle.version);
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#pending.clear();
  }
}
