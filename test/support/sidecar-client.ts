/**
 * A simulated sidecar for operator tests and the operator benchmark: a real
 * grpc-js client of `tollgate.v1.PolicyService/Stream` over TLS that says
 * hello, loads every bundle it receives with the agent's own PolicyEngine and
 * answers with an ACK, or a NACK carrying the load error.
 */
import {
  type ClientDuplexStream,
  credentials,
  makeGenericClientConstructor,
  type ServiceError,
} from '@grpc/grpc-js';
import { PolicyEngine } from '../../policy/engine/engine.ts';
import {
  type Hello,
  type OperatorMessage,
  policyServiceDefinition,
  type SidecarMessage,
} from '../../proto/policy-service.ts';

export interface ReceivedBundle {
  version: string;
  json: string;
  /** performance.now() when it arrived. */
  at: number;
}

export interface SimulatedSidecarOptions {
  /** `HOST:PORT` of the operator's gRPC listener. */
  address: string;
  /** PEM CA the operator's serving certificate chains to. */
  ca: string;
  /** TLS name to verify (default the host of `address`). */
  serverName?: string;
  hello: Pick<Hello, 'podName' | 'podNamespace' | 'token'> & Partial<Hello>;
  /** Load bundles with PolicyEngine and NACK failures (default true); false ACKs everything. */
  validate?: boolean;
  /** An error to NACK a bundle with (undefined: decide by loading it). */
  refuse?: (bundle: ReceivedBundle) => string | undefined;
}

type Stream = ClientDuplexStream<SidecarMessage, OperatorMessage>;

export class SimulatedSidecar {
  readonly bundles: ReceivedBundle[] = [];
  /** How the stream ended (null while open). */
  ended: { code: number; details: string } | null = null;
  readonly #o: SimulatedSidecarOptions;
  readonly #client: { Stream(): Stream; close(): void };
  readonly #stream: Stream;
  readonly #waiters = new Set<() => void>();

  constructor(options: SimulatedSidecarOptions) {
    this.#o = options;
    const Client = makeGenericClientConstructor(policyServiceDefinition(), 'PolicyService');
    const host = options.address.replace(/:\d+$/, '');
    const channelOptions = { 'grpc.ssl_target_name_override': options.serverName ?? host };
    this.#client = new Client(
      options.address,
      credentials.createSsl(Buffer.from(options.ca)),
      channelOptions,
    ) as never;
    this.#stream = this.#client.Stream();
    this.#stream.on('data', (m: OperatorMessage) => this.#receive(m));
    this.#stream.on('error', (e: ServiceError) => this.#end(e.code, e.details));
    this.#stream.on('end', () => this.#end(0, 'OK'));
    this.#stream.write({
      hello: { appPort: 0, bundleVersion: '', agentVersion: 'simulated', ...options.hello },
    } as unknown as SidecarMessage);
  }

  get latest(): ReceivedBundle | undefined {
    return this.bundles.at(-1);
  }

  /** Resolves with the first bundle (received so far or later) that satisfies `predicate`. */
  async waitForBundle(
    predicate: (b: ReceivedBundle) => boolean = () => true,
    timeoutMs = 5000,
  ): Promise<ReceivedBundle> {
    return this.#waitFor(() => this.bundles.find(predicate), timeoutMs, 'bundle');
  }

  /** Resolves when the stream has ended. */
  async waitForEnd(timeoutMs = 5000): Promise<{ code: number; details: string }> {
    return this.#waitFor(() => this.ended ?? undefined, timeoutMs, 'end of stream');
  }

  /** Sends a Report on the stream. */
  report(kind: string, json: string): void {
    this.#stream.write({ report: { kind, json } } as unknown as SidecarMessage);
  }

  close(): void {
    this.#stream.cancel();
    this.#client.close();
  }

  #waitFor<T>(probe: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
    const now = probe();
    if (now !== undefined) return Promise.resolve(now);
    return new Promise((resolve, reject) => {
      const check = () => {
        const v = probe();
        if (v === undefined) return;
        clearTimeout(timer);
        this.#waiters.delete(check);
        resolve(v);
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(
          new Error(
            `no ${what} within ${timeoutMs} ms (${this.#o.hello.podNamespace}/${this.#o.hello.podName})`,
          ),
        );
      }, timeoutMs);
      this.#waiters.add(check);
    });
  }

  #notify(): void {
    for (const w of [...this.#waiters]) w();
  }

  #receive(message: OperatorMessage): void {
    if (message.kind !== 'bundle') return;
    const { version, json } = message.bundle;
    const received = { version, json, at: performance.now() };
    this.bundles.push(received);
    let error = this.#o.refuse?.(received) ?? '';
    if (!error && this.#o.validate !== false) {
      try {
        const engine = PolicyEngine.load(JSON.parse(json));
        if (engine.bundle.version !== version)
          error = `version ${version} does not match the bundle's ${engine.bundle.version}`;
      } catch (e) {
        error = (e as Error).message;
      }
    }
    const reply = error ? { nack: { version, error } } : { ack: { version } };
    this.#stream.write(reply as unknown as SidecarMessage);
    this.#notify();
  }

  #end(code: number, details: string): void {
    this.ended ??= { code, details };
    this.#notify();
  }
}
