/**
 * The operator's admission side on an empty cluster (the Kubernetes API test
 * server, driven through client-node), as the Helm chart leaves it: webhook
 * configurations without caBundle, no Secrets. The operator makes its CA and
 * serving certificate, patches the caBundles, publishes tollgate-ca-root in
 * every namespace (also one created later), serves gRPC with the certificate
 * a sidecar verifies through that ConfigMap, and answers AdmissionReviews
 * over TLS the client verifies with the caBundle, as the API server does.
 */
import assert from 'node:assert/strict';
import { request } from 'node:https';
import { after, before, describe, test } from 'node:test';
import { AdmissionregistrationV1Api, CoreV1Api, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { Operator } from '../../operator/operator.ts';
import { kubeConfigFor } from '../kube/client.ts';
import { applyJsonPatch } from '../kube/patch.ts';
import { KubeTestServer } from '../kube/server.ts';
import { CRD, policyManifest } from '../support/operator-env.ts';
import { RecordingLogger } from '../support/recording-logger.ts';
import { SimulatedSidecar } from '../support/sidecar-client.ts';

const SYSTEM = 'tollgate-system';
const SERVICE_NAME = 'tollgate-operator.tollgate-system.svc';

let kube: KubeTestServer;
let kc: KubeConfig;
let core: CoreV1Api;
let admission: AdmissionregistrationV1Api;
let operator: Operator;
let grpcPort: number;
let webhookPort: number;
const log = new RecordingLogger();

async function until<T>(what: string, read: () => Promise<T | undefined>, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const caRoot = (namespace: string) =>
  until(`tollgate-ca-root in ${namespace}`, async () => {
    const cm = await core.readNamespacedConfigMap({ namespace, name: 'tollgate-ca-root' });
    return cm.data?.['ca.crt'];
  });

async function caBundle(): Promise<string> {
  const config = await admission.readMutatingWebhookConfiguration({ name: 'tollgate-sidecar-injector' });
  return Buffer.from(config.webhooks?.[0]?.clientConfig.caBundle ?? '', 'base64').toString();
}

/** POSTs an AdmissionReview the way the API server does: TLS to the Service name, trusting the caBundle. */
async function review(path: string, req: Record<string, unknown>): Promise<Record<string, unknown>> {
  const ca = await caBundle();
  const body = JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: req });
  return new Promise((resolve, reject) => {
    const r = request(
      {
        host: '127.0.0.1',
        port: webhookPort,
        path,
        method: 'POST',
        servername: SERVICE_NAME,
        ca,
        agent: false,
        headers: { 'content-type': 'application/json' },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (c: string) => {
          text += c;
        });
        res.on('end', () => {
          if (res.statusCode !== 200) reject(new Error(`${res.statusCode}: ${text}`));
          else resolve((JSON.parse(text) as { response: Record<string, unknown> }).response);
        });
      },
    );
    r.on('error', reject);
    r.end(body);
  });
}

function webhookConfiguration(name: string, path: string) {
  return {
    metadata: {
      name: name === 'inject.tollgate.dev' ? 'tollgate-sidecar-injector' : 'tollgate-policy-validator',
    },
    webhooks: [
      {
        name,
        admissionReviewVersions: ['v1'],
        sideEffects: 'None',
        failurePolicy: 'Fail',
        timeoutSeconds: 10,
        clientConfig: { service: { name: 'tollgate-operator', namespace: SYSTEM, path, port: 9443 } },
      },
    ],
  };
}

before(async () => {
  kube = await KubeTestServer.start({ crds: [CRD] });
  kc = kubeConfigFor(kube.url);
  core = kc.makeApiClient(CoreV1Api);
  admission = kc.makeApiClient(AdmissionregistrationV1Api);
  await core.createNamespace({ body: { metadata: { name: SYSTEM } } });
  await core.createNamespace({
    body: { metadata: { name: 'shop', labels: { 'tollgate.dev/inject': 'enabled' } } },
  });
  await core.createNamespacedServiceAccount({ namespace: 'shop', body: { metadata: { name: 'orders' } } });
  await admission.createMutatingWebhookConfiguration({
    body: webhookConfiguration('inject.tollgate.dev', '/inject'),
  });
  await admission.createValidatingWebhookConfiguration({
    body: webhookConfiguration('validate.tollgate.dev', '/validate'),
  });
  operator = new Operator({
    kubeConfig: kc,
    config: {
      grpcListen: { host: '127.0.0.1', port: 0 },
      healthListen: { host: '127.0.0.1', port: 0 },
      webhookListen: { host: '127.0.0.1', port: 0 },
      servingSecret: { namespace: SYSTEM, name: 'tollgate-operator-tls' },
      namespace: SYSTEM,
      leaseName: 'tollgate-operator',
      identity: 'replica-1',
      leaseDurationMs: 2000,
      renewDeadlineMs: 1500,
      retryPeriodMs: 200,
      manageCertificates: true,
      agentImage: 'tollgate:test',
      nativeSidecars: 'auto',
    },
    log,
    version: '0.0.0-test',
  });
  const started = await operator.start();
  grpcPort = started.grpcPort;
  assert.ok(started.webhookPort);
  webhookPort = started.webhookPort;
});

