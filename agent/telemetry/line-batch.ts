/**
 * The agent's log lines on their way to stdout, batched per event-loop turn:
 * every line (the access lines of JsonLineWriter, pino's lines) is appended to
 * one buffer as it is logged, and the buffer goes to the sink in one write
 * when the current turn of the event loop ends, or at once when it holds
 * `maxBytes`. Under load one write(2) carries the lines of every request that
 * finished in the turn instead of one write per line. Lines stay whole and in
 * the order they were logged; `flush()` writes what is pending right away (the
 * CLI calls it on exit, so only a process killed outright, SIGKILL, can lose
 * the lines of its last turn).
 */
import type { LineSink } from './json-line.ts';

export interface LineBatchOptions {
  /** Write at once when this many bytes are pending. Default 64 KiB. */
  maxBytes?: number;
  /** Calls `flush` once the current event-loop turn ends. Default setImmediate. */
  defer?: (flush: () => void) => void;
}

const INITIAL_BYTES = 16 * 1024;

export class LineBatch {
  readonly #sink: LineSink;
  readonly #maxBytes: number;
  readonly #defer: (flush: () => void) => void;
  readonly #deferred = () => {
    this.#scheduled = false;
    this.flush();
  };
  #buf = Buffer.allocUnsafe(INITIAL_BYTES);
  #pos = 0;
  #scheduled = false;

  constructor(sink: LineSink, options: LineBatchOptions = {}) {
    this.#sink = sink;
    this.#maxBytes = options.maxBytes ?? 64 * 1024;
    this.#defer = options.defer ?? setImmediate;
  }

  /** Bytes waiting for the next write. */
  get pending(): number {
    return this.#pos;
  }

  /** Appends whole lines, as UTF-8 bytes (copied: the caller may reuse them). */
  append(lines: Uint8Array): void {
    this.#ensure(lines.length);
    this.#buf.set(lines, this.#pos);
    this.#pos += lines.length;
    this.#added();
  }

  /** Appends a whole line as a string: pino's destination interface. */
  write(line: string): boolean {
    this.#ensure(3 * line.length);
    this.#pos += this.#buf.write(line, this.#pos, 'utf8');
    this.#added();
    return true;
  }

  /** Writes every pending line now (`done`, pino's flush callback, after). */
  flush(done?: (err?: Error) => void): void {
    const n = this.#pos;
    if (n > 0) {
      // Reset first: the bytes are written before the buffer is used again, and a sink that throws must
      // not make the next flush write them twice.
      this.#pos = 0;
      const bytes = this.#buf.subarray(0, n);
      if (this.#buf.length > 4 * Math.max(this.#maxBytes, INITIAL_BYTES))
        this.#buf = Buffer.allocUnsafe(INITIAL_BYTES);
      this.#sink(bytes);
    }
    done?.();
  }

  #added(): void {
    if (this.#pos >= this.#maxBytes) this.flush();
    else if (!this.#scheduled) {
      this.#scheduled = true;
      this.#defer(this.#deferred);
    }
  }

  #ensure(n: number): void {
    const need = this.#pos + n;
    if (need <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < need) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.#buf.copy(next, 0, 0, this.#pos);
    this.#buf = next;
  }
}
