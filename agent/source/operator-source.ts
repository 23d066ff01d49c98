/**
 * The operator policy source (`--operator`): one PolicyService.Stream to the
 * operator over TLS, opened with a Hello (pod, projected ServiceAccount token
 * read fresh on every connect, app port, the bundle version in force). Every
 * Bundle is decoded, loaded into an engine, checked against its announced
 * version, swapped in atomically, saved to the state directory and ACKed; any
 * failure is NACKed with the reason and the engine in force stays. The stream
 * is reopened with exponential backoff and full jitter whenever it ends.
 * Fail static: the last good bundle from the state directory is enforced from
 * start-up, before (and whether or not) the operator answers. The token is
 * never logged.
 *
 * TrustBundle messages (the mesh roots) go to the trust store: a good one is
 * taken, saved to the state directory beside the bundle and reported
 * `accepted`; a malformed one is logged and reported `rejected` (a Report of
 * kind `trust-bundle`), the one in force stays.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import {
  type ChannelOptions,
  type Client,
  type ClientDuplexStream,
  credentials,
  makeGenericClientConstructor,
  type StatusObject,
  status,
} from '@grpc/grpc-js';
import type { Diagnostic } from '../../policy/diagnostics.ts';
import { PolicyEngine } from '../../policy/engine/engine.ts';
import {
  type Bundle,
  type Mesh,
  type OperatorMessage,
  policyServiceDefinition,
  TRUST_BUNDLE_REPORT,
  type TrustBundle,
  type TrustBundleReport,
} from '../../proto/policy-service.ts';
import type { Logger } from '../agent.ts';
import type { TrustStore } from '../identity/trust-store.ts';
import { Backoff, type BackoffOptions } from './backoff.ts';
import {
  readStateBundle,
  readStateMesh,
  readStateTrustBundle,
  writeStateBundle,
  writeStateMesh,
  writeStateTrustBundle,
} from './state-dir.ts';

/** Where the kubelet mounts the projected token the injector asks for (audience `tollgate`). */
export const DEFAULT_TOKEN_FILE = '/var/run/secrets/tollgate/serviceaccount/token';

/** The longest NACK reason sent (a schema error can quote a lot). */
const MAX_NACK_ERROR = 1024;

export interface OperatorSourceOptions {
  /** The operator's gRPC address, `HOST:PORT` (IPv6 as `[::1]:PORT`). */
  target: string;
  /** PEM file of the CA that signs the operator's serving certificate; re-read on every connect. */
  caFile: string;
  /** The name the serving certificate must carry; default the target's host. */
  serverName?: string;
  /** The projected ServiceAccount token; re-read on every connect (kubelet rotates it). */
  tokenFile: string;
  podName: string;
  podNamespace: string;
  /** The app port (the upstream URL's port). */
  appPort: number;
  agentVersion: string;
  /** Folder for the last good bundle; null: nothing is saved or restored. */
  stateDir: string | null;
  logger: Logger;
  /** Reconnect backoff (default 500 ms doubling to 30 s, full jitter). */
  backoff?: BackoffOptions;
  /** Waits `ms`, resolving early when `signal` aborts (default a timer). */
  delay?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** Extra gRPC channel options (tests). */
  channelOptions?: ChannelOptions;
  onLoad?: (engine: PolicyEngine, diagnostics: Diagnostic[]) => void;
  onReject?: (diagnostics: Diagnostic[]) => void;
  /** Where TrustBundle messages go (absent: they are ignored). */
  trust?: TrustStore;
  /** The operator's meshed destinations (each time they change, and the saved one at start); true when put in force. */
  onMesh?: (mesh: Mesh) => boolean;
}

export type DecodedBundle = { ok: true; engine: PolicyEngine } | { ok: false; error: string };

