/**
 * Abuse protection of one policy: per client key (the mTLS peer identity, else
 * the client IP) sliding-window counters of authentication failures and
 * unmatched requests, and the temporary blocks they trigger.
 *
 * Counting is exact: each key keeps a sliding log of the timestamps of its
 * recent events of a kind, at most `threshold` of them. An event at `now`
 * counts the earlier events within `(now - window, now]` (an event exactly
 * `window` old has left the window); when `threshold` of them are already
 * there, this event is the (threshold + 1)-th and starts a block of `block`
 * ms: up to `threshold` events per window are tolerated. While a key is
 * blocked its events are not counted (a block is never extended by the
 * requests it refuses); the block lifts by itself and counting starts afresh.
 *
 * Memory is bounded: the counting state lives in an LRU of at most `maxKeys`
 * keys (default 100,000) and `maxEvents` timestamps in all (default
 * 1,000,000, about 8 MiB). A flood of distinct keys evicts the least recently
 * active keys' counts (they start again from zero: leniency towards the
 * coldest keys, never a false block). Blocks live in an LRU of their own, so
 * such a flood cannot lift them; only more than `maxKeys` blocked keys at once
 * would evict the oldest blocks. Pure: the clock is injected.
 */
import { LRUCache } from 'lru-cache';
import type { CompiledPolicy } from '../../../policy/compile/bundle.ts';

export type ProtectionKind = 'authFailures' | 'unmatched';

/** The compiled `protection` block of a policy. */
export type ProtectionConfig = CompiledPolicy['protection'];

export interface Block {
  /** Epoch ms at which the block lifts. */
  until: number;
  reason: ProtectionKind;
}

export interface RecordResult {
  /** True when this event started a block. */
  blockedNow: boolean;
  /** The block this event started, else null. */
  block: Block | null;
}

export interface ProtectorOptions {
  /** Clock in ms (default Date.now). */
  now?: () => number;
  /** Most client keys whose events are counted, and most blocks kept (default 100,000). */
  maxKeys?: number;
  /** Most event timestamps kept over all keys (default 1,000,000). */
  maxEvents?: number;
}

/** A key's recent events, oldest first, per kind. */
interface Logs {
  authFailures: number[];
  unmatched: number[];
}

const NOT_BLOCKED: RecordResult = { blockedNow: false, block: null };

export class Protector {
  readonly config: ProtectionConfig;
  readonly #now: () => number;
  readonly #maxEvents: number;
  readonly #logs: LRUCache<string, Logs>;
  readonly #blocks: LRUCache<string, Block>;

  constructor(config: ProtectionConfig, options: ProtectorOptions = {}) {
    this.config = config;
    this.#now = options.now ?? Date.now;
    const maxKeys = options.maxKeys ?? 100_000;
    this.#maxEvents = Math.max(1, options.maxEvents ?? 1_000_000);
    this.#logs = new LRUCache({ max: maxKeys, maxSize: this.#maxEvents });
    this.#blocks = new LRUCache({ max: maxKeys });
  }

  /** The key's block while it holds, else null. */
  blocked(key: string): Block | null {
    const block = this.#blocks.get(key);
    if (!block) return null;
    if (this.#now() < block.until) return block;
    this.#blocks.delete(key);
    return null;
  }

  /** Counts one event of the key; blocks the key when it is the (threshold + 1)-th within the window. */
  record(key: string, kind: ProtectionKind): RecordResult {
    const config = this.config[kind];
    if (!config || this.blocked(key)) return NOT_BLOCKED;
    const now = this.#now();
    let logs = this.#logs.get(key);
    if (!logs) logs = { authFailures: [], unmatched: [] };
    const log = logs[kind];
    const horizon = now - config.windowMs;
    let old = 0;
    while (old < log.length && (log[old] ?? 0) <= horizon) old++;
    if (old > 0) log.splice(0, old);
    if (log.length >= config.threshold) {
      const block: Block = { until: now + config.blockMs, reason: kind };
      this.#blocks.set(key, block);
      // Counting starts afresh once the block lifts.
      this.#logs.delete(key);
      return { blockedNow: true, block };
    }
    log.push(now);
    // The size is the key's share of the event budget (an entry alone never exceeds it). lru-cache
    // recomputes the size only when the value changes identity, hence the (shallow) new object.
    const size = Math.min(this.#maxEvents, 1 + logs.authFailures.length + logs.unmatched.length);
    this.#logs.set(key, { ...logs }, { size });
    return NOT_BLOCKED;
  }

  /** Keys whose events are being counted (for tests and diagnostics). */
  get trackedKeys(): number {
    return this.#logs.size;
  }

  /** Keys blocked or whose expired block was not yet looked at. */
  get blockedKeys(): number {
    return this.#blocks.size;
  }
}

/** True when the policy asks for protection of some kind. */
export function hasProtection(config: ProtectionConfig): boolean {
  return config.authFailures !== null || config.unmatched !== null;
}
