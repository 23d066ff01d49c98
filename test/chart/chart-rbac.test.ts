/**
 * The chart's RBAC against what the operator really asks the API server: the
 * operator runs, configured from the args and environment of the rendered
 * Deployment (parseOperatorConfig), as the chart's ServiceAccount against the
 * Kubernetes API test server, which reports the authorization attributes of
 * every request (verb, group, resource, namespace, name: field selectors
 * included, as kube-apiserver reads them). The run covers the whole operator:
 * the CA and serving certificate (created, a foreign one replaced), caBundle
 * patches of the chart's own webhook configurations, tollgate-ca-root in every
 * namespace (one stale), leader election, informers, a sidecar's stream
 * (TokenReview, ACK annotation), status and Events, and the injector reading
 * an unknown namespace. Every request must be allowed by the rendered
 * ClusterRole and Role (rbac.ts), in the chart's default mode and in
 * cert-manager mode; and the RBAC grants nothing this run does not use,
 * except the verbs listed here with the path that needs them.
 */
import assert from 'node:assert/strict';
import { request } from 'node:https';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  AdmissionregistrationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  type V1MutatingWebhookConfiguration,
  type V1ValidatingWebhookConfiguration,
} from '@kubernetes/client-node';
import { parseOperatorConfig } from '../../operator/config.ts';
import { Operator } from '../../operator/operator.ts';
import { kubeConfigFor } from '../kube/client.ts';
import { type RequestInfo, requestInfo } from '../kube/request-info.ts';
import { KubeTestServer } from '../kube/server.ts';
import { createCa, issueCertificate } from '../support/certs.ts';
import { CRD, policyManifest } from '../support/operator-env.ts';
import { RecordingLogger, waitFor } from '../support/recording-logger.ts';
import { SimulatedSidecar } from '../support/sidecar-client.ts';
import { cleanupHelm, helmUnavailable, type Manifest, render, repoRoot } from './helm.ts';
import { find, list, obj, operatorPod } from './objects.ts';
import { authorize, type Grant, grantsOf, ruleAllows } from './rbac.ts';

const skip = helmUnavailable() ?? false;
const CUSTOM = join(repoRoot, 'test/chart/testdata/custom-values.yaml');
const OPERATOR_TOKEN = 'tollgate-operator-sa-token';

/** Granted verbs no run here reaches, each with the path that needs it. */
const NOT_EXERCISED: Record<string, string> = {
  'get pods': 'a sidecar whose Hello arrives before the pod informer saw its pod',
  'patch events': 'a repeated Event, aggregated into the first (event-recorder.test.ts)',
  'get secrets tollgate-ca':
    'cert-manager mode: read by the workload certificate signer (mTLS, issue #8); the managed mode reads it',
  'update secrets tollgate-ca': 'a staged CA rotation (operator/ca/certificate-manager.test.ts)',
};

const b64 = (text: string) => Buffer.from(text).toString('base64');

interface Run {
  requests: RequestInfo[];
  grants: Grant[];
}

/** The rendered operator's args and env, `$(VAR)` expanded as the kubelet does, listeners on loopback port 0. */
function operatorArgs(docs: Manifest[], namespace: string): { args: string[]; env: Record<string, string> } {
  const { container, args } = operatorPod(docs);
  const env: Record<string, string> = { POD_NAME: 'tollgate-operator-0', POD_NAMESPACE: namespace };
  for (const e of list(container.env).map(obj))
    if (typeof e.value === 'string') env[String(e.name)] = e.value;
  env.TOLLGATE_AGENT_REDIS_URL = 'redis://redis.shop:6379';
  const expanded = args
    .slice(1)
    .map((a) => a.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, v) => env[v] ?? m));
  const loopback = ['grpc-listen', 'health-listen', 'webhook-listen'].map((f) => `--${f}=127.0.0.1:0`);
  // Shorter leader election than the chart's 15s/10s/2s, so a renewal happens within the run.
  const timing = ['--lease-duration=2s', '--renew-deadline=1500ms', '--retry-period=200ms'];
  return { args: [...expanded, ...loopback, ...timing], env };
}

/** POSTs an AdmissionReview as the API server does: TLS to the Service name, trusting the caBundle. */
function review(
  port: number,
  ca: string,
  serverName: string,
  req: Record<string, unknown>,
): Promise<unknown> {
  const body = JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: req });
  return new Promise((resolve, reject) => {
    const r = request(
      {
        host: '127.0.0.1',
        port,
        path: '/inject',
        method: 'POST',
        servername: serverName,
        ca,
        agent: false,
        headers: { 'content-type': 'application/json' },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (c: string) => {
          text += c;
        });
        res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(text)) : reject(new Error(text))));
      },
    );
    r.on('error', reject);
    r.end(body);
  });
}

