/**
 * The operator's admission side, wired for operator.ts: the certificate
 * manager (serving certificate for gRPC and webhooks, CA, caBundle), the
 * `tollgate-ca-root` publisher fed by the namespace informer (written by the
 * Lease leader only), and the webhook server whose TLS follows the serving
 * certificate. Every replica serves the webhooks.
 */
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import type { TrustBundle } from '../../proto/policy-service.ts';
import { CaRootPublisher } from '../ca/ca-root-publisher.ts';
import { CertificateManager } from '../ca/certificate-manager.ts';
import type { ServingIdentity } from '../ca/serving-identity.ts';
import type { SigningCa } from '../ca/workload-signer.ts';
import type { KubeLogger } from '../kube/log.ts';
import { statusOf } from '../kube/request-options.ts';
import { admissionHandlers } from './admission-handlers.ts';
import type { InjectorOptions } from './injector-options.ts';
import { resolveNativeSidecars } from './native-sidecars.ts';
import { WebhookServer } from './webhook-server.ts';

export interface AdmissionControllerOptions {
  kubeConfig: KubeConfig;
  /** The serving Secret; its namespace holds the CA Secret and the operator's Service. */
  servingSecret: { namespace: string; name: string };
  manageCertificates: boolean;
  /** SPIFFE trust domain of a CA the operator makes. Default `cluster.local`. */
  trustDomain?: string;
  /** Serve the webhooks; without, only certificates and the CA root are kept. */
  webhook?: {
    listen: { host: string; port: number };
    inject: InjectorOptions;
  };
  /** The namespace informer's labels of a namespace (undefined when unknown: it is read). */
  namespaceLabels: (namespace: string) => Readonly<Record<string, string>> | undefined;
  log: KubeLogger;
  /** Interval of certificate checks. Default 60 s. */
  certificateCheckMs?: number;
  /** Default `Date.now`. */
  now?: () => number;
  /** The workload trust bundle, at start and whenever it changes (null: no usable CA). */
  onTrustBundle?: (bundle: TrustBundle | null) => void;
  /** Managed CA rotation: see CertificateManagerOptions. */
  caRotateBeforeMs?: number;
  workloadCertTtlMs?: number;
}

export class AdmissionController {
  readonly #o: AdmissionControllerOptions;
  readonly #core: CoreV1Api;
  readonly #certificates: CertificateManager;
  readonly #caRoot: CaRootPublisher;
  #webhook: WebhookServer | undefined;
  #unsubscribe: () => void = () => {};

  constructor(options: AdmissionControllerOptions) {
    this.#o = options;
    this.#core = options.kubeConfig.makeApiClient(CoreV1Api);
    this.#caRoot = new CaRootPublisher({ kubeConfig: options.kubeConfig, log: options.log });
    this.#certificates = new CertificateManager({
      kubeConfig: options.kubeConfig,
      namespace: options.servingSecret.namespace,
      servingSecret: options.servingSecret.name,
      manage: options.manageCertificates,
      ...(options.trustDomain === undefined ? {} : { trustDomain: options.trustDomain }),
      log: options.log,
      onRoot: (root) => this.#caRoot.setRoot(root),
      ...(options.onTrustBundle === undefined ? {} : { onTrustBundle: options.onTrustBundle }),
      ...(options.caRotateBeforeMs === undefined ? {} : { rotateBeforeMs: options.caRotateBeforeMs }),
      ...(options.workloadCertTtlMs === undefined ? {} : { workloadTtlMs: options.workloadCertTtlMs }),
      ...(options.certificateCheckMs === undefined ? {} : { checkIntervalMs: options.certificateCheckMs }),
      ...(options.now === undefined ? {} : { now: options.now }),
    });
  }

  /** The CA that signs workload certificates, null while none is usable. */
  get signingCa(): SigningCa | null {
    return this.#certificates.signingCa;
  }

  /** The workload trust bundle sidecars verify peers against, null while no CA is usable. */
  get trustBundle(): TrustBundle | null {
    return this.#certificates.trustBundle;
  }

  /** The serving certificate, created first when managed and missing; kept current from now on. */
  startCertificates(): Promise<ServingIdentity> {
    return this.#certificates.start();
  }

  /** Starts the webhook server (after startCertificates); resolves with its port, or undefined without one. */
  async startWebhook(identity: ServingIdentity): Promise<number | undefined> {
    const webhook = this.#o.webhook;
    if (!webhook) return undefined;
    const nativeSidecars = await resolveNativeSidecars(
      webhook.inject.nativeSidecars,
      this.#o.kubeConfig,
      this.#o.log,
    );
    this.#webhook = new WebhookServer({
      host: webhook.listen.host,
      port: webhook.listen.port,
      tls: identity.current,
      log: this.#o.log,
      handlers: admissionHandlers({
        inject: { ...webhook.inject, nativeSidecars },
        namespaceLabels: (ns) => this.#labels(ns),
        log: this.#o.log,
      }),
    });
    const server = this.#webhook;
    this.#unsubscribe = identity.onChange((pair) => server.setTls(pair));
    return server.start();
  }

  /** The Lease leader writes the CA root ConfigMaps and takes CA rotation steps. */
  setLeader(leading: boolean): void {
    this.#caRoot.setActive(leading);
    this.#certificates.setLeader(leading);
  }

  namespaceSeen(name: string, terminating: boolean): void {
    this.#caRoot.namespaceSeen(name, terminating);
  }

  namespaceGone(name: string): void {
    this.#caRoot.namespaceGone(name);
  }

  async stop(): Promise<void> {
    this.#certificates.stop();
    this.#caRoot.close();
    this.#unsubscribe();
    await this.#webhook?.close();
  }

  async #labels(namespace: string): Promise<Readonly<Record<string, string>>> {
    const known = this.#o.namespaceLabels(namespace);
    if (known) return known;
    try {
      return (await this.#core.readNamespace({ name: namespace })).metadata?.labels ?? {};
    } catch (error) {
      if (statusOf(error) === 404) return {};
      throw error;
    }
  }
}
