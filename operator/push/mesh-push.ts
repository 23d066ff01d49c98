/**
 * Sends the mesh (index/mesh-endpoints.ts) to the sidecars: the current one
 * to each sidecar that connects, and after a change (debounced, so a rollout
 * of many pods is one push) the new one to every connected sidecar, only when
 * its version differs from what that sidecar was last sent.
 */
import type { Mesh } from '../../proto/policy-service.ts';
import type { SessionRegistry, SidecarSession } from './sessions.ts';

export interface MeshPushOptions {
  sessions: SessionRegistry;
  /** The mesh now (computed from the index). */
  mesh: () => Mesh;
  /** Delay that merges a burst of pod changes into one push. Default 500 ms. */
  debounceMs?: number;
  onPush?: (session: SidecarSession, version: string) => void;
}

export class MeshPush {
  readonly #o: MeshPushOptions;
  #current: Mesh | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: MeshPushOptions) {
    this.#o = options;
  }

  /** The pods changed: recompute and push after the debounce. */
  changed(): void {
    if (this.#closed || this.#timer !== undefined) return;
    this.#timer = setTimeout(() => this.flush(), this.#o.debounceMs ?? 500);
  }

  /** Recomputes now and sends the mesh to every sidecar that does not have it. */
  flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#current = this.#o.mesh();
    for (const session of this.#o.sessions.all()) this.greet(session);
  }

  /** Sends a sidecar the mesh in force, unless it was sent that version already. */
  greet(session: SidecarSession): void {
    if (this.#closed) return;
    this.#current ??= this.#o.mesh();
    const mesh = this.#current;
    if (session.meshVersion === mesh.version) return;
    session.meshVersion = mesh.version;
    session.sendMesh(mesh);
    this.#o.onPush?.(session, mesh.version);
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
