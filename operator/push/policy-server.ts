/**
 * The operator's gRPC endpoint: `tollgate.v1.PolicyService.Stream` over TLS.
 * The first message must be a Hello; once it is authenticated the stream
 * becomes a session, is sent its workload's bundle and every later change
 * (through the push queue) and the trust bundle, and its ACKs and NACKs are
 * recorded. A refused
 * Hello ends the stream with the status `authenticateHello` chose. With a
 * `sign` handler the same server (same TLS) also serves
 * `tollgate.v1.IdentityService.Sign`, the workload certificates.
 */
import {
  experimental,
  status as GrpcStatus,
  Server,
  ServerCredentials,
  type ServerDuplexStream,
  type ServerUnaryCall,
  type sendUnaryData,
} from '@grpc/grpc-js';
import {
  identityServiceDefinition,
  type SignRequest,
  type SignResponse,
} from '../../proto/identity-service.ts';
import type { Hello, OperatorMessage, SidecarMessage, TrustBundle } from '../../proto/policy-service.ts';
import { policyServiceDefinition } from '../../proto/policy-service.ts';
import type { PushQueue } from './push-queue.ts';
import { pushTrustBundle, type SessionRegistry, type SidecarSession } from './sessions.ts';
import type { HelloOutcome } from './sidecar-auth.ts';

/** The logging calls the server makes (pino's shape). */
export interface PushLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
}

export interface PolicyServerOptions {
  /** `HOST:PORT` (port 0 picks a free one). */
  listen: string;
  /**
   * PEM serving certificate chain and key, or a provider of them (such as the
   * operator's ServingIdentity) whose updates the server applies to new
   * connections without a restart.
   */
  tls: { cert: string; key: string } | experimental.CertificateProvider;
  authenticate: (hello: Hello) => Promise<HelloOutcome>;
  sessions: SessionRegistry;
  queue: PushQueue;
  /** The workload trust bundle sent to each sidecar after its Hello (null or absent: none yet). */
  trustBundle?: () => TrustBundle | null;
  log: PushLogger;
  /** Time a new stream has to send its Hello. Default 10 s. */
  helloTimeoutMs?: number;
  onAck?: (session: SidecarSession, version: string) => void;
  onNack?: (session: SidecarSession, version: string, error: string) => void;
  /** A sidecar's Report (kind and JSON text, both unvalidated). */
  onReport?: (session: SidecarSession, kind: string, json: string) => void;
  /** Signs a workload CSR (IdentityService.Sign); absent: the service is not served. */
  sign?: (request: SignRequest) => Promise<SignOutcome>;
  onConnect?: (session: SidecarSession) => void;
  /** After the first bundle was pushed (or found current): for what follows it, such as the mesh. */
  onGreeted?: (session: SidecarSession) => void;
  onDisconnect?: (session: SidecarSession) => void;
}

/** A signed certificate, or the status the call ends with. */
export type SignOutcome = ({ ok: true } & SignResponse) | { ok: false; code: GrpcStatus; message: string };

type Call = ServerDuplexStream<SidecarMessage, OperatorMessage>;

