/**
 * The agent's policy source: a file or folder of ApiPolicy YAML (`--policy`,
 * standalone) or the operator's stream (`--operator`). Both hand the agent an
 * engine swapped atomically (`current`, null until a policy is in force) and
 * report loads and rejections through the same callbacks.
 */
import type { Diagnostic } from '../../policy/diagnostics.ts';
import type { PolicyEngine } from '../../policy/engine/engine.ts';
import type { Mesh } from '../../proto/policy-service.ts';
import type { Logger } from '../agent.ts';
import type { AgentConfig } from '../config.ts';
import type { TrustStore } from '../identity/trust-store.ts';
import { FilePolicySource, type FileSourceOptions } from './file-source.ts';
import type { OperatorPolicySource, OperatorSourceOptions } from './operator-source.ts';

export interface PolicySource {
  /** The engine in force; null until a policy was loaded. */
  readonly current: PolicyEngine | null;
  /**
   * Loads what it can and keeps it up to date; returns the diagnostics that
   * keep the agent from starting (an invalid policy file), else null. Throws on
   * a configuration error (an unreadable operator CA).
   */
  start(): Diagnostic[] | null | Promise<Diagnostic[] | null>;
  close(): void;
  /**
   * Sends an observation to the control plane (operator mode); false when
   * there is none or no stream is open (reports are best effort, never queued).
   */
  report?(kind: string, payload: Readonly<Record<string, unknown>>): boolean;
}

/**
 * The operator source, loaded when it starts: gRPC and the proto loader stay
 * out of a standalone agent's memory (about 25 MiB).
 */
class LazyOperatorSource implements PolicySource {
  readonly #options: OperatorSourceOptions;
  #inner: OperatorPolicySource | null = null;
  #closed = false;

  constructor(options: OperatorSourceOptions) {
    this.#options = options;
  }

  get current(): PolicyEngine | null {
    return this.#inner?.current ?? null;
  }

  async start(): Promise<null> {
    const { OperatorPolicySource } = await import('./operator-source.ts');
    if (this.#closed) return null;
    this.#inner ??= new OperatorPolicySource(this.#options);
    return this.#inner.start();
  }

  close(): void {
    this.#closed = true;
    this.#inner?.close();
  }

  report(kind: string, payload: Readonly<Record<string, unknown>>): boolean {
    return this.#inner?.report(kind, payload) ?? false;
  }
}

export interface PolicySourceDeps {
  logger: Logger;
  /** Reported to the operator in the Hello (default 'unknown'). */
  agentVersion?: string;
  /** Operator mode: where the stream's trust bundles go. */
  trust?: TrustStore;
}

/** What only the operator sends besides bundles. */
export interface OperatorExtras {
  /** The meshed destinations, whole, each time they change. */
  onMesh?: (mesh: Mesh) => boolean;
}

/** The operator source with `--operator`, else the file source; `file` carries the shared callbacks. */
export function createPolicySource(
  config: AgentConfig,
  deps: PolicySourceDeps,
  file: FileSourceOptions,
  extras: OperatorExtras = {},
): PolicySource {
  const op = config.operator;
  if (!op) return new FilePolicySource(file);
  return new LazyOperatorSource({
    target: op.target,
    caFile: op.caFile,
    serverName: op.serverName,
    tokenFile: op.tokenFile,
    podName: op.podName,
    podNamespace: op.podNamespace,
    appPort: file.workload.port ?? 0,
    agentVersion: deps.agentVersion ?? 'unknown',
    stateDir: op.stateDir,
    logger: deps.logger,
    backoff: { minMs: op.backoffMs.min, maxMs: op.backoffMs.max },
    ...(file.onLoad ? { onLoad: file.onLoad } : {}),
    ...(file.onReject ? { onReject: file.onReject } : {}),
    ...(deps.trust ? { trust: deps.trust } : {}),
    ...(extras.onMesh ? { onMesh: extras.onMesh } : {}),
  });
}
