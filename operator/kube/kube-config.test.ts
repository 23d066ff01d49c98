/**
 * loadKubeConfig: every source in precedence order, with the environment and
 * the service-account mount passed in, and one end-to-end request through a
 * loaded file against the Kubernetes API test server.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { RequestOptions } from 'node:https';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { KubeTestServer } from '../../test/kube/server.ts';
import { KubeConfigError, loadKubeConfig } from './kube-config.ts';

function kubeconfigYaml(name: string, server: string, namespace = 'default', token = 'secret'): string {
  return [
    'apiVersion: v1',
    'kind: Config',
    `current-context: ${name}`,
    'clusters:',
    `- name: ${name}`,
    '  cluster:',
    `    server: ${server}`,
    // client-node refuses plain http unless TLS verification is explicitly off.
    '    insecure-skip-tls-verify: true',
    'users:',
    `- name: ${name}-user`,
    '  user:',
    `    token: ${token}`,
    'contexts:',
    `- name: ${name}`,
    '  context:',
    `    cluster: ${name}`,
    `    user: ${name}-user`,
    `    namespace: ${namespace}`,
    '',
  ].join('\n');
}

async function authorization(kc: KubeConfig): Promise<unknown> {
  const opts: RequestOptions = { headers: {} };
  await kc.applyToHTTPSOptions(opts);
  return (opts.headers as Record<string, unknown>).Authorization;
}

describe('loadKubeConfig', () => {
  let dir: string;
  let server: KubeTestServer;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tollgate-kubeconfig-'));
    server = await KubeTestServer.start({ token: 'file-token' });
  });
  after(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function write(name: string, text: string): string {
    const file = join(dir, name);
    writeFileSync(file, text);
    return file;
  }

  function serviceAccount(namespace: string): string {
    const sa = join(dir, `sa-${namespace}`);
    mkdirSync(sa, { recursive: true });
    writeFileSync(join(sa, 'token'), 'projected-token');
    writeFileSync(join(sa, 'ca.crt'), 'not used before a request');
    writeFileSync(join(sa, 'namespace'), `${namespace}\n`);
    return sa;
  }

  test('an explicit file wins over the in-cluster environment, and works against a server', async () => {
    const file = write('explicit.yaml', kubeconfigYaml('explicit', server.url, 'shop', 'file-token'));
    const kc = loadKubeConfig({
      kubeconfig: file,
      env: { KUBERNETES_SERVICE_HOST: '10.0.0.1', KUBERNETES_SERVICE_PORT: '443', KUBECONFIG: '/nowhere' },
    });
    assert.equal(kc.getCurrentCluster()?.server, server.url);
    assert.equal(kc.getContextObject(kc.getCurrentContext())?.namespace, 'shop');
    const namespaces = await kc.makeApiClient(CoreV1Api).listNamespace();
    assert.ok(namespaces.items.some((ns) => ns.metadata?.name === 'default'));
  });

  test('in a cluster: the service host and port, the mounted CA, token and namespace', async () => {
    const sa = serviceAccount('tollgate-system');
    const kc = loadKubeConfig({
      env: { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '6443', HOME: dir },
      serviceAccountDir: sa,
    });
    const cluster = kc.getCurrentCluster();
    assert.equal(cluster?.server, 'https://10.96.0.1:6443');
    assert.equal(cluster?.caFile, join(sa, 'ca.crt'));
    assert.equal(cluster?.skipTLSVerify, false);
    assert.equal(kc.getContextObject(kc.getCurrentContext())?.namespace, 'tollgate-system');
    assert.equal(await authorization(kc), 'Bearer projected-token');
  });

  test('in a cluster: an IPv6 service host is bracketed and the port defaults to 443', () => {
    const kc = loadKubeConfig({
      env: { KUBERNETES_SERVICE_HOST: 'fd00::1' },
      serviceAccountDir: join(dir, 'no-such-mount'),
    });
    assert.equal(kc.getCurrentCluster()?.server, 'https://[fd00::1]:443');
    assert.equal(kc.getContextObject(kc.getCurrentContext())?.namespace, undefined);
  });

  test('KUBECONFIG lists files that are merged, the first current context winning', () => {
    const a = write('a.yaml', kubeconfigYaml('a', 'https://a.example:6443', 'ns-a'));
    const b = write('b.yaml', kubeconfigYaml('b', 'https://b.example:6443', 'ns-b'));
    const kc = loadKubeConfig({ env: { KUBECONFIG: `${a}${delimiter}${delimiter}${b}`, HOME: dir } });
    assert.equal(kc.getCurrentContext(), 'a');
    assert.equal(kc.getCurrentCluster()?.server, 'https://a.example:6443');
    assert.deepEqual(
      kc.getContexts().map((c) => c.name),
      ['a', 'b'],
    );
  });

  test('without KUBECONFIG, $HOME/.kube/config', () => {
    const home = join(dir, 'home');
    mkdirSync(join(home, '.kube'), { recursive: true });
    writeFileSync(join(home, '.kube', 'config'), kubeconfigYaml('home', 'https://home.example:6443'));
    const kc = loadKubeConfig({ env: { HOME: home, KUBECONFIG: '' } });
    assert.equal(kc.getCurrentCluster()?.server, 'https://home.example:6443');
  });

  test('nothing to load is an error at start-up', () => {
    assert.throws(
      () => loadKubeConfig({ env: { HOME: join(dir, 'empty-home') } }),
      (error: unknown) => error instanceof KubeConfigError && error.code === 'ERR_KUBE_CONFIG',
    );
    assert.throws(() => loadKubeConfig({ env: {} }), KubeConfigError);
  });

  test('a missing or clusterless file is an error', () => {
    assert.throws(() => loadKubeConfig({ kubeconfig: join(dir, 'missing.yaml'), env: {} }), {
      name: 'Error',
      code: 'ERR_KUBE_CONFIG',
      message: /cannot load kubeconfig .*missing\.yaml/,
    });
    const empty = write(
      'empty.yaml',
      'apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n',
    );
    assert.throws(() => loadKubeConfig({ kubeconfig: empty, env: {} }), /has no current context/);
  });
});
