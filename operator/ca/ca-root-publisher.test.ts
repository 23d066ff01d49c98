/**
 * CaRootPublisher against the Kubernetes API test server through client-node:
 * the ConfigMap in every namespace it is told of, only while active, updated
 * when the root changes, repaired at the resync, left alone when current.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { kubeConfigFor } from '../../test/kube/client.ts';
import { KubeTestServer } from '../../test/kube/server.ts';
import { CaRootPublisher } from './ca-root-publisher.ts';

let kube: KubeTestServer;
let kc: KubeConfig;
let core: CoreV1Api;
const NAMESPACES = ['shop', 'billing', 'default'];

async function rootIn(namespace: string): Promise<string | undefined> {
  try {
    const cm = await core.readNamespacedConfigMap({ namespace, name: 'tollgate-ca-root' });
    return cm.data?.['ca.crt'];
  } catch {
    return undefined;
  }
}

before(async () => {
  kube = await KubeTestServer.start();
  kc = kubeConfigFor(kube.url);
  core = kc.makeApiClient(CoreV1Api);
  for (const name of ['shop', 'billing']) await core.createNamespace({ body: { metadata: { name } } });
});

after(() => kube.close());

describe('CaRootPublisher', () => {
  test('writes only while active, then keeps every namespace current', async () => {
    const publisher = new CaRootPublisher({ kubeConfig: kc, resyncMs: 100 });
    try {
      publisher.setRoot('ROOT-1');
      for (const ns of NAMESPACES) publisher.namespaceSeen(ns);
      await publisher.idle();
      assert.equal(await rootIn('shop'), undefined, 'inactive: nothing written');

      publisher.setActive(true);
      await publisher.idle();
      for (const ns of NAMESPACES) assert.equal(await rootIn(ns), 'ROOT-1', ns);
      const cm = await core.readNamespacedConfigMap({ namespace: 'shop', name: 'tollgate-ca-root' });
      assert.equal(cm.metadata?.labels?.['app.kubernetes.io/managed-by'], 'tollgate-operator');

      const rv = cm.metadata?.resourceVersion;
      publisher.namespaceSeen('shop');
      publisher.setRoot('ROOT-1');
      await publisher.idle();
      const same = await core.readNamespacedConfigMap({ namespace: 'shop', name: 'tollgate-ca-root' });
      assert.equal(same.metadata?.resourceVersion, rv, 'current: not rewritten');

      publisher.setRoot('ROOT-2');
      await publisher.idle();
      for (const ns of NAMESPACES) assert.equal(await rootIn(ns), 'ROOT-2', ns);

      await core.deleteNamespacedConfigMap({ namespace: 'billing', name: 'tollgate-ca-root' });
      await core.replaceNamespacedConfigMap({
        namespace: 'shop',
        name: 'tollgate-ca-root',
        body: { metadata: { name: 'tollgate-ca-root' }, data: { 'ca.crt': 'edited' } },
      });
      const deadline = Date.now() + 5000;
      while ((await rootIn('billing')) !== 'ROOT-2' || (await rootIn('shop')) !== 'ROOT-2') {
        assert.ok(Date.now() < deadline, 'resync did not repair the ConfigMaps');
        await new Promise((r) => setTimeout(r, 20));
      }

      publisher.setActive(false);
      await core.deleteNamespacedConfigMap({ namespace: 'billing', name: 'tollgate-ca-root' });
      await new Promise((r) => setTimeout(r, 250));
      assert.equal(await rootIn('billing'), undefined, 'inactive again: no more writes');
    } finally {
      publisher.close();
    }
  });

  test('a namespace that does not exist is dropped, not retried', async () => {
    const publisher = new CaRootPublisher({ kubeConfig: kc });
    try {
      publisher.setRoot('ROOT');
      publisher.setActive(true);
      publisher.namespaceSeen('ghost');
      publisher.namespaceSeen('terminating', true);
      await publisher.idle();
      assert.equal(await rootIn('ghost'), undefined);
    } finally {
      publisher.close();
    }
  });
});
