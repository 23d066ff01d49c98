import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { CoreV1Api } from '@kubernetes/client-node';
import { kubeConfigFor } from '../../test/kube/client.ts';
import { KubeTestServer } from '../../test/kube/server.ts';
import { TcpProxy } from '../../test/support/tcp-proxy.ts';
import { shareDispatchers } from './shared-dispatcher.ts';

let server: KubeTestServer;
let proxy: TcpProxy;

before(async () => {
  server = await KubeTestServer.start();
  proxy = await TcpProxy.start(server.url);
});

after(async () => {
  await proxy.close();
  await server.close();
});

async function calls(api: CoreV1Api, n: number): Promise<void> {
  for (let i = 0; i < n; i++) await api.readNamespace({ name: 'default' });
}

test('client-node alone opens a connection per request; shared, 20 sequential requests use one', async () => {
  const url = proxy.url;
  const start = proxy.connections;
  await calls(kubeConfigFor(url).makeApiClient(CoreV1Api), 5);
  const unshared = proxy.connections - start;
  assert.equal(unshared, 5, 'the behaviour this module works around');
  const before = proxy.connections;
  const kc = shareDispatchers(kubeConfigFor(url));
  const api = kc.makeApiClient(CoreV1Api);
  const seen: number[] = [];
  for (let i = 0; i < 20; i++) {
    await calls(api, 1);
    seen.push(proxy.connections - before);
  }
  // Reused: the count stops growing after the first requests (undici may open a second while the first drains).
  assert.ok((seen.at(-1) ?? 0) <= 2, seen.join(','));
  assert.equal(seen.at(-1), seen[4], seen.join(','));
  // A second API client from the same KubeConfig shares the connection too.
  await calls(kc.makeApiClient(CoreV1Api), 5);
  assert.equal(proxy.connections - before, seen.at(-1));
});

test('different clusters get different dispatchers', async () => {
  const kc = shareDispatchers(kubeConfigFor(proxy.url));
  const create = (
    kc as unknown as { createDispatcher(c: unknown, o: unknown): unknown }
  ).createDispatcher.bind(kc);
  const tls = { rejectUnauthorized: false };
  const a = create({ server: 'https://a:6443' }, tls);
  assert.ok(a);
  assert.equal(create({ server: 'https://a:6443' }, tls), a);
  assert.notEqual(create({ server: 'https://b:6443' }, tls), a);
  assert.notEqual(create({ server: 'https://a:6443' }, { ...tls, ca: Buffer.from('other ca') }), a);
});
