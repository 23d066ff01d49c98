/**
 * Records sidecar ACKs and NACKs on their Pods (annotations
 * `tollgate.dev/policy-version` and `tollgate.dev/policy-error`), so every
 * operator replica, and the leader that writes status, sees what each sidecar
 * runs whichever replica it is connected to. Writes are coalesced per pod and
 * retried with backoff; the newest state wins.
 */
import { ACKED_VERSION_ANNOTATION, keyOf, NACK_ANNOTATION } from '../index/policy-index.ts';

/** Merge-patches a pod's annotations (null removes one). */
export type PodAnnotator = (
  namespace: string,
  name: string,
  annotations: Record<string, string | null>,
) => Promise<void>;

export interface AckRecorderOptions {
  annotate: PodAnnotator;
  log: { warn(obj: object, msg: string): void };
  /** Coalescing delay. Default 100 ms. */
  flushMs?: number;
  /** Delay before retrying failed writes. Default 1 s. */
  retryMs?: number;
}

interface Pending {
  namespace: string;
  name: string;
  annotations: Record<string, string | null>;
}

/** The longest NACK text kept in an annotation. */
const MAX_ERROR = 1024;

export class AckRecorder {
  readonly #o: AckRecorderOptions;
  readonly #pending = new Map<string, Pending>();
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: AckRecorderOptions) {
    this.#o = options;
  }

  ack(namespace: string, name: string, version: string): void {
    this.#set(namespace, name, { [ACKED_VERSION_ANNOTATION]: version, [NACK_ANNOTATION]: null });
  }

  nack(namespace: string, name: string, version: string, error: string): void {
    const text = error.length > MAX_ERROR ? `${error.slice(0, MAX_ERROR)}…` : error;
    this.#set(namespace, name, { [NACK_ANNOTATION]: `${version}: ${text}` });
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Writes everything pending now; resolves when done (failed writes are requeued). */
  async flush(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const batch = [...this.#pending.values()];
    this.#pending.clear();
    let failed = false;
    await Promise.all(
      batch.map(async (p) => {
        try {
          await this.#o.annotate(p.namespace, p.name, p.annotations);
        } catch (e) {
          const status = (e as { code?: number }).code;
          if (status === 404) return; // the pod is gone: nothing to record
          failed = true;
          this.#o.log.warn(
            { 'pod.namespace': p.namespace, 'pod.name': p.name, error: (e as Error).message },
            'ack annotation failed',
          );
          const key = keyOf(p.namespace, p.name);
          const newer = this.#pending.get(key);
          this.#pending.set(key, { ...p, annotations: { ...p.annotations, ...newer?.annotations } });
        }
      }),
    );
    if (this.#pending.size > 0) this.#schedule(failed ? (this.#o.retryMs ?? 1000) : (this.#o.flushMs ?? 100));
  }

  #set(namespace: string, name: string, annotations: Record<string, string | null>): void {
    if (this.#closed) return;
    const key = keyOf(namespace, name);
    const before = this.#pending.get(key);
    this.#pending.set(key, { namespace, name, annotations: { ...before?.annotations, ...annotations } });
    this.#schedule(this.#o.flushMs ?? 100);
  }

  #schedule(ms: number): void {
    if (this.#closed || this.#timer !== undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.flush();
    }, ms);
  }
}