/** Decodes a Bundle message: JSON, the bundle schema, an engine, the announced version. Never throws. */
export function decodeBundle(bundle: Bundle): DecodedBundle {
  let parsed: unknown;
  try {
    parsed = JSON.parse(bundle.json);
  } catch (e) {
    return { ok: false, error: `the bundle is not JSON: ${(e as Error).message}` };
  }
  let engine: PolicyEngine;
  try {
    engine = PolicyEngine.load(parsed);
  } catch (e) {
    return { ok: false, error: (e as Error).message };
  }
  if (engine.bundle.version !== bundle.version) {
    return {
      ok: false,
      error: `version mismatch: the message announces ${JSON.stringify(bundle.version)}, the bundle is ${JSON.stringify(engine.bundle.version)}`,
    };
  }
  return { ok: true, engine };
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

/** The host of `HOST:PORT` (brackets of an IPv6 literal removed). */
export function targetHost(target: string): string {
  const i = target.lastIndexOf(':');
  return (i < 0 ? target : target.slice(0, i)).replace(/^\[|\]$/g, '');
}

type PolicyCall = ClientDuplexStream<object, OperatorMessage>;

type PolicyClientConstructor = ReturnType<typeof makeGenericClientConstructor>;
let policyClient: PolicyClientConstructor | undefined;
/** The generic client class, built on first use (the proto is not loaded at import time). */
function policyClientClass(): PolicyClientConstructor {
  policyClient ??= makeGenericClientConstructor(policyServiceDefinition(), 'PolicyService');
  return policyClient;
}

const REFUSALS: ReadonlySet<number> = new Set([status.UNAUTHENTICATED, status.PERMISSION_DENIED]);

export class OperatorPolicySource {
  readonly #o: OperatorSourceOptions;
  readonly #backoff: Backoff;
  readonly #stop = new AbortController();
  readonly #delay: (ms: number, signal: AbortSignal) => Promise<void>;
  #engine: PolicyEngine | null = null;
  #saved: string | null = null;
  /** The trust bundle version saved in the state directory. */
  #trustSaved: string | null = null;
  /** The mesh version saved in the state directory. */
  #meshSaved: string | null = null;
  #call: PolicyCall | null = null;
  #loop: Promise<void> | null = null;

  constructor(options: OperatorSourceOptions) {
    this.#o = options;
    this.#backoff = new Backoff(options.backoff);
    this.#delay = options.delay ?? sleep;
  }

  /** The engine in force; null until a bundle was restored or received. */
  get current(): PolicyEngine | null {
    return this.#engine;
  }

  /**
   * Restores the saved bundle (if any), then connects in the background and
   * keeps reconnecting until close(). Throws only when the CA file cannot be
   * read as a certificate (a configuration error): an unreachable operator is
   * not one. Returns null (no policy diagnostics stop this source from starting).
   */
  start(): null {
    if (this.#loop !== null) return null;
    checkCaFile(this.#o.caFile);
    if (this.#o.stateDir !== null) {
      const engine = readStateBundle(this.#o.stateDir, this.#o.logger);
      if (engine) {
        this.#engine = engine;
        this.#saved = engine.bundle.version;
        this.#o.logger.info({ version: engine.bundle.version }, 'policy restored from the state directory');
        this.#o.onLoad?.(engine, []);
      }
      this.#restoreTrust(this.#o.stateDir);
      this.#restoreMesh(this.#o.stateDir);
    }
    this.#loop = this.#run();
    return null;
  }

  /** Stops reconnecting and cancels the stream. */
  /** Sends a Report on the open stream; false when none is open (dropped, never queued). */
  report(kind: string, payload: Readonly<Record<string, unknown>>): boolean {
    if (this.#call === null) return false;
    this.#call.write({ report: { kind, json: JSON.stringify(payload) } });
    return true;
  }

  close(): void {
    this.#stop.abort();
    this.#call?.cancel();
  }

  /** Resolves once the connect loop has ended after close() (tests). */
  async closed(): Promise<void> {
    await this.#loop;
  }

  async #run(): Promise<void> {
    const signal = this.#stop.signal;
    while (!signal.aborted) {
      let result: { healthy: boolean; failure: StatusObject | string | null };
      try {
        result = await this.#attempt();
      } catch (e) {
        result = { healthy: false, failure: (e as Error).message };
      }
      if (signal.aborted) break;
      if (result.healthy) this.#backoff.reset();
      const retryInMs = this.#backoff.next();
      this.#logFailure(result.failure, { failures: this.#backoff.failures, retryInMs });
      await this.#delay(retryInMs, signal);
    }
  }

  #logFailure(failure: StatusObject | string | null, fields: { failures: number; retryInMs: number }): void {
    const log = this.#o.logger;
    if (failure === null) {
      log.info({ operator: this.#o.target, ...fields }, 'operator stream closed, reconnecting');
    } else if (typeof failure === 'string') {
      log.warn({ operator: this.#o.target, reason: failure, ...fields }, 'operator not contacted');
    } else {
      const entry = {
        operator: this.#o.target,
        code: status[failure.code] ?? String(failure.code),
        reason: failure.details,
        ...fields,
      };
      if (REFUSALS.has(failure.code)) log.warn(entry, 'operator refused the stream');
      else log.warn(entry, 'operator stream failed');
    }
  }

  /** One stream, from Hello to its final status. */
  async #attempt(): Promise<{ healthy: boolean; failure: StatusObject | string | null }> {
    const { ca, token } = await this.#credentials();
    if (this.#stop.signal.aborted) return { healthy: false, failure: null };
    const client = this.#client(ca);
    try {
      const { end, bundles } = await this.#stream(client, token);
      const failure = end.code === status.OK ? null : { ...end, details: redact(end.details, token) };
      // A stream that delivered a bundle had its Hello accepted: a later loss starts the backoff afresh.
      return { healthy: bundles > 0, failure };
    } finally {
      client.close();
    }
  }

  /** The CA and the token, read afresh (both rotate); throws a message fit for the log. */
  async #credentials(): Promise<{ ca: Buffer; token: string }> {
    const { caFile, tokenFile } = this.#o;
    const ca = await readFile(caFile).catch((e: { code?: string }) => {
      throw new Error(`cannot read the operator CA ${caFile} (${e.code ?? 'EIO'})`);
    });
    const text = await readFile(tokenFile, 'utf8').catch((e: { code?: string }) => {
      throw new Error(`cannot read the service account token ${tokenFile} (${e.code ?? 'EIO'})`);
    });
    const token = text.trim();
    if (token === '') throw new Error(`the service account token ${tokenFile} is empty`);
    return { ca, token };
  }

  #client(ca: Buffer): Client {
    const host = targetHost(this.#o.target);
    const serverName = this.#o.serverName ?? host;
    const PolicyClientClass = policyClientClass();
    return new PolicyClientClass(this.#o.target, credentials.createSsl(ca), {
      ...(serverName === host ? {} : { 'grpc.ssl_target_name_override': serverName }),
      // Finds a dead operator connection (no FIN, e.g. a node gone) within 40 s.
      'grpc.keepalive_time_ms': 30_000,
      'grpc.keepalive_timeout_ms': 10_000,
      'grpc.max_receive_message_length': 16 * 1024 * 1024,
      ...this.#o.channelOptions,
    });
  }

  /** Sends the Hello, applies bundles in order as they come; resolves with the final status. */
  async #stream(client: Client, token: string): Promise<{ end: StatusObject; bundles: number }> {
    const call = (client as unknown as { Stream(): PolicyCall }).Stream();
    this.#call = call;
    let bundles = 0;
    let queue = Promise.resolve();
    let open = true;
    // An ACK for a stream that has ended is dropped: the next Hello reports the version in force.
    const send = (message: object) => {
      if (open) call.write(message);
    };
    const end = await new Promise<StatusObject>((resolve) => {
      call.on('data', (message: OperatorMessage) => {
        if (message.kind === 'trustBundle') {
          const trust = message.trustBundle;
          queue = queue.then(() => this.#applyTrust(trust, send));
          return;
        }
        if (message.kind === 'mesh') {
          const mesh = message.mesh;
          queue = queue.then(() => this.#applyMesh(mesh));
          return;
        }
        if (message.kind !== 'bundle') return;
        if (++bundles === 1) this.#o.logger.info({ operator: this.#o.target }, 'operator stream open');
        queue = queue.then(() => this.#apply(message.bundle, send));
      });
      // Every failure also ends in 'status'; this listener keeps 'error' from throwing.
      call.on('error', () => {});
      call.on('status', (s: StatusObject) => {
        open = false;
        resolve(s);
      });
      call.write({
        hello: {
          podName: this.#o.podName,
          podNamespace: this.#o.podNamespace,
          token,
          appPort: this.#o.appPort,
          bundleVersion: this.#engine?.bundle.version ?? '',
          agentVersion: this.#o.agentVersion,
        },
      });
    });
    this.#call = null;
    await queue;
    this.#o.trust?.streamEnded();
    return { end, bundles };
  }

  /** Loads one bundle: swap, save, ACK; or NACK and keep the engine in force. Never throws. */
  async #apply(bundle: Bundle, send: (message: object) => void): Promise<void> {
    const decoded = decodeBundle(bundle);
    if (!decoded.ok) {
      const error = decoded.error.slice(0, MAX_NACK_ERROR);
      this.#o.onReject?.([{ severity: 'error', path: [], message: `bundle ${bundle.version}: ${error}` }]);
      send({ nack: { version: bundle.version, error } });
      return;
    }
    const engine = decoded.engine;
    const version = engine.bundle.version;
    // The same version again (a reconnect): keep the engine, its caches and counters.
    if (this.#engine?.bundle.version !== version) {
      this.#engine = engine;
      this.#o.onLoad?.(engine, []);
    }
    await this.#save(bundle.json, version);
    send({ ack: { version } });
  }

  /** Takes the saved trust bundle when it is good; a bad one is logged and ignored. */
  #restoreTrust(dir: string): void {
    const trust = this.#o.trust;
    const pem = trust ? readStateTrustBundle(dir, this.#o.logger) : null;
    if (!trust || pem === null) return;
    const offer = trust.restore(pem);
    if (offer.ok) {
      this.#trustSaved = trust.current?.version ?? null;
      this.#o.logger.info({ version: this.#trustSaved }, 'trust bundle restored from the state directory');
    } else this.#o.logger.warn({ dir, error: offer.error }, 'saved trust bundle invalid, ignored');
  }

  /** Hands the saved mesh to `onMesh` (which checks it); one it refuses is not used. */
  #restoreMesh(dir: string): void {
    const saved = readStateMesh(dir, this.#o.logger) as Mesh | null;
    if (saved === null || !this.#o.onMesh) return;
    if (typeof saved !== 'object' || !Array.isArray(saved.endpoints) || typeof saved.version !== 'string') {
      this.#o.logger.warn({ dir }, 'saved mesh invalid, ignored');
      return;
    }
    if (this.#o.onMesh(saved)) {
      this.#meshSaved = saved.version;
      this.#o.logger.info({ version: saved.version }, 'mesh restored from the state directory');
    }
  }

  /** Hands a Mesh to `onMesh`; saves it when it was put in force. Never throws. */
  async #applyMesh(mesh: Mesh): Promise<void> {
    if (!this.#o.onMesh?.(mesh)) return;
    const dir = this.#o.stateDir;
    if (dir === null || this.#meshSaved === mesh.version) return;
    try {
      await writeStateMesh(dir, mesh);
      this.#meshSaved = mesh.version;
    } catch (e) {
      const code = (e as { code?: string }).code ?? (e as Error).message;
      this.#o.logger.error({ dir, code, version: mesh.version }, 'cannot save the mesh');
    }
  }

  /** Takes a TrustBundle (saved, reported accepted) or refuses it (logged, reported rejected). Never throws. */
  async #applyTrust(bundle: TrustBundle, send: (message: object) => void): Promise<void> {
    const trust = this.#o.trust;
    if (!trust) return;
    const offer = trust.offerStream(bundle);
    const report = (r: TrustBundleReport) =>
      send({ report: { kind: TRUST_BUNDLE_REPORT, json: JSON.stringify(r) } });
    if (!offer.ok) {
      const error = offer.error.slice(0, MAX_NACK_ERROR);
      this.#o.logger.error(
        { version: bundle.version, error, inForce: trust.current?.version ?? null },
        'trust bundle rejected, keeping the one in force',
      );
      report({ version: bundle.version, result: 'rejected', error });
      return;
    }
    const dir = this.#o.stateDir;
    if (dir !== null && this.#trustSaved !== bundle.version) {
      try {
        await writeStateTrustBundle(dir, bundle.pem);
        this.#trustSaved = bundle.version;
      } catch (e) {
        const code = (e as { code?: string }).code ?? (e as Error).message;
        this.#o.logger.error({ dir, code, version: bundle.version }, 'cannot save the trust bundle');
      }
    }
    report({ version: bundle.version, result: 'accepted' });
  }

  /** Saves the bundle in force; a failure is logged, not NACKed (the bundle is in force all the same). */
  async #save(json: string, version: string): Promise<void> {
    const dir = this.#o.stateDir;
    if (dir === null || this.#saved === version) return;
    try {
      await writeStateBundle(dir, json);
      this.#saved = version;
    } catch (e) {
      const code = (e as { code?: string }).code ?? (e as Error).message;
      this.#o.logger.error({ dir, code, version }, 'cannot save the policy bundle');
    }
  }
}

/** Throws when the CA file cannot be read or holds no PEM certificate. */
function checkCaFile(file: string): void {
  let pem: string;
  try {
    pem = readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`--operator-ca: cannot read ${file} (${(e as { code?: string }).code ?? 'EIO'})`);
  }
  try {
    new X509Certificate(pem);
  } catch {
    throw new Error(`--operator-ca: ${file} holds no PEM certificate`);
  }
}

/** The text without the token in it (an operator must never echo it, but a log must never hold it). */
function redact(text: string, token: string): string {
  return token.length >= 8 ? text.split(token).join('[redacted]') : text;
}
