/**
 * The operator journey against a real cluster: runs only when KUBECONFIG is
 * set (it says so and skips otherwise). It installs the ApiPolicy CRD (if
 * missing), creates a throw-away namespace with a ServiceAccount and a pod that
 * declares a `tollgate-agent` container (pause images: nothing runs in it),
 * runs `tollgate operator` and `tollgate agent --operator` locally with a real
 * bound ServiceAccount token from the TokenRequest API, and walks apply → enforce
 * → status, edit, invalid, delete. Everything it created is deleted after.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  ApiextensionsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  type V1CustomResourceDefinition,
} from '@kubernetes/client-node';
import { parse } from 'yaml';
import { type AgentProcess, eventually, send, startAgent, startUpstream } from '../support/agent-process.ts';
import { createCa, issueCertificate } from '../support/certs.ts';
import { freePort, policyManifest } from '../support/operator-env.ts';

const KUBECONFIG = process.env.KUBECONFIG;
const skip = KUBECONFIG ? false : 'KUBECONFIG is not set: the real-cluster e2e suite is skipped';
if (skip) process.stdout.write(`# ${skip}\n`);

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const NS = `tollgate-e2e-${process.pid}`;
const API = { group: 'tollgate.dev', version: 'v1alpha1', plural: 'apipolicies', namespace: NS };

interface PolicyObject {
  status?: {
    observedGeneration?: number;
    conditions?: { type: string; status: string; reason: string; message: string }[];
  };
}

describe('operator journey on a real cluster (KUBECONFIG)', { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-e2e-'));
  const kc = new KubeConfig();
  let core: CoreV1Api;
  let custom: CustomObjectsApi;
  let operator: ChildProcess | undefined;
  let agent: AgentProcess | undefined;
  let upstream: Awaited<ReturnType<typeof startUpstream>> | undefined;

  const get = async (path: string) => (await send((agent as AgentProcess).port, path)).status;
  const cond = (p: PolicyObject, type: string) => p.status?.conditions?.find((c) => c.type === type);
  const policy = async (name: string) =>
    (await custom.getNamespacedCustomObject({ ...API, name })) as PolicyObject;

  before(async () => {
    kc.loadFromDefault();
    core = kc.makeApiClient(CoreV1Api);
    custom = kc.makeApiClient(CustomObjectsApi);
    const ext = kc.makeApiClient(ApiextensionsV1Api);
    const crd = parse(
      readFileSync(join(ROOT, 'crds/apipolicies.tollgate.dev.yaml'), 'utf8'),
    ) as V1CustomResourceDefinition;
    try {
      await ext.readCustomResourceDefinition({ name: crd.metadata?.name ?? '' });
    } catch {
      await ext.createCustomResourceDefinition({ body: crd });
      await eventually(async () => {
        const c = await ext.readCustomResourceDefinition({ name: crd.metadata?.name ?? '' });
        return c.status?.conditions?.some((x) => x.type === 'Established' && x.status === 'True') ?? false;
      }, 30_000);
    }
    await core.createNamespace({ body: { metadata: { name: NS, labels: { 'tollgate.dev/e2e': 'true' } } } });
    await core.createNamespacedServiceAccount({ namespace: NS, body: { metadata: { name: 'orders' } } });
    const ca = await createCa({ commonName: 'tollgate e2e root' });
    const serving = await issueCertificate(ca, {
      dnsNames: ['localhost'],
      ipAddresses: ['127.0.0.1'],
      usages: 'server',
    });
    await core.createNamespacedSecret({
      namespace: NS,
      body: {
        metadata: { name: 'tollgate-operator-tls' },
        type: 'kubernetes.io/tls',
        data: {
          'tls.crt': Buffer.from(serving.cert).toString('base64'),
          'tls.key': Buffer.from(serving.key).toString('base64'),
        },
      },
    });
    const pod = await core.createNamespacedPod({
      namespace: NS,
      body: {
        metadata: { name: 'orders-1', labels: { app: 'orders' } },
        spec: {
          serviceAccountName: 'orders',
          containers: [
            { name: 'app', image: 'registry.k8s.io/pause:3.10' },
            { name: 'tollgate-agent', image: 'registry.k8s.io/pause:3.10' },
          ],
        },
      },
    });
    const tokenRequest = await core.createNamespacedServiceAccountToken({
      name: 'orders',
      namespace: NS,
      body: {
        spec: {
          audiences: ['tollgate'],
          expirationSeconds: 3600,
          boundObjectRef: { kind: 'Pod', apiVersion: 'v1', name: 'orders-1', uid: pod.metadata?.uid ?? '' },
        },
      },
    });
    writeFileSync(join(dir, 'token'), tokenRequest.status?.token ?? '');
    writeFileSync(join(dir, 'ca.crt'), ca.cert);
    const [grpcPort, healthPort] = [await freePort(), await freePort()];
    operator = spawn(
      join(ROOT, 'bin/tollgate'),
      [
        'operator',
        '--kubeconfig',
        KUBECONFIG as string,
        '--grpc-listen',
        `127.0.0.1:${grpcPort}`,
        '--health-listen',
        `127.0.0.1:${healthPort}`,
        '--serving-secret',
        `${NS}/tollgate-operator-tls`,
        '--namespace',
        NS,
        '--identity',
        `e2e-${process.pid}`,
      ],
      { stdio: ['ignore', 'inherit', 'inherit'] },
    );
    await eventually(
      () =>
        fetch(`http://127.0.0.1:${healthPort}/readyz`).then(
          (r) => r.status === 200,
          () => false,
        ),
      30_000,
    );
    upstream = await startUpstream();
    agent = await startAgent(
      null,
      upstream.port,
      [
        '--operator',
        `127.0.0.1:${grpcPort}`,
        '--operator-ca',
        join(dir, 'ca.crt'),
        '--operator-server-name',
        'localhost',
        '--token-file',
        join(dir, 'token'),
        '--state-dir',
        join(dir, 'state'),
      ],
      { env: { POD_NAME: 'orders-1', POD_NAMESPACE: NS } },
    );
  });

  after(async () => {
    agent?.proc.kill('SIGKILL');
    operator?.kill('SIGKILL');
    upstream?.server.close();
    await core?.deleteNamespace({ name: NS }).catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  });

  test('apply: the agent enforces it and the policy is Accepted and Programmed (1/1)', async () => {
    await custom.createNamespacedCustomObject({
      ...API,
      body: policyManifest('orders', { selector: { app: 'orders' }, paths: ['/v1/orders'] }),
    });
    await eventually(async () => (await get('/v1/orders')) === 200, 15_000);
    assert.equal(await get('/v1/other'), 404);
    await eventually(async () => cond(await policy('orders'), 'Programmed')?.status === 'True', 15_000);
    assert.equal(cond(await policy('orders'), 'Accepted')?.status, 'True');
  });

  test('edit: the new behaviour is enforced', async () => {
    const current = (await policy('orders')) as Record<string, unknown>;
    await custom.replaceNamespacedCustomObject({
      ...API,
      name: 'orders',
      body: {
        ...current,
        spec: policyManifest('x', { selector: { app: 'orders' }, paths: ['/v2/orders'] }).spec,
      },
    });
    await eventually(async () => (await get('/v2/orders')) === 200, 5000);
  });

  test('invalid: Accepted=False with the field path; the old policy keeps running', async () => {
    const current = (await policy('orders')) as Record<string, unknown>;
    await custom.replaceNamespacedCustomObject({
      ...API,
      name: 'orders',
      body: {
        ...current,
        spec: {
          selector: { matchLabels: { app: 'orders' } },
          routes: [{ name: 'dup', path: '/v3/{id}/{id}', methods: ['GET'], public: true }],
        },
      },
    });
    await eventually(async () => cond(await policy('orders'), 'Accepted')?.reason === 'Invalid', 15_000);
    assert.match(cond(await policy('orders'), 'Accepted')?.message ?? '', /spec\.routes\[0\]\.path/);
    assert.equal(await get('/v2/orders'), 200);
  });

  test('delete: the agent falls back to deny', async () => {
    await custom.deleteNamespacedCustomObject({ ...API, name: 'orders' });
    await eventually(async () => (await get('/v2/orders')) === 403, 15_000);
  });
});
