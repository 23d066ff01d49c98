/**
 * The sidecars connected to this operator replica: one session per stream,
 * keyed by pod, with what was sent and what the sidecar answered.
 */
import type { Mesh, TrustBundle } from '../../proto/policy-service.ts';
import { keyOf } from '../index/policy-index.ts';
import type { AckState } from '../status/policy-status.ts';

export interface SidecarSession {
  readonly id: number;
  readonly namespace: string;
  readonly pod: string;
  /** The bundle version last sent (or reported in the Hello as running). */
  sentVersion: string;
  ack: AckState;
  /** Sends a bundle on the stream. */
  send(version: string, json: string): void;
  /** The mesh version last sent ("" before the first). */
  meshVersion: string;
  /** Sends the mesh on the stream. */
  sendMesh(mesh: Mesh): void;
  /** The trust bundle version last sent ('' none). */
  trustSentVersion: string;
  /** The trust bundle version the sidecar last reported accepting ('' none). */
  trustVersion: string;
  /** Sends a trust bundle on the stream. */
  sendTrust(bundle: TrustBundle): void;
}

/** Sends the session the trust bundle when its version differs from the last one sent; true when sent. */
export function pushTrustBundle(session: SidecarSession, bundle: TrustBundle | null): boolean {
  if (bundle === null || bundle.version === session.trustSentVersion) return false;
  session.trustSentVersion = bundle.version;
  session.sendTrust(bundle);
  return true;
}

export class SessionRegistry {
  readonly #sessions = new Map<number, SidecarSession>();
  readonly #byPod = new Map<string, Set<SidecarSession>>();

  add(session: SidecarSession): void {
    this.#sessions.set(session.id, session);
    const key = keyOf(session.namespace, session.pod);
    let set = this.#byPod.get(key);
    if (!set) {
      set = new Set();
      this.#byPod.set(key, set);
    }
    set.add(session);
  }

  remove(session: SidecarSession): void {
    this.#sessions.delete(session.id);
    const key = keyOf(session.namespace, session.pod);
    const set = this.#byPod.get(key);
    set?.delete(session);
    if (set?.size === 0) this.#byPod.delete(key);
  }

  get size(): number {
    return this.#sessions.size;
  }

  all(): IterableIterator<SidecarSession> {
    return this.#sessions.values();
  }

  forPod(namespace: string, pod: string): SidecarSession[] {
    return [...(this.#byPod.get(keyOf(namespace, pod)) ?? [])];
  }

  inNamespace(namespace: string): SidecarSession[] {
    return [...this.#sessions.values()].filter((s) => s.namespace === namespace);
  }

  /** The freshest ACK state this replica holds for a pod (the newest session's), or undefined. */
  ackFor(namespace: string, pod: string): AckState | undefined {
    const sessions = this.forPod(namespace, pod);
    return sessions.length === 0 ? undefined : sessions.reduce((a, b) => (b.id > a.id ? b : a)).ack;
  }
}
