/**
 * A real gRPC PolicyService server over TLS playing the operator in tests: it
 * records every Hello, Ack and Nack (with the time it arrived), answers an
 * accepted Hello with its current bundle, pushes bundles to the open streams,
 * refuses Hellos with a status when told to, and can be stopped and started
 * again on the same port. Bundles are compiled from ApiPolicy YAML with the
 * real compiler.
 */
import { Server, ServerCredentials, type ServerDuplexStream, type StatusObject, status } from '@grpc/grpc-js';
import { compilePolicies, type Workload } from '../../policy/compile/compile.ts';
import { loadPolicyText } from '../../policy/validate/validate-policy.ts';
import {
  type Ack,
  type Bundle,
  type Hello,
  type Mesh,
  type Nack,
  policyServiceDefinition,
  type SidecarMessage,
  type TrustBundle,
} from '../../proto/policy-service.ts';
import type { PemPair } from './certs.ts';

/** A Bundle message for the policies in `yaml` (one or more documents; '' for none). */
export function bundleOf(yaml: string, workload: Workload = {}): Bundle {
  const loaded = loadPolicyText(yaml);
  const errors = loaded.diagnostics.filter((d) => d.severity === 'error');
  if (errors.length > 0) throw new Error(`bad test policy: ${JSON.stringify(errors)}`);
  const { bundle } = compilePolicies(
    loaded.policies.map((p) => p.policy),
    workload,
  );
  return { version: bundle.version, json: JSON.stringify(bundle) };
}

export interface Received<T> {
  at: number;
  message: T;
}

/** What the operator writes: a message with its oneof member set (the decoder adds `kind`). */
type Call = ServerDuplexStream<
  SidecarMessage,
  { bundle: Bundle } | { trustBundle: TrustBundle } | { mesh: Mesh }
>;

export interface FakeOperatorOptions {
  /** The serving certificate and key. */
  serving: PemPair;
  /** Port to bind on 127.0.0.1 (default 0: any free one). */
  port?: number;
  /** Sent after an accepted Hello; null: nothing until push(). */
  bundle?: Bundle | null;
  /** Sent after an accepted Hello, before the bundle; null: nothing until pushTrust(). */
  trustBundle?: TrustBundle | null;
}

export class FakeOperator {
  readonly hellos: Received<Hello>[] = [];
  readonly acks: Received<Ack>[] = [];
  readonly nacks: Received<Nack>[] = [];
  readonly reports: Received<{ kind: string; json: string }>[] = [];
  /** The bundle an accepted Hello gets; push() replaces it. */
  bundle: Bundle | null;
  /** The trust bundle an accepted Hello gets; pushTrust() replaces it. */
  trustBundle: TrustBundle | null;
  /** When set, every Hello is refused with this status and the stream ends. */
  refuse: Pick<StatusObject, 'code' | 'details'> | null = null;
  readonly #server = new Server();
  readonly #open = new Set<Call>();
  #port = 0;

  private constructor(options: FakeOperatorOptions) {
    this.bundle = options.bundle ?? null;
    this.trustBundle = options.trustBundle ?? null;
    this.#server.addService(policyServiceDefinition(), { Stream: (call: Call) => this.#stream(call) });
  }

  static async start(options: FakeOperatorOptions): Promise<FakeOperator> {
    const op = new FakeOperator(options);
    const creds = ServerCredentials.createSsl(
      null,
      [{ private_key: Buffer.from(options.serving.key), cert_chain: Buffer.from(options.serving.cert) }],
      false,
    );
    op.#port = await new Promise<number>((resolve, reject) =>
      op.#server.bindAsync(`127.0.0.1:${options.port ?? 0}`, creds, (e, port) =>
        e ? reject(e) : resolve(port),
      ),
    );
    return op;
  }

  get port(): number {
    return this.#port;
  }

  /** `127.0.0.1:PORT`, for --operator. */
  get address(): string {
    return `127.0.0.1:${this.#port}`;
  }

  /** Streams open now. */
  get streams(): number {
    return this.#open.size;
  }

  /** Makes `bundle` current and sends it on every open stream. */
  push(bundle: Bundle): void {
    this.bundle = bundle;
    for (const call of this.#open) call.write({ bundle });
  }

  /** Makes `trustBundle` current (unless `keep`: a bad one to send only) and sends it on every open stream. */
  pushTrust(trustBundle: TrustBundle, options: { keep?: boolean } = {}): void {
    if (!options.keep) this.trustBundle = trustBundle;
    for (const call of this.#open) call.write({ trustBundle });
  }

  /** Sends `mesh` on every open stream. */
  pushMesh(mesh: Mesh): void {
    for (const call of this.#open) call.write({ mesh });
  }

  /** Ends every open stream with OK (as an operator replica going away gracefully would). */
  endStreams(): void {
    for (const call of this.#open) call.end();
    this.#open.clear();
  }

  /** Drops every connection at once (a killed operator). */
  stop(): void {
    this.#open.clear();
    this.#server.forceShutdown();
  }

  #stream(call: Call): void {
    let hello = false;
    call.on('data', (message: SidecarMessage) => {
      const at = Date.now();
      switch (message.kind) {
        case 'hello':
          if (hello) return;
          hello = true;
          this.hellos.push({ at, message: message.hello });
          if (this.refuse) {
            call.emit('error', { ...this.refuse, metadata: undefined });
            return;
          }
          this.#open.add(call);
          if (this.trustBundle) call.write({ trustBundle: this.trustBundle });
          if (this.bundle) call.write({ bundle: this.bundle });
          return;
        case 'ack':
          this.acks.push({ at, message: message.ack });
          return;
        case 'nack':
          this.nacks.push({ at, message: message.nack });
          return;
        case 'report':
          this.reports.push({ at, message: message.report });
          return;
      }
    });
    call.on('end', () => {
      this.#open.delete(call);
      call.end();
    });
    call.on('error', () => this.#open.delete(call));
    call.on('cancelled', () => this.#open.delete(call));
  }
}

export { status };
