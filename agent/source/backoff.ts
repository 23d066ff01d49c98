/**
 * Exponential backoff with full jitter (each wait drawn uniformly from zero to
 * a ceiling that doubles per failure, up to a maximum), so a fleet of sidecars
 * that lost the operator together does not reconnect together.
 */

export interface BackoffOptions {
  /** First ceiling in ms (default 500). */
  minMs?: number;
  /** Largest ceiling in ms (default 30,000). */
  maxMs?: number;
  /** Uniform in [0, 1) (default Math.random). */
  random?: () => number;
}

export const DEFAULT_BACKOFF = Object.freeze({ minMs: 500, maxMs: 30_000 });

export class Backoff {
  readonly #minMs: number;
  readonly #maxMs: number;
  readonly #random: () => number;
  #failures = 0;

  constructor(options: BackoffOptions = {}) {
    this.#minMs = options.minMs ?? DEFAULT_BACKOFF.minMs;
    this.#maxMs = Math.max(options.maxMs ?? DEFAULT_BACKOFF.maxMs, this.#minMs);
    this.#random = options.random ?? Math.random;
  }

  /** Failures since the last reset. */
  get failures(): number {
    return this.#failures;
  }

  /** The ceiling of the next wait: min × 2^failures, capped at max. */
  get ceilingMs(): number {
    // Past 2^30 the ceiling is long capped; stop doubling before numbers overflow.
    return Math.min(this.#maxMs, this.#minMs * 2 ** Math.min(this.#failures, 30));
  }

  /** Records a failure and returns how long to wait before the next attempt (ms, an integer). */
  next(): number {
    const ceiling = this.ceilingMs;
    this.#failures++;
    return Math.floor(this.#random() * ceiling);
  }

  /** After a connection that worked: the next failure starts from the minimum again. */
  reset(): void {
    this.#failures = 0;
  }
}
