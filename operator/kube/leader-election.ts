/**
 * Leader election on a `coordination.k8s.io/v1` Lease, with client-go's
 * leaderelection semantics: a candidate takes the lease when there is none,
 * when it is released (no holder), when it is its own, or when it has expired
 * (`renewTime + leaseDurationSeconds < now`); every write carries the
 * resourceVersion it read, so of two racing candidates the API server lets one
 * win and answers the other 409. A takeover bumps `leaseTransitions`. The
 * leader renews every retry period and steps down — before anyone else may
 * take over — when it has not renewed within the renew deadline, or at once
 * when it finds the lease written by someone else. `stop()` releases a held
 * lease (client-go's ReleaseOnCancel) so a successor need not wait for expiry.
 */
import {
  CoordinationV1Api,
  type KubeConfig,
  type V1Lease,
  type V1LeaseSpec,
  V1MicroTime,
} from '@kubernetes/client-node';
import { type Delay, sleep } from './backoff.ts';
import { errorFields, type KubeLogger, silentLogger } from './log.ts';
import { statusOf, withSignal } from './request-options.ts';

/** The Lease calls the elector makes (a `CoordinationV1Api` has them). */
export type LeaseApi = Pick<
  CoordinationV1Api,
  'readNamespacedLease' | 'createNamespacedLease' | 'replaceNamespacedLease'
>;

/** Options of {@link LeaderElector}. */
export interface LeaderElectorOptions {
  /** Builds the Lease client; or pass `api`. */
  kubeConfig?: KubeConfig;
  api?: LeaseApi;
  namespace: string;
  /** The Lease's name, shared by all candidates. */
  name: string;
  /** This candidate, unique among them (e.g. the pod name). */
  identity: string;
  /** How long a lease stays valid after its last renewal; whole seconds on the wire. Default 15000. */
  leaseDurationMs?: number;
  /** How long the leader keeps trying to renew before it steps down; under `leaseDurationMs`. Default 10000. */
  renewDeadlineMs?: number;
  /** Pause between attempts (candidates add up to 1.2× jitter); under `renewDeadlineMs`. Default 2000. */
  retryPeriodMs?: number;
  /** Clock in ms. Default `Date.now`. */
  now?: () => number;
  delay?: Delay;
  /** Jitter source in [0, 1). Default `Math.random`. */
  random?: () => number;
  log?: KubeLogger;
  /** Called when this candidate becomes leader; a throw is logged. */
  onStartedLeading?: () => void;
  /** Called when it stops being leader (lost, deadline passed, or stopped); a throw is logged. */
  onStoppedLeading?: () => void;
}

/** Jitter of candidates' retries, as client-go's `JitterFactor`. */
const JITTER = 1.2;

type Attempt =
  | { kind: 'acquired' | 'renewed'; at: number }
  | { kind: 'held'; holder: string }
  | { kind: 'conflict' }
  | { kind: 'error'; error: unknown }
  | { kind: 'timeout' };

function millis(value: unknown): number {
  return value instanceof Date || typeof value === 'string' ? new Date(value).getTime() : Number.NaN;
}

/** Competes for a Lease; nothing happens before {@link start}. */
export class LeaderElector {
  readonly #api: LeaseApi;
  readonly #o: Required<
    Pick<
      LeaderElectorOptions,
      'namespace' | 'name' | 'identity' | 'leaseDurationMs' | 'renewDeadlineMs' | 'retryPeriodMs'
    >
  >;
  readonly #now: () => number;
  readonly #delay: Delay;
  readonly #random: () => number;
  readonly #log: KubeLogger;
  readonly #callbacks: Pick<LeaderElectorOptions, 'onStartedLeading' | 'onStoppedLeading'>;
  readonly #abort = new AbortController();
  #loop: Promise<void> | undefined;
  #leading = false;
  /** When the last successful acquire or renew was sent (the renewTime it wrote). */
  #renewedAt = 0;
  /** The lease as this candidate last wrote it, while nothing says it lost it: renewed without a read. */
  #lease: V1Lease | undefined;