export class PolicyServer {
  readonly #options: PolicyServerOptions;
  readonly #server = new Server({
    'grpc.keepalive_time_ms': 30_000,
    'grpc.keepalive_timeout_ms': 10_000,
    'grpc.keepalive_permit_without_calls': 1,
    // channelz keeps per-socket and per-call trace state: memory per sidecar nobody reads.
    'grpc.enable_channelz': 0,
  });
  #nextId = 1;

  constructor(options: PolicyServerOptions) {
    this.#options = options;
  }

  /** Binds and serves; resolves with the port. */
  async start(): Promise<number> {
    this.#server.addService(policyServiceDefinition(), {
      Stream: (call: Call) => this.#stream(call),
    });
    const sign = this.#options.sign;
    if (sign) {
      this.#server.addService(identityServiceDefinition(), {
        Sign: (call: ServerUnaryCall<SignRequest, SignResponse>, callback: sendUnaryData<SignResponse>) => {
          sign(call.request).then(
            (out) =>
              out.ok
                ? callback(null, { certChain: out.certChain, trustBundle: out.trustBundle })
                : callback({ code: out.code, details: out.message }),
            (e: unknown) =>
              callback({ code: GrpcStatus.INTERNAL, details: `sign failed: ${(e as Error).message}` }),
          );
        },
      });
    }
    const { tls } = this.#options;
    const credentials =
      'cert' in tls
        ? ServerCredentials.createSsl(
            null,
            [{ cert_chain: Buffer.from(tls.cert), private_key: Buffer.from(tls.key) }],
            false,
          )
        : // grpc-js names its first parameter the CA provider, but uses it as the identity one.
          experimental.createCertificateProviderServerCredentials(tls, null, false);
    return new Promise((resolve, reject) => {
      this.#server.bindAsync(this.#options.listen, credentials, (error, port) =>
        error ? reject(error) : resolve(port),
      );
    });
  }

  /** Stops accepting, ends every stream. */
  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.#server.forceShutdown();
        resolve();
      }, 1000);
      this.#server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Ends every open stream now (the sidecars reconnect): for tests and shutdown. */
  forceShutdown(): void {
    this.#server.forceShutdown();
  }

  #stream(call: Call): void {
    const o = this.#options;
    let session: SidecarSession | undefined;
    let greeted = false;
    let ended = false;
    const end = (code: GrpcStatus, details: string) => {
      if (ended) return;
      ended = true;
      clearTimeout(timer);
      call.emit('error', { code, details, metadata: undefined });
    };
    const timer = setTimeout(
      () => end(GrpcStatus.UNAUTHENTICATED, 'no hello received in time'),
      o.helloTimeoutMs ?? 10_000,
    );
    const cleanup = () => {
      ended = true;
      clearTimeout(timer);
      if (session) {
        o.sessions.remove(session);
        o.onDisconnect?.(session);
        o.log.info({ 'pod.namespace': session.namespace, 'pod.name': session.pod }, 'sidecar disconnected');
        session = undefined;
      }
    };
    call.on('data', (message: SidecarMessage) => {
      if (!greeted) {
        greeted = true;
        clearTimeout(timer);
        if (message.kind !== 'hello')
          return end(GrpcStatus.INVALID_ARGUMENT, 'the first message must be a hello');
        this.#greet(call, message.hello, end).then(
          (s) => {
            session = s;
          },
          (e: unknown) => end(GrpcStatus.INTERNAL, `hello failed: ${(e as Error).message}`),
        );
        return;
      }
      if (!session) return;
      switch (message.kind) {
        case 'ack':
          session.ack = { version: message.ack.version, nack: null };
          o.onAck?.(session, message.ack.version);
          break;
        case 'nack':
          session.ack = {
            version: session.ack.version,
            nack: { version: message.nack.version, error: message.nack.error },
          };
          o.log.warn(
            {
              'pod.namespace': session.namespace,
              'pod.name': session.pod,
              version: message.nack.version,
              error: message.nack.error,
            },
            'sidecar rejected bundle',
          );
          o.onNack?.(session, message.nack.version, message.nack.error);
          break;
        case 'report':
          o.onReport?.(session, message.report.kind, message.report.json);
          break;
        case 'hello':
          end(GrpcStatus.INVALID_ARGUMENT, 'hello sent twice');
          break;
      }
    });
    call.on('end', () => {
      cleanup();
      call.end();
    });
    call.on('cancelled', cleanup);
    call.on('close', cleanup);
    call.on('error', cleanup);
  }

  async #greet(
    call: Call,
    hello: Hello,
    end: (code: GrpcStatus, details: string) => void,
  ): Promise<SidecarSession | undefined> {
    const o = this.#options;
    const outcome = await o.authenticate(hello);
    const who = { 'pod.namespace': hello.podNamespace, 'pod.name': hello.podName };
    if (!outcome.ok) {
      o.log.warn({ ...who, code: GrpcStatus[outcome.code], reason: outcome.message }, 'sidecar refused');
      end(outcome.code, outcome.message);
      return undefined;
    }
    if (call.cancelled || call.destroyed) return undefined;
    const session: SidecarSession = {
      id: this.#nextId++,
      namespace: outcome.pod.namespace,
      pod: outcome.pod.name,
      // A sidecar that restored a bundle from its state dir runs it: no need to send it again.
      sentVersion: hello.bundleVersion,
      ack: { version: hello.bundleVersion, nack: null },
      send: (version, json) => {
        call.write({ kind: 'bundle', bundle: { version, json } });
      },
      trustSentVersion: '',
      trustVersion: '',
      sendTrust: (trustBundle) => {
        call.write({ kind: 'trustBundle', trustBundle });
      },
      meshVersion: '',
      sendMesh: (mesh) => {
        call.write({ kind: 'mesh', mesh });
      },
    };
    o.sessions.add(session);
    o.log.info(
      { ...who, 'agent.version': hello.agentVersion, 'bundle.version': hello.bundleVersion },
      'sidecar connected',
    );
    o.onConnect?.(session);
    pushTrustBundle(session, o.trustBundle?.() ?? null);
    o.queue.pushNow(session);
    o.onGreeted?.(session);
    return session;
  }
}
