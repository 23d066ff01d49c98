/**
 * The operator's webhook and gRPC TLS: with managed certificates it keeps the
 * CA Secret (`tollgate-ca`, made once, 10 years), the serving Secret
 * (`tollgate-operator-tls`, 1 year, renewed at 2/3 of its lifetime, or at once
 * when it is unreadable, not from the CA or lacks a Service name) and the
 * `caBundle` of every webhook of the Tollgate webhook configurations. Without
 * (cert-manager provides Secret and caBundle) it only reads the serving
 * Secret. Either way it re-reads the Secret on every check, so a renewal by
 * another replica or by cert-manager reaches {@link ServingIdentity} and the
 * servers reload it.
 *
 * The CA it makes carries the SPIFFE ID of the trust domain (`spiffe://<trust
 * domain>`) as its URI SAN; a CA found with another one is kept (a warning
 * says to delete the Secret to make a new one).
 *
 * The trust bundle (every root workloads trust) is the CA Secret's `ca.crt`,
 * which may hold several roots (old and new during a root rotation), never
 * less than the signing CA ({@link buildTrustBundle}); re-read at every check
 * and reported through `onTrustBundle` when its content changes. Managed, it
 * is also the root published for agents to verify the operator (ConfigMap
 * `tollgate-ca-root`) and the webhooks' `caBundle`, so a new root is trusted
 * everywhere before it signs the serving certificate.
 *
 * Managed, the Lease leader also rotates the CA in stages
 * ({@link nextRotationStep}): when it has less than `rotateBeforeMs` left, or
 * when the Secret is annotated `tollgate.dev/rotate-ca`.
 *
 * Replicas race safely: a create that finds the Secret already there (409)
 * and a replace that lost to another writer (409) re-read and use the winner.
 */
import {
  AdmissionregistrationV1Api,
  CoreV1Api,
  type KubeConfig,
  type V1Secret,
} from '@kubernetes/client-node';
import { type TrustBundle, trustBundleVersion } from '../../proto/policy-service.ts';
import { errorFields, type KubeLogger, silentLogger } from '../kube/log.ts';
import { statusOf } from '../kube/request-options.ts';
import { nextRotationStep } from './ca-rotation.ts';
import { rotationStep } from './ca-rotation-step.ts';
import {
  createCa,
  inspectCertificate,
  issueServingCertificate,
  keyMatches,
  type PemPair,
  signedBy,
  trustDomainId,
} from './certificates.ts';
import { ServingIdentity } from './serving-identity.ts';
import { buildTrustBundle, pemBlocks } from './trust-bundle.ts';
import { webhookCaBundlePatch } from './webhook-ca-bundle.ts';
import type { SigningCa } from './workload-signer.ts';

export const CA_SECRET = 'tollgate-ca';
export const OPERATOR_SERVICE = 'tollgate-operator';
export const MUTATING_WEBHOOK_CONFIGURATION = 'tollgate-sidecar-injector';
export const VALIDATING_WEBHOOK_CONFIGURATION = 'tollgate-policy-validator';