after(async () => {
  await operator.stop();
  await kube.close();
});

describe('operator admission on an empty cluster', () => {
  test('creates the CA and serving Secrets and patches the caBundle of both configurations', async () => {
    const ca = await core.readNamespacedSecret({ namespace: SYSTEM, name: 'tollgate-ca' });
    const caPem = Buffer.from(ca.data?.['tls.crt'] ?? '', 'base64').toString();
    assert.match(caPem, /BEGIN CERTIFICATE/);
    await core.readNamespacedSecret({ namespace: SYSTEM, name: 'tollgate-operator-tls' });
    assert.equal(await caBundle(), caPem);
    const validator = await admission.readValidatingWebhookConfiguration({
      name: 'tollgate-policy-validator',
    });
    assert.equal(
      Buffer.from(validator.webhooks?.[0]?.clientConfig.caBundle ?? '', 'base64').toString(),
      caPem,
    );
  });

  test('tollgate-ca-root holds the CA in every namespace, also one created later', async () => {
    const ca = await caBundle();
    for (const ns of ['default', 'kube-system', SYSTEM, 'shop']) assert.equal(await caRoot(ns), ca, ns);
    await core.createNamespace({ body: { metadata: { name: 'late' } } });
    assert.equal(await caRoot('late'), ca);
  });

  test('a sidecar trusting tollgate-ca-root gets its bundle over gRPC', async () => {
    const pod = await core.createNamespacedPod({
      namespace: 'shop',
      body: {
        metadata: { name: 'orders-1', labels: { app: 'orders' } },
        spec: { serviceAccountName: 'orders', containers: [{ name: 'app', image: 'example/app:1' }] },
      },
    });
    const token = kube.issueToken({
      namespace: 'shop',
      serviceAccount: 'orders',
      pod: { name: 'orders-1', uid: pod.metadata?.uid ?? '' },
      audiences: ['tollgate'],
    });
    const sidecar = new SimulatedSidecar({
      address: `127.0.0.1:${grpcPort}`,
      ca: await caRoot('shop'),
      serverName: SERVICE_NAME,
      hello: { podName: 'orders-1', podNamespace: 'shop', token: await token },
    });
    try {
      await sidecar.waitForBundle();
    } finally {
      sidecar.close();
    }
  });

  test('/inject patches a pod of a labelled namespace with a native sidecar (Kubernetes 1.33)', async () => {
    const pod: V1Pod = {
      metadata: { generateName: 'orders-', namespace: 'shop' },
      spec: { containers: [{ name: 'app', image: 'example/app:1', ports: [{ containerPort: 8080 }] }] },
    };
    const response = await review('/inject', {
      uid: 'u-inject',
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      namespace: 'shop',
      operation: 'CREATE',
      object: pod,
    });
    assert.equal(response.uid, 'u-inject');
    assert.equal(response.patchType, 'JSONPatch');
    const patched = applyJsonPatch(
      pod,
      JSON.parse(Buffer.from(String(response.patch), 'base64').toString()),
    ) as V1Pod;
    const agent = patched.spec?.initContainers?.find((c) => c.name === 'tollgate-agent');
    assert.equal(agent?.restartPolicy, 'Always');
    assert.equal(patched.metadata?.annotations?.['tollgate.dev/injector-version'], '0.0.0-test');
  });

  test('/validate denies a semantically invalid ApiPolicy with the field path', async () => {
    const policy = policyManifest('broken', { paths: ['/a//b'] });
    const response = await review('/validate', {
      uid: 'u-validate',
      kind: { group: 'tollgate.dev', version: 'v1alpha1', kind: 'ApiPolicy' },
      resource: { group: 'tollgate.dev', version: 'v1alpha1', resource: 'apipolicies' },
      namespace: 'shop',
      name: 'broken',
      operation: 'CREATE',
      object: { ...policy, metadata: { name: 'broken', namespace: 'shop' } },
    });
    assert.equal(response.allowed, false);
    const status = response.status as { code: number; message: string };
    assert.equal(status.code, 422);
    assert.match(status.message, /spec\.routes\[0\]\.path: /);
  });
});