  constructor(options: LeaderElectorOptions) {
    const api = options.api ?? options.kubeConfig?.makeApiClient(CoordinationV1Api);
    if (api === undefined) throw new TypeError('LeaderElector needs kubeConfig or api');
    this.#api = api;
    this.#o = {
      namespace: options.namespace,
      name: options.name,
      identity: options.identity,
      leaseDurationMs: options.leaseDurationMs ?? 15_000,
      renewDeadlineMs: options.renewDeadlineMs ?? 10_000,
      retryPeriodMs: options.retryPeriodMs ?? 2_000,
    };
    const { leaseDurationMs, renewDeadlineMs, retryPeriodMs } = this.#o;
    if (options.identity === '') throw new RangeError('identity must not be empty');
    if (!(leaseDurationMs > renewDeadlineMs && leaseDurationMs >= 1000)) {
      throw new RangeError('leaseDurationMs must be at least 1000 and greater than renewDeadlineMs');
    }
    if (!(renewDeadlineMs > retryPeriodMs * JITTER && retryPeriodMs > 0)) {
      throw new RangeError(`renewDeadlineMs must be greater than ${JITTER} × retryPeriodMs`);
    }
    this.#now = options.now ?? Date.now;
    this.#delay = options.delay ?? sleep;
    this.#random = options.random ?? Math.random;
    this.#log = options.log ?? silentLogger;
    this.#callbacks = { ...options };
  }

  /** Whether this candidate leads now: it won the lease and is within its renew deadline. */
  get isLeader(): boolean {
    return this.#leading && this.#now() < this.#renewedAt + this.#o.renewDeadlineMs;
  }

  /** Starts competing, in the background. Idempotent; does nothing after {@link stop}. */
  start(): void {
    if (this.#loop !== undefined || this.#abort.signal.aborted) return;
    this.#loop = this.#run();
  }

  /** Stops competing; if leading, steps down and then releases the lease. Never throws. */
  async stop(): Promise<void> {
    if (this.#abort.signal.aborted) return;
    this.#abort.abort();
    await this.#loop;
    // Also set when an acquire succeeded just as stop() cancelled the loop.
    const lease = this.#lease;
    const leading = this.#leading;
    this.#stepDown('stopped');
    if (lease !== undefined || leading) await this.#release(lease);
  }

  async #run(): Promise<void> {
    const signal = this.#abort.signal;
    while (!signal.aborted) {
      if (this.#leading) await this.#renew();
      else await this.#campaign();
    }
  }

  async #campaign(): Promise<void> {
    this.#lease = undefined;
    const result = await this.#attempt(this.#o.renewDeadlineMs);
    if (this.#abort.signal.aborted) return;
    if (result.kind === 'acquired' || result.kind === 'renewed') {
      this.#renewedAt = result.at;
      this.#leading = true;
      this.#log.info({ lease: this.#o.name, identity: this.#o.identity }, 'became leader');
      this.#notify('onStartedLeading');
      return;
    }
    if (result.kind === 'held') this.#log.debug({ lease: this.#o.name, holder: result.holder }, 'lease held');
    else if (result.kind === 'conflict') this.#log.debug({ lease: this.#o.name }, 'lease taken by another');
    else this.#logFailure(result, 'lease acquire failed');
    const wait = this.#o.retryPeriodMs * (1 + this.#random() * JITTER);
    await this.#delay(wait, this.#abort.signal);
  }

  async #renew(): Promise<void> {
    const signal = this.#abort.signal;
    await this.#delay(Math.min(this.#o.retryPeriodMs, this.#remaining()), signal);
    if (signal.aborted) return;
    if (this.#remaining() <= 0) {
      this.#stepDown('renew deadline passed');
      return;
    }
    const result = await this.#attempt(this.#remaining());
    if (signal.aborted) return;
    switch (result.kind) {
      case 'acquired':
      case 'renewed':
        this.#renewedAt = result.at;
        return;
      case 'held':
      case 'conflict':
        this.#stepDown('lease taken');
        return;
      case 'timeout':
        this.#stepDown('renew deadline passed');
        return;
      case 'error':
        this.#logFailure(result, 'lease renew failed');
        if (this.#remaining() <= 0) this.#stepDown('renew deadline passed');
        return;
    }
  }

  #remaining(): number {
    return Math.max(0, this.#renewedAt + this.#o.renewDeadlineMs - this.#now());
  }

  #stepDown(reason: string): void {
    this.#lease = undefined;
    if (!this.#leading) return;
    this.#leading = false;
    const fields = { lease: this.#o.name, identity: this.#o.identity, reason };
    if (reason === 'stopped') this.#log.info(fields, 'stopped leading');
    else this.#log.warn(fields, 'stopped leading');
    this.#notify('onStoppedLeading');
  }

  /** One tryAcquireOrRenew, abandoned (and its request cancelled) after `timeoutMs` or at stop. */
  async #attempt(timeoutMs: number): Promise<Attempt> {
    const request = new AbortController();
    const timer = new AbortController();
    const stop = (): void => request.abort();
    this.#abort.signal.addEventListener('abort', stop, { once: true });
    try {
      const timeout = this.#delay(timeoutMs, AbortSignal.any([timer.signal, this.#abort.signal])).then(
        (): Attempt => ({ kind: 'timeout' }),
      );
      return await Promise.race([this.#tryAcquireOrRenew(request.signal), timeout]);
    } finally {
      timer.abort();
      request.abort();
      this.#abort.signal.removeEventListener('abort', stop);
    }
  }

  async #tryAcquireOrRenew(signal: AbortSignal): Promise<Attempt> {
    const now = this.#now();
    const { namespace, name, identity } = this.#o;
    const options = withSignal(signal);
    let current = this.#leading ? this.#lease : undefined;
    try {
      if (current === undefined) current = await this.#api.readNamespacedLease({ namespace, name }, options);
    } catch (error) {
      if (statusOf(error) !== 404) return { kind: 'error', error };
      return this.#write(() =>
        this.#api.createNamespacedLease({ namespace, body: this.#body(undefined, now) }, options),
      ).then((result) => (result.kind === 'written' ? { kind: 'acquired', at: now } : result));
    }
    const spec: V1LeaseSpec = current.spec ?? {};
    const holder = spec.holderIdentity ?? '';
    const expiresAt = millis(spec.renewTime) + (spec.leaseDurationSeconds ?? 0) * 1000;
    if (holder !== '' && holder !== identity && !(expiresAt < now)) return { kind: 'held', holder };
    const body = this.#body(current, now);
    const result = await this.#write(() =>
      this.#api.replaceNamespacedLease({ namespace, name, body }, options),
    );
    if (result.kind !== 'written') return result;
    return { kind: holder === identity ? 'renewed' : 'acquired', at: now };
  }

  async #write(
    request: () => Promise<V1Lease>,
  ): Promise<{ kind: 'written' } | { kind: 'conflict' } | { kind: 'error'; error: unknown }> {
    try {
      this.#lease = await request();
      return { kind: 'written' };
    } catch (error) {
      this.#lease = undefined;
      // 409: someone else wrote the lease since we read it (or created it first).
      return statusOf(error) === 409 ? { kind: 'conflict' } : { kind: 'error', error };
    }
  }

  /** The lease this candidate writes: held by it, renewed now; a takeover starts a new term. */
  #body(current: V1Lease | undefined, now: number): V1Lease {
    const spec: V1LeaseSpec = current?.spec ?? {};
    const takeover = current === undefined || spec.holderIdentity !== this.#o.identity;
    const transitions = spec.leaseTransitions ?? 0;
    return {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: current?.metadata ?? { name: this.#o.name, namespace: this.#o.namespace },
      spec: {
        holderIdentity: this.#o.identity,
        leaseDurationSeconds: Math.ceil(this.#o.leaseDurationMs / 1000),
        acquireTime: takeover || spec.acquireTime === undefined ? new V1MicroTime(now) : spec.acquireTime,
        renewTime: new V1MicroTime(now),
        leaseTransitions: current === undefined ? 0 : takeover ? transitions + 1 : transitions,
      },
    };
  }

  /** Empties the holder of the lease if this candidate still holds it, so the next one takes it at once. */
  async #release(written: V1Lease | undefined): Promise<void> {
    const { namespace, name, identity } = this.#o;
    const request = new AbortController();
    const timeout = this.#delay(this.#o.renewDeadlineMs, request.signal).then(() => request.abort());
    const options = withSignal(request.signal);
    try {
      const lease = written ?? (await this.#api.readNamespacedLease({ namespace, name }, options));
      if (lease.spec?.holderIdentity !== identity) return;
      const now = new V1MicroTime(this.#now());
      const spec = {
        ...lease.spec,
        holderIdentity: '',
        leaseDurationSeconds: 1,
        acquireTime: now,
        renewTime: now,
      };
      await this.#api.replaceNamespacedLease({ namespace, name, body: { ...lease, spec } }, options);
      this.#log.info({ lease: name, identity }, 'lease released');
    } catch (error) {
      this.#log.warn({ lease: name, identity, ...errorFields(error) }, 'lease release failed');
    } finally {
      request.abort();
      await timeout;
    }
  }

  #notify(callback: 'onStartedLeading' | 'onStoppedLeading'): void {
    try {
      this.#callbacks[callback]?.();
    } catch (error) {
      this.#log.error({ lease: this.#o.name, callback, ...errorFields(error) }, 'leader callback failed');
    }
  }

  #logFailure(result: Attempt, msg: string): void {
    const fields = result.kind === 'error' ? errorFields(result.error) : { err: result.kind };
    this.#log.warn({ lease: this.#o.name, identity: this.#o.identity, ...fields }, msg);
  }
}
