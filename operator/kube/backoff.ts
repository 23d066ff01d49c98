/**
 * Retry pacing shared by the informers and the leader elector: capped
 * exponential backoff with jitter, and an abortable sleep. Both are injected
 * through options so tests run without real waiting.
 */

/** Bounds of an exponential backoff. */
export interface Backoff {
  /** Delay before the first retry, before jitter. Default 250 ms. */
  initialMs?: number;
  /** Cap on the delay, before jitter. Default 30 s. */
  maxMs?: number;
}

/** Sleeps `ms`, resolving early (never rejecting) once `signal` aborts. */
export type Delay = (ms: number, signal: AbortSignal) => Promise<void>;

/** The default {@link Backoff}: 250 ms doubling up to 30 s. */
export const DEFAULT_BACKOFF: Readonly<Required<Backoff>> = Object.freeze({ initialMs: 250, maxMs: 30_000 });

/**
 * The delay before retry number `attempt` (0 for the first): the base
 * `min(maxMs, initialMs * 2^attempt)`, jittered into `[base/2, base)` with
 * `random` (in [0, 1)) so that restarting clients spread out.
 */
export function backoffDelay(
  attempt: number,
  backoff: Backoff = {},
  random: () => number = Math.random,
): number {
  const initialMs = backoff.initialMs ?? DEFAULT_BACKOFF.initialMs;
  const maxMs = backoff.maxMs ?? DEFAULT_BACKOFF.maxMs;
  const base = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 62));
  return base / 2 + (random() * base) / 2;
}

/** The default {@link Delay}: a timer, cleared when `signal` aborts. */
export const sleep: Delay = (ms, signal) =>
  new Promise<void>((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, Math.max(0, ms));
    signal.addEventListener('abort', done, { once: true });
  });
