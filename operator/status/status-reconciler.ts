/**
 * Writes ApiPolicy status. Policies are marked dirty by index changes and ACKs;
 * after a short debounce each dirty policy's status is computed and written
 * only when it differs from what the API server has. Only the leader writes
 * (`active`); a failed write is retried with backoff. Warning Events are
 * emitted once per new rejection: an invalid generation, a conflict, a NACK.
 * Never throws out of its loop.
 */
import { keyOf, type PolicyIndex, type PolicyRecord } from '../index/policy-index.ts';
import {
  type AckView,
  computeStatus,
  type PolicyStatus,
  sameStatus,
  withTransitionTimes,
} from './policy-status.ts';

export interface PolicyEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

export interface StatusLogger {
  warn(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
}

export interface StatusReconcilerOptions {
  index: PolicyIndex;
  acks: AckView;
  /** Writes the status subresource (merge patch); resolves with the updated object, rejects on failure. */
  writeStatus: (record: PolicyRecord, status: PolicyStatus) => Promise<unknown>;
  /** Records an Event about the policy; must not throw. */
  emitEvent: (record: PolicyRecord, event: PolicyEvent) => void;
  log: StatusLogger;
  /** Default 50 ms. */
  debounceMs?: number;
  /** Retry delay after a failed write. Default 1 s. */
  retryMs?: number;
  now?: () => Date;
  /** Called after a status was written (tests, metrics). */
  onWritten?: (record: PolicyRecord, status: PolicyStatus) => void;
}

export class StatusReconciler {
  readonly #o: StatusReconcilerOptions;
  readonly #dirty = new Set<string>();
  /** Rejections already reported, so an Event is emitted once per new one. */
  readonly #reported = new Set<string>();
  #timer: NodeJS.Timeout | undefined;
  #active = false;
  #running = false;
  #closed = false;

  constructor(options: StatusReconcilerOptions) {
    this.#o = options;
  }

  /** Starts (leader) or stops (follower) writing. Becoming active rechecks every policy. */
  setActive(active: boolean): void {
    this.#active = active;
    if (active) this.markAll();
  }

  get active(): boolean {
    return this.#active;
  }

  mark(namespace: string, name: string): void {
    this.#dirty.add(keyOf(namespace, name));
    this.#schedule(this.#o.debounceMs ?? 50);
  }

  markAll(): void {
    for (const r of this.#o.index.policies()) this.#dirty.add(keyOf(r.namespace, r.name));
    this.#schedule(this.#o.debounceMs ?? 50);
  }

  /** Forgets what was reported about a deleted policy. */
  forget(namespace: string, name: string): void {
    const prefix = `${keyOf(namespace, name)}|`;
    for (const k of this.#reported) if (k.startsWith(prefix)) this.#reported.delete(k);
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #schedule(ms: number): void {
    if (this.#closed || this.#timer !== undefined || !this.#active) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#run();
    }, ms);
  }

  async #run(): Promise<void> {
    if (this.#running || !this.#active || this.#closed) return;
    this.#running = true;
    let failed = false;
    try {
      const batch = [...this.#dirty];
      this.#dirty.clear();
      for (const key of batch) {
        if (!this.#active || this.#closed) {
          this.#dirty.add(key);
          continue;
        }
        const [namespace = '', name = ''] = key.split('/');
        const record = this.#o.index.policy(namespace, name);
        if (!record) continue;
        if (!(await this.#reconcile(record))) {
          this.#dirty.add(key);
          failed = true;
        }
      }
    } finally {
      this.#running = false;
    }
    if (this.#dirty.size > 0) this.#schedule(failed ? (this.#o.retryMs ?? 1000) : (this.#o.debounceMs ?? 50));
  }

  /** Computes and writes one policy's status; false when the write failed. */
  async #reconcile(record: PolicyRecord): Promise<boolean> {
    const { status, rejections, conflictsWith } = computeStatus(this.#o.index, record, this.#o.acks);
    const key = keyOf(record.namespace, record.name);
    const accepted = status.conditions[0];
    if (accepted?.reason === 'Invalid') {
      this.#report(record, `${key}|invalid|${record.generation}`, 'Invalid', accepted.message);
    }
    if (conflictsWith.length > 0 && accepted) {
      this.#report(
        record,
        `${key}|conflict|${record.generation}|${conflictsWith.join(',')}`,
        'Conflicted',
        accepted.message,
      );
    }
    for (const r of rejections) {
      this.#report(
        record,
        `${key}|nack|${r.pod}|${r.version}`,
        'Rejected',
        `sidecar of ${r.pod} rejected bundle ${r.version}: ${r.error}`,
      );
    }
    const current = record.object.status;
    if (sameStatus(status, current)) return true;
    const conditions = (current as { conditions?: [] } | undefined)?.conditions;
    const next = withTransitionTimes(status, conditions, (this.#o.now ?? (() => new Date()))());
    try {
      const updated = await this.#o.writeStatus(record, next);
      // The informer's copy lags behind; compare the next computation with what was written.
      if (updated !== null && typeof updated === 'object') this.#o.index.upsertPolicy(updated);
      this.#o.onWritten?.(record, next);
      return true;
    } catch (e) {
      this.#o.log.warn(
        { 'policy.namespace': record.namespace, 'policy.name': record.name, error: (e as Error).message },
        'status write failed',
      );
      return false;
    }
  }

  #report(record: PolicyRecord, key: string, reason: string, message: string): void {
    if (this.#reported.has(key)) return;
    this.#reported.add(key);
    this.#o.emitEvent(record, { type: 'Warning', reason, message });
  }
}