async function installChartObjects(kc: KubeConfig, docs: Manifest[], namespace: string): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
  const admission = kc.makeApiClient(AdmissionregistrationV1Api);
  await core.createNamespace({ body: { metadata: { name: namespace } } });
  for (const d of docs) {
    if (d.kind === 'MutatingWebhookConfiguration')
      await admission.createMutatingWebhookConfiguration({ body: d as V1MutatingWebhookConfiguration });
    if (d.kind === 'ValidatingWebhookConfiguration')
      await admission.createValidatingWebhookConfiguration({ body: d as V1ValidatingWebhookConfiguration });
  }
}

/** A kubernetes.io/tls Secret from another CA (managed mode: replaced) or cert-manager's (read). */
async function servingSecret(kc: KubeConfig, namespace: string): Promise<string> {
  const ca = await createCa({ commonName: 'cert-manager issued' });
  const serving = await issueCertificate(ca, {
    dnsNames: [`tollgate-operator.${namespace}.svc`],
    ipAddresses: ['127.0.0.1'],
    usages: 'server',
  });
  await kc.makeApiClient(CoreV1Api).createNamespacedSecret({
    namespace,
    body: {
      metadata: { name: 'tollgate-operator-tls' },
      type: 'kubernetes.io/tls',
      data: { 'tls.crt': b64(serving.cert), 'tls.key': b64(serving.key), 'ca.crt': b64(ca.cert) },
    },
  });
  return ca.cert;
}

