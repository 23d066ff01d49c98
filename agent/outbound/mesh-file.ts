/**
 * The standalone `--mesh FILE`: read at start (a bad file stops the agent
 * with the reason), polled for changes, and a bad or half-written edit keeps
 * the mesh in force (the reason logged).
 */
import { readFileSync, statSync } from 'node:fs';
import { type MeshDirectory, parseMeshDocument } from './mesh.ts';

export class MeshFileError extends Error {
  readonly code = 'ERR_MESH_FILE';
}

export interface MeshFileOptions {
  path: string;
  mesh: MeshDirectory;
  /** Poll interval (default 1 s). */
  intervalMs?: number;
  onReload?: (endpoints: number) => void;
  onReject?: (error: MeshFileError) => void;
}

function fingerprint(path: string): string {
  try {
    const s = statSync(path);
    return `${s.ino}:${s.size}:${s.mtimeMs}`;
  } catch {
    return 'missing';
  }
}

export class MeshFile {
  readonly #o: MeshFileOptions;
  #print: string;
  #timer: NodeJS.Timeout | undefined;

  /** Loads the file into the mesh now; throws MeshFileError when it is not usable. */
  constructor(options: MeshFileOptions) {
    this.#o = options;
    this.#print = fingerprint(options.path);
    this.#load();
  }

  #load(): void {
    let text: string;
    try {
      text = readFileSync(this.#o.path, 'utf8');
    } catch (e) {
      throw new MeshFileError(
        `--mesh ${this.#o.path}: cannot read (${(e as { code?: string }).code ?? 'EIO'})`,
      );
    }
    try {
      this.#o.mesh.replace(parseMeshDocument(text), this.#print);
    } catch (e) {
      throw new MeshFileError(`--mesh ${this.#o.path}: ${(e as Error).message}`);
    }
  }

  /** Reloads when the file changed; keeps the mesh in force when the new one is not usable. */
  check(): void {
    const print = fingerprint(this.#o.path);
    if (print === this.#print) return;
    this.#print = print;
    try {
      this.#load();
      this.#o.onReload?.(this.#o.mesh.size);
    } catch (e) {
      this.#o.onReject?.(e as MeshFileError);
    }
  }

  watch(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => this.check(), this.#o.intervalMs ?? 1000);
    this.#timer.unref();
  }

  close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
