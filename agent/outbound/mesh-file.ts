/**
 * The standalone `--mesh FILE`: read at start (a bad file stops the agent
 * with the reason), polled for changes, and a bad or half-written edit keeps
 * the mesh in force (the reason logged).
 */
import { readFileSync } from 'node:fs';
import { FilePoll } from '../source/file-poll.ts';
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

export class MeshFile {
  readonly #o: MeshFileOptions;
  readonly #poll: FilePoll;

  /** Loads the file into the mesh now; throws MeshFileError when it is not usable. */
  constructor(options: MeshFileOptions) {
    this.#o = options;
    this.#poll = new FilePoll([options.path], () => this.#reload());
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
      this.#o.mesh.replace(parseMeshDocument(text), this.#poll.fingerprint);
    } catch (e) {
      throw new MeshFileError(`--mesh ${this.#o.path}: ${(e as Error).message}`);
    }
  }

  /** Reloads when the file changed; keeps the mesh in force when the new one is not usable. */
  check(): void {
    this.#poll.check();
  }

  #reload(): void {
    try {
      this.#load();
      this.#o.onReload?.(this.#o.mesh.size);
    } catch (e) {
      this.#o.onReject?.(e as MeshFileError);
    }
  }

  watch(): void {
    this.#poll.watch(this.#o.intervalMs ?? 1000);
  }

  close(): void {
    this.#poll.close();
  }
}