/** Runs the operator as configured by `docs` through a workload; returns what it asked the API server. */
async function runOperator(docs: Manifest[], namespace: string): Promise<Run> {
  const requests: RequestInfo[] = [];
  const kube = await KubeTestServer.start({
    crds: [CRD],
    onRequest: (info, token) => {
      if (token === OPERATOR_TOKEN) requests.push(info);
    },
  });
  const admin = kubeConfigFor(kube.url);
  const core = admin.makeApiClient(CoreV1Api);
  const custom = admin.makeApiClient(CustomObjectsApi);
  const { args, env } = operatorArgs(docs, namespace);
  const config = parseOperatorConfig(args, env, '0.1.0');
  assert.ok(config);
  assert.equal(config.namespace, namespace);
  await installChartObjects(admin, docs, namespace);
  await core.createNamespace({
    body: { metadata: { name: 'shop', labels: { 'tollgate.dev/inject': 'enabled' } } },
  });
  await core.createNamespacedServiceAccount({ namespace: 'shop', body: { metadata: { name: 'orders' } } });
  await core.createNamespacedConfigMap({
    namespace: 'shop',
    body: { metadata: { name: 'tollgate-ca-root' }, data: { 'ca.crt': 'stale' } },
  });
  const foreignCa = await servingSecret(admin, namespace);

  const operator = new Operator({
    kubeConfig: kubeConfigFor(kube.url, OPERATOR_TOKEN),
    config,
    log: new RecordingLogger(),
    version: '0.1.0',
    certificateCheckMs: 200,
    ackFlushMs: 20,
  });
  try {
    const { grpcPort, webhookPort } = await operator.start();
    assert.ok(webhookPort);
    const caRoot = async (ns: string) =>
      (await core.readNamespacedConfigMap({ namespace: ns, name: 'tollgate-ca-root' })).data?.['ca.crt'];
    const serverName = `tollgate-operator.${namespace}.svc`;
    let ca = '';
    for (const deadline = Date.now() + 5000; ; ) {
      ca = (await caRoot('shop')) ?? '';
      if (ca !== 'stale' && ca !== '') break;
      assert.ok(Date.now() < deadline, 'tollgate-ca-root not published');
      await new Promise((r) => setTimeout(r, 20));
    }
    if (config.manageCertificates)
      assert.notEqual(ca, foreignCa, 'the foreign serving certificate was replaced');

    const pod = await core.createNamespacedPod({
      namespace: 'shop',
      body: {
        metadata: { name: 'orders-1', labels: { app: 'orders' } },
        spec: {
          serviceAccountName: 'orders',
          containers: [
            { name: 'app', image: 'example/orders:1' },
            { name: 'tollgate-agent', image: config.agentImage },
          ],
        },
      },
    });
    const policy = (name: string, paths: string[]) =>
      custom.createNamespacedCustomObject({
        group: 'tollgate.dev',
        version: 'v1alpha1',
        plural: 'apipolicies',
        namespace: 'shop',
        body: policyManifest(name, { selector: { app: 'orders' }, paths, port: 8080 }),
      });
    await policy('orders', ['/orders']);
    await policy('broken', ['/a//b']);
    await waitFor('the pod in the index', () => operator.index.pod('shop', 'orders-1') !== undefined);
    const sidecar = new SimulatedSidecar({
      address: `127.0.0.1:${grpcPort}`,
      ca,
      serverName,
      hello: {
        podName: 'orders-1',
        podNamespace: 'shop',
        token: await kube.issueToken({
          namespace: 'shop',
          serviceAccount: 'orders',
          pod: { name: 'orders-1', uid: pod.metadata?.uid ?? '' },
          audiences: ['tollgate'],
        }),
      },
    });
    try {
      await sidecar.waitForBundle();
      const acked = async () =>
        (await core.readNamespacedPod({ namespace: 'shop', name: 'orders-1' })).metadata?.annotations?.[
          'tollgate.dev/policy-version'
        ];
      for (const deadline = Date.now() + 5000; (await acked()) === undefined; ) {
        assert.ok(Date.now() < deadline, 'the ACK was not recorded on the pod');
        await new Promise((r) => setTimeout(r, 20));
      }
    } finally {
      sidecar.close();
    }
    // The injector reads the labels of a namespace the informer does not know (yet).
    await review(webhookPort, ca, serverName, {
      uid: 'u1',
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      namespace: 'ghost',
      operation: 'CREATE',
      object: {
        metadata: { name: 'p', namespace: 'ghost' },
        spec: { containers: [{ name: 'a', image: 'a' }] },
      },
    });
    const seen = (verb: string, resource: string) =>
      requests.some((r) => r.verb === verb && r.resource === resource);
    // Status, an Event, a Lease renewal and a certificate check (every 200 ms) before stopping.
    for (const deadline = Date.now() + 8000; ; ) {
      const done =
        seen('patch', 'apipolicies') &&
        seen('create', 'events') &&
        seen('update', 'leases') &&
        requests.filter((r) => r.resource === 'secrets' && r.verb === 'get').length > 4;
      if (done) break;
      assert.ok(Date.now() < deadline, 'the run did not reach status, Events, renewal and checks');
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    await operator.stop();
    await kube.close();
  }
  return {
    requests,
    grants: grantsOf(docs, { kind: 'ServiceAccount', name: 'tollgate-operator', namespace }),
  };
}

const describeRequest = (r: RequestInfo) =>
  r.resourceRequest
    ? `${r.verb} ${r.apiGroup || 'core'}/${r.subresource ? `${r.resource}/${r.subresource}` : r.resource}` +
      `${r.namespace ? ` in ${r.namespace}` : ''}${r.name ? ` named ${r.name}` : ''} (${r.method} ${r.url})`
    : `${r.verb} ${r.path}`;

/** `verb [group/]resource[ name]` of every granted verb no request used (name: for rules limited to names). */
function unused(run: Run): string[] {
  const out: string[] = [];
  for (const g of run.grants) {
    for (const verb of g.rule.verbs) {
      for (const resource of g.rule.resources ?? []) {
        const names = g.rule.resourceNames ?? [];
        for (const name of names.length > 0 ? names : ['']) {
          const used = run.requests.some((r) => {
            const res = r.subresource ? `${r.resource}/${r.subresource}` : r.resource;
            return (
              r.resourceRequest &&
              r.verb === verb &&
              res === resource &&
              (name === '' || r.name === name) &&
              (g.namespace === undefined || g.namespace === r.namespace) &&
              ruleAllows(g.rule, r)
            );
          });
          const group = g.rule.apiGroups?.join(',') ?? '';
          if (!used) out.push(`${verb} ${group ? `${group}/` : ''}${resource}${name ? ` ${name}` : ''}`);
        }
      }
    }
  }
  return out;
}

describe('Helm chart charts/tollgate: RBAC against the operator’s requests', { skip }, () => {
  const runs = new Map<string, Run>();

  before(async () => {
    const defaults = await render();
    runs.set('managed certificates', await runOperator(defaults, 'tollgate-system'));
    const custom = await render({
      namespace: 'security',
      args: ['-f', CUSTOM, '--api-versions', 'cert-manager.io/v1'],
    });
    assert.equal(find(custom, 'Deployment', 'tollgate-operator').metadata.namespace, 'security');
    runs.set('cert-manager', await runOperator(custom, 'security'));
  });
  after(cleanupHelm);

  for (const mode of ['managed certificates', 'cert-manager']) {
    it(`allows every request the operator makes (${mode})`, () => {
      const run = runs.get(mode);
      assert.ok(run && run.requests.length > 20, `only ${run?.requests.length} requests`);
      const refused = run.requests.filter((r) => authorize(run.grants, r) === undefined).map(describeRequest);
      assert.deepEqual([...new Set(refused)], []);
    });

    it(`lists and watches only the informers' kinds, and no Secret or ConfigMap (${mode})`, () => {
      const run = runs.get(mode);
      assert.ok(run);
      const listed = new Set(
        run.requests
          .filter((r) => r.verb === 'list' || r.verb === 'watch')
          .map((r) => `${r.verb} ${r.resource}`),
      );
      assert.deepEqual([...listed].sort(), [
        'list apipolicies',
        'list namespaces',
        'list pods',
        'list services',
        'watch apipolicies',
        'watch namespaces',
        'watch pods',
        'watch services',
      ]);
      const secrets = run.requests.filter((r) => r.resource === 'secrets');
      assert.ok(secrets.length > 0);
      for (const r of secrets) assert.ok(['get', 'create', 'update'].includes(r.verb), describeRequest(r));
    });
  }

  it('refuses what the rules do not grant (the check itself)', () => {
    const run = runs.get('managed certificates');
    assert.ok(run);
    const allowed = (method: string, url: string) =>
      authorize(run.grants, requestInfo(method, url)) !== undefined;
    const cm = '/api/v1/namespaces/shop/configmaps';
    assert.ok(allowed('GET', `${cm}/tollgate-ca-root`));
    assert.ok(!allowed('GET', `${cm}/other`), 'another name');
    assert.ok(!allowed('GET', cm), 'a list of every ConfigMap');
    assert.ok(!allowed('GET', '/api/v1/configmaps?watch=true'), 'a cluster-wide watch');
    assert.ok(!allowed('DELETE', `${cm}/tollgate-ca-root`), 'a verb not granted');
    assert.ok(allowed('PUT', '/api/v1/namespaces/tollgate-system/secrets/tollgate-operator-tls'));
    assert.ok(
      allowed('PUT', '/api/v1/namespaces/tollgate-system/secrets/tollgate-ca'),
      'a staged CA rotation rewrites the CA',
    );
    assert.ok(!allowed('PUT', '/api/v1/namespaces/tollgate-system/secrets/other'), 'another Secret');
    assert.ok(
      !allowed('GET', '/api/v1/namespaces/shop/secrets/tollgate-ca'),
      'a Secret outside its namespace',
    );
    assert.ok(!allowed('GET', '/api/v1/namespaces/tollgate-system/secrets'), 'a list of Secrets');
    assert.ok(
      !allowed(
        'GET',
        '/api/v1/namespaces/tollgate-system/secrets?watch=1&fieldSelector=metadata.name%3Dtollgate-ca',
      ),
    );
    assert.ok(allowed('GET', '/version'));
    assert.ok(!allowed('GET', '/metrics'));
    // A list of a named object is what `resourceNames` allows (kube-apiserver reads the field selector).
    const named = grantsOf(
      [
        {
          apiVersion: 'rbac.authorization.k8s.io/v1',
          kind: 'ClusterRole',
          metadata: { name: 'r' },
          rules: [{ apiGroups: [''], resources: ['configmaps'], resourceNames: ['x'], verbs: ['list'] }],
        },
        {
          apiVersion: 'rbac.authorization.k8s.io/v1',
          kind: 'ClusterRoleBinding',
          metadata: { name: 'r' },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'r' },
          subjects: [{ kind: 'ServiceAccount', name: 'sa', namespace: 'ns' }],
        },
      ],
      { kind: 'ServiceAccount', name: 'sa', namespace: 'ns' },
    );
    assert.ok(authorize(named, requestInfo('GET', '/api/v1/configmaps?fieldSelector=metadata.name%3Dx')));
    assert.ok(!authorize(named, requestInfo('GET', '/api/v1/configmaps')));
  });

  for (const mode of ['managed certificates', 'cert-manager']) {
    it(`grants nothing the operator does not use, but for paths this run does not reach (${mode})`, () => {
      const run = runs.get(mode);
      assert.ok(run);
      assert.deepEqual(
        [...new Set(unused(run))].filter((u) => NOT_EXERCISED[u] === undefined),
        [],
        'granted, never used',
      );
    });
  }
});