export interface CertificateManagerOptions {
  kubeConfig: KubeConfig;
  /** Namespace of both Secrets and of the operator's Service. */
  namespace: string;
  /** The serving Secret (`kubernetes.io/tls`). */
  servingSecret: string;
  /** Create, renew and publish certificates (true), or only read the serving Secret (false). */
  manage: boolean;
  /** Default `tollgate-ca`. */
  caSecret?: string;
  /** SPIFFE trust domain of the CA it makes (URI SAN `spiffe://<trustDomain>`). Default `cluster.local`. */
  trustDomain?: string;
  /** The Service whose DNS names the serving certificate carries. Default `tollgate-operator`. */
  serviceName?: string;
  /** Default [`tollgate-sidecar-injector`]. */
  mutatingWebhookConfigurations?: readonly string[];
  /** Default [`tollgate-policy-validator`]. */
  validatingWebhookConfigurations?: readonly string[];
  /** Interval of checks after start. Default 60 s. */
  checkIntervalMs?: number;
  /** Share of the serving lifetime after which it is renewed. Default 2/3. */
  renewAfter?: number;
  /** Lifetimes of new certificates. Defaults 10 years (CA) and 1 year (serving). */
  caLifetimeMs?: number;
  servingLifetimeMs?: number;
  /** Default `Date.now`. */
  now?: () => number;
  log?: KubeLogger;
  /** Called with the CA agents must trust, at start and whenever it changes (null: unknown). */
  onRoot?: (caPem: string | null) => void;
  /** Called with the workload trust bundle, at start and whenever its version changes (null: no CA). */
  onTrustBundle?: (bundle: TrustBundle | null) => void;
  /** Managed: start a staged CA rotation when the CA has less than this left. Default 0: only on request. */
  rotateBeforeMs?: number;
  /** Wait between a trust bundle change and the next rotation stage. Default 10 minutes. */
  rotationPropagationMs?: number;
  /** The workload certificate lifetime: old leaves are gone this long after the new root signs. Default 24 h. */
  workloadTtlMs?: number;
}

const b64 = (text: string) => Buffer.from(text).toString('base64');
const unb64 = (text: string | undefined) =>
  text === undefined ? undefined : Buffer.from(text, 'base64').toString();

function pairOf(secret: V1Secret): PemPair | null {
  const cert = unb64(secret.data?.['tls.crt']);
  const key = unb64(secret.data?.['tls.key']);
  return cert && key ? { cert, key } : null;
}

export class CertificateManager {
  readonly #o: CertificateManagerOptions;
  readonly #core: CoreV1Api;
  readonly #admission: AdmissionregistrationV1Api;
  readonly #log: KubeLogger;
  #identity: ServingIdentity | undefined;
  #root: string | null | undefined;
  #signing: SigningCa | null = null;
  #trust: TrustBundle | null = null;
  #trustProblems = '';
  #timer: NodeJS.Timeout | undefined;
  #checking: Promise<void> | undefined;
  #stopped = false;
  #warnedTrustDomain = false;
  #leader = false;

  constructor(options: CertificateManagerOptions) {
    this.#o = options;
    this.#core = options.kubeConfig.makeApiClient(CoreV1Api);
    this.#admission = options.kubeConfig.makeApiClient(AdmissionregistrationV1Api);
    this.#log = options.log ?? silentLogger;
  }

  /** The DNS names of the serving certificate: the Service's short and qualified names. */
  get dnsNames(): string[] {
    const svc = this.#o.serviceName ?? OPERATOR_SERVICE;
    const ns = this.#o.namespace;
    return [svc, `${svc}.${ns}`, `${svc}.${ns}.svc`, `${svc}.${ns}.svc.cluster.local`];
  }

  /** The CA agents trust (PEM), once known. */
  get root(): string | null {
    return this.#root ?? null;
  }

  /**
   * The CA that signs workload certificates (Secret `tollgate-ca`: made here
   * when managed, cert-manager's otherwise), re-read at every check; null
   * while there is none usable.
   */
  get signingCa(): SigningCa | null {
    return this.#signing;
  }

  /** The workload trust bundle (the CA Secret's `ca.crt` and the signing CA), null while no CA is usable. */
  get trustBundle(): TrustBundle | null {
    return this.#trust;
  }

