/**
 * Polling a few files for changes (certificates, the mesh file): each is
 * fingerprinted by inode, size and mtime, so an atomic replace (a new inode,
 * as the kubelet's `..data` symlink swap makes) and an in-place write are both
 * seen. Polling, not fs.watch: it works the same on every volume type.
 */
import { statSync } from 'node:fs';

/** The files' fingerprint: `ino:size:mtime` of each, `missing` for one that cannot be read. */
export function filesFingerprint(paths: readonly string[]): string {
  return paths
    .map((f) => {
      try {
        const s = statSync(f);
        return `${s.ino}:${s.size}:${s.mtimeMs}`;
      } catch {
        return 'missing';
      }
    })
    .join('|');
}

/** Calls `onChange` when the files' fingerprint differs from the last one seen (the first is taken now). */
export class FilePoll {
  readonly #paths: readonly string[];
  readonly #onChange: () => void;
  #print: string;
  #timer: NodeJS.Timeout | undefined;

  constructor(paths: readonly string[], onChange: () => void) {
    this.#paths = paths;
    this.#onChange = onChange;
    this.#print = filesFingerprint(paths);
  }

  /** The fingerprint of the files as last seen (for a version label). */
  get fingerprint(): string {
    return this.#print;
  }

  /** Checks now; calls `onChange` when the files changed. */
  check(): void {
    const print = filesFingerprint(this.#paths);
    if (print === this.#print) return;
    this.#print = print;
    this.#onChange();
  }

  /** Checks every `intervalMs` (the timer does not keep the process alive). */
  watch(intervalMs: number): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => this.check(), intervalMs);
    this.#timer.unref();
  }

  close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