  /**
   * Makes sure the serving certificate exists (creating the CA and it when
   * managed, throwing when it cannot) and schedules the periodic checks.
   */
  async start(): Promise<ServingIdentity> {
    const { pair, root } = await this.#ensure();
    this.#identity = new ServingIdentity(pair);
    this.#setTrust();
    this.#setRoot(root);
    if (this.#o.manage) await this.#syncWebhooks(root);
    this.#schedule();
    return this.#identity;
  }

  /** One check: re-read (and when managed renew) the serving Secret, reload it, sync caBundles. Never throws. */
  check(): Promise<void> {
    this.#checking ??= this.#check().finally(() => {
      this.#checking = undefined;
    });
    return this.#checking;
  }

  /** Only the Lease leader takes CA rotation steps. */
  setLeader(leading: boolean): void {
    this.#leader = leading;
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  #now(): number {
    return (this.#o.now ?? Date.now)();
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      void this.check().then(() => this.#schedule());
    }, this.#o.checkIntervalMs ?? 60_000);
    this.#timer.unref();
  }

  async #check(): Promise<void> {
    try {
      const { pair, root } = await this.#ensure();
      if (this.#identity?.update(pair))
        this.#log.info({ secret: this.#o.servingSecret }, 'serving certificate reloaded');
      this.#setTrust();
      this.#setRoot(root);
      if (this.#o.manage) await this.#syncWebhooks(root);
    } catch (error) {
      this.#log.warn({ ...errorFields(error) }, 'certificate check failed');
    }
  }

  #setTrust(): void {
    const version = this.#signing ? trustBundleVersion(this.#signing.trustBundle) : null;
    if (version === (this.#trust?.version ?? null)) return;
    this.#trust = this.#signing ? { version: version as string, pem: this.#signing.trustBundle } : null;
    this.#log.info(
      {
        secret: this.#o.caSecret ?? CA_SECRET,
        version,
        roots: this.#trust ? pemBlocks(this.#trust.pem).length : 0,
      },
      'trust bundle changed',
    );
    this.#o.onTrustBundle?.(this.#trust);
  }

  /**
   * The trust bundle of the CA Secret; problems with its ca.crt are logged
   * once per distinct set. A ca.crt with an unreadable certificate (a bad
   * edit) keeps the bundle in force rather than drop roots workloads rely on.
   */
  #trustBundleOf(name: string, secret: V1Secret, pair: PemPair): string {
    const built = buildTrustBundle(unb64(secret.data?.['ca.crt']), pair.cert);
    const keep = built.damaged && this.#trust !== null;
    const problems = built.problems.join('; ');
    if (problems !== this.#trustProblems) {
      this.#trustProblems = problems;
      if (problems)
        this.#log.warn(
          { secret: name, problems: built.problems, kept: keep },
          keep ? 'CA Secret ca.crt damaged, keeping the trust bundle in force' : 'CA Secret ca.crt problems',
        );
    }
    return keep && this.#trust ? this.#trust.pem : built.bundle.pem;
  }

  #setRoot(root: string | null): void {
    if (root === this.#root) return;
    this.#root = root;
    this.#o.onRoot?.(root);
  }

  async #ensure(): Promise<{ pair: PemPair; root: string | null }> {
    if (!this.#o.manage) {
      const secret = await this.#read(this.#o.servingSecret);
      const pair = secret && pairOf(secret);
      if (!pair)
        throw new Error(`Secret ${this.#o.namespace}/${this.#o.servingSecret} has no tls.crt and tls.key`);
      this.#signing = await this.#readSigningCa();
      return { pair, root: unb64(secret.data?.['ca.crt']) ?? null };
    }
    const ca = await this.#ensureCa();
    this.#signing = ca;
    return { pair: await this.#ensureServing(ca), root: ca.trustBundle };
  }

  /** The CA Secret cert-manager keeps, when it is there and usable; never throws. */
  async #readSigningCa(): Promise<SigningCa | null> {
    const name = this.#o.caSecret ?? CA_SECRET;
    try {
      const secret = await this.#read(name);
      const pair = secret && pairOf(secret);
      if (!secret || !pair || !inspectCertificate(pair.cert)?.isCa || !keyMatches(pair)) return null;
      return { ...pair, trustBundle: this.#trustBundleOf(name, secret, pair) };
    } catch (error) {
      this.#log.debug({ secret: name, ...errorFields(error) }, 'CA Secret not readable');
      return null;
    }
  }

  async #read(name: string): Promise<V1Secret | undefined> {
    try {
      return await this.#core.readNamespacedSecret({ namespace: this.#o.namespace, name });
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw error;
    }
  }

  /** Creates the Secret; false when it already existed (another replica won). */
  async #create(name: string, pair: PemPair, caPem: string): Promise<boolean> {
    try {
      await this.#core.createNamespacedSecret({
        namespace: this.#o.namespace,
        body: this.#body(name, pair, caPem),
      });
      return true;
    } catch (error) {
      if (statusOf(error) === 409) return false;
      throw error;
    }
  }

  #body(name: string, pair: PemPair, caPem: string, resourceVersion?: string): V1Secret {
    return {
      metadata: {
        name,
        namespace: this.#o.namespace,
        labels: { 'app.kubernetes.io/managed-by': 'tollgate-operator' },
        ...(resourceVersion === undefined ? {} : { resourceVersion }),
      },
      type: 'kubernetes.io/tls',
      data: { 'tls.crt': b64(pair.cert), 'tls.key': b64(pair.key), 'ca.crt': b64(caPem) },
    };
  }

  async #ensureCa(): Promise<SigningCa> {
    const name = this.#o.caSecret ?? CA_SECRET;
    const existing = await this.#read(name);
    if (existing) {
      const ca = this.#usableCa(name, existing);
      return this.#leader ? this.#rotate(name, existing, ca) : ca;
    }
    const ca = await createCa({
      commonName: 'tollgate-ca',
      now: this.#now(),
      lifetimeMs: this.#o.caLifetimeMs,
      trustDomain: this.#trustDomain,
    });
    if (await this.#create(name, ca, ca.cert)) {
      this.#log.info({ secret: name }, 'CA created');
      return { ...ca, trustBundle: buildTrustBundle(ca.cert, ca.cert).bundle.pem };
    }
    const winner = await this.#read(name);
    if (!winner) throw new Error(`Secret ${this.#o.namespace}/${name} vanished while being created`);
    return this.#usableCa(name, winner);
  }

  #usableCa(name: string, secret: V1Secret): SigningCa {
    const pair = pairOf(secret);
    const info = pair && inspectCertificate(pair.cert);
    let problem: string | undefined;
    if (!pair || !info) problem = 'no readable tls.crt and tls.key';
    else if (!info.isCa) problem = 'tls.crt is not a CA certificate';
    else if (!keyMatches(pair)) problem = 'tls.key does not match tls.crt';
    else if (info.notAfter <= this.#now()) problem = 'the CA expired';
    if (problem || !pair)
      throw new Error(`Secret ${this.#o.namespace}/${name}: ${problem}; delete it to have a new CA made`);
    const wanted = trustDomainId(this.#trustDomain);
    if (!info?.uris.includes(wanted) && !this.#warnedTrustDomain) {
      this.#warnedTrustDomain = true;
      this.#log.warn(
        { secret: name, trustDomain: this.#trustDomain, uris: info?.uris ?? [] },
        'CA has another trust domain; delete the Secret to have a new CA made',
      );
    }
    return { ...pair, trustBundle: this.#trustBundleOf(name, secret, pair) };
  }

  /** Takes the CA rotation step due now, if any; a failure is logged and retried at the next check. */
  async #rotate(name: string, secret: V1Secret, ca: SigningCa): Promise<SigningCa> {
    const o = this.#o;
    const timing = {
      rotateBeforeMs: o.rotateBeforeMs ?? 0,
      propagationMs: o.rotationPropagationMs ?? 600_000,
      workloadTtlMs: o.workloadTtlMs ?? 86_400_000,
    };
    const notAfter = inspectCertificate(ca.cert)?.notAfter ?? 0;
    const step = nextRotationStep(secret.metadata?.annotations ?? {}, notAfter, timing, this.#now());
    if (step === null) return ca;
    try {
      const next = await rotationStep(step, secret, ca, {
        now: this.#now(),
        trustDomain: this.#trustDomain,
        caLifetimeMs: o.caLifetimeMs,
        trustBundle: ca.trustBundle,
      });
      const written = await this.#core.replaceNamespacedSecret({
        namespace: o.namespace,
        name,
        body: next.secret,
      });
      this.#log.info({ secret: name, step, ...next.fields }, next.message);
      return this.#usableCa(name, written);
    } catch (error) {
      this.#log.warn({ secret: name, step, ...errorFields(error) }, 'CA rotation step failed');
      return ca;
    }
  }

  get #trustDomain(): string {
    return this.#o.trustDomain ?? 'cluster.local';
  }

  /** Why the serving pair must be reissued, or null when it is good. */
  #renewalReason(pair: PemPair | null, ca: PemPair): string | null {
    const info = pair && inspectCertificate(pair.cert);
    if (!pair || !info) return 'missing or unreadable';
    if (!keyMatches(pair)) return 'key does not match';
    if (!signedBy(pair.cert, ca.cert)) return 'not signed by the CA';
    if (this.dnsNames.some((n) => !info.dnsNames.includes(n))) return 'DNS names differ';
    const now = this.#now();
    if (now >= info.notAfter) return 'expired';
    const renewAt = info.notBefore + (info.notAfter - info.notBefore) * (this.#o.renewAfter ?? 2 / 3);
    return now >= renewAt ? 'renewal due' : null;
  }

  async #ensureServing(ca: SigningCa): Promise<PemPair> {
    const name = this.#o.servingSecret;
    const secret = await this.#read(name);
    const current = secret ? pairOf(secret) : null;
    const reason = this.#renewalReason(current, ca);
    if (reason === null && current) return current;
    const pair = await issueServingCertificate(ca, {
      dnsNames: this.dnsNames,
      now: this.#now(),
      ...(this.#o.servingLifetimeMs === undefined ? {} : { lifetimeMs: this.#o.servingLifetimeMs }),
    });
    const written = secret
      ? await this.#replace(name, pair, ca.trustBundle, secret.metadata?.resourceVersion)
      : await this.#create(name, pair, ca.trustBundle);
    if (written) {
      this.#log.info({ secret: name, reason }, 'serving certificate issued');
      return pair;
    }
    // Another replica wrote first: use its certificate when it is good.
    const winner = await this.#read(name);
    const theirs = winner ? pairOf(winner) : null;
    if (theirs && this.#renewalReason(theirs, ca) === null) return theirs;
    throw new Error(`Secret ${this.#o.namespace}/${name} changed concurrently; retrying at the next check`);
  }

  async #replace(name: string, pair: PemPair, caPem: string, resourceVersion?: string): Promise<boolean> {
    try {
      await this.#core.replaceNamespacedSecret({
        namespace: this.#o.namespace,
        name,
        body: this.#body(name, pair, caPem, resourceVersion),
      });
      return true;
    } catch (error) {
      if (statusOf(error) === 409) return false;
      throw error;
    }
  }

  /** Patches `caBundle` into every webhook of the configurations where it differs; absent ones are skipped. */
  async #syncWebhooks(root: string | null): Promise<void> {
    if (root === null) return;
    const api = this.#admission;
    const kinds = [
      {
        names: this.#o.mutatingWebhookConfigurations ?? [MUTATING_WEBHOOK_CONFIGURATION],
        read: (name: string) => api.readMutatingWebhookConfiguration({ name }),
        patch: (name: string, body: unknown) => api.patchMutatingWebhookConfiguration({ name, body }),
      },
      {
        names: this.#o.validatingWebhookConfigurations ?? [VALIDATING_WEBHOOK_CONFIGURATION],
        read: (name: string) => api.readValidatingWebhookConfiguration({ name }),
        patch: (name: string, body: unknown) => api.patchValidatingWebhookConfiguration({ name, body }),
      },
    ];
    for (const kind of kinds) {
      for (const name of kind.names) {
        try {
          const ops = webhookCaBundlePatch(await kind.read(name), b64(root));
          if (ops.length === 0) continue;
          await kind.patch(name, ops);
          this.#log.info({ configuration: name, webhooks: ops.length }, 'webhook caBundle updated');
        } catch (error) {
          if (statusOf(error) === 404)
            this.#log.debug({ configuration: name }, 'webhook configuration not found');
          else
            this.#log.warn({ configuration: name, ...errorFields(error) }, 'webhook caBundle update failed');
        }
      }
    }
  }
}
