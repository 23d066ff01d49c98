/**
 * ResilientInformer against the Kubernetes API test server through
 * client-node: events and cache, label selectors, watches the server ends, a
 * resourceVersion expired while disconnected (relist with the missed
 * deletions), and a broken or unreachable API (restart with backoff, then
 * convergence), with a TCP proxy standing in for the network.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import {
  CoreV1Api,
  type KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  type V1ConfigMap,
  type V1Namespace,
} from '@kubernetes/client-node';
import { kubeConfigFor } from '../../test/kube/client.ts';
import { KubeTestServer } from '../../test/kube/server.ts';
import { RecordingLogger, waitFor } from '../../test/support/recording-logger.ts';
import { TcpProxy } from '../../test/support/tcp-proxy.ts';
import { ResilientInformer, type ResilientInformerOptions } from './informer.ts';

const MERGE = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

/** An informer over one namespace's ConfigMaps that records what it reports as `add x`, `update x old→new`, `delete x`. */
function configMapInformer(
  kc: KubeConfig,
  namespace: string,
  extra: Partial<ResilientInformerOptions<V1ConfigMap>> = {},
): { informer: ResilientInformer<V1ConfigMap>; seen: string[]; log: RecordingLogger } {
  const core = kc.makeApiClient(CoreV1Api);
  const seen: string[] = [];
  const log = new RecordingLogger();
  const informer = new ResilientInformer<V1ConfigMap>({
    kubeConfig: kc,
    path: `/api/v1/namespaces/${namespace}/configmaps`,
    list: (query) => core.listNamespacedConfigMap({ namespace, ...query }),
    onAdd: (cm) => seen.push(`add ${cm.metadata?.name}`),
    onUpdate: (cm, old) => seen.push(`update ${cm.metadata?.name} ${old.data?.v}→${cm.data?.v}`),
    onDelete: (cm) => seen.push(`delete ${cm.metadata?.name}`),
    backoff: { initialMs: 20, maxMs: 200 },
    random: () => 0.5,
    log,
    ...extra,
  });
  return { informer, seen, log };
}

function names(objects: readonly { metadata?: { name?: string } }[]): string[] {
  return objects.map((o) => o.metadata?.name ?? '').sort();
}

describe('ResilientInformer', () => {
  let server: KubeTestServer;
  let core: CoreV1Api;
  const cleanup: Array<() => Promise<void>> = [];

  before(async () => {
    server = await KubeTestServer.start();
    core = kubeConfigFor(server.url).makeApiClient(CoreV1Api);
  });
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step();
  });
  after(async () => {
    await server.close();
  });

  async function namespace(name: string): Promise<void> {
    await core.createNamespace({ body: { metadata: { name } } });
  }

  function cm(name: string, v: string, labels?: Record<string, string>): V1ConfigMap {
    return { metadata: { name, ...(labels === undefined ? {} : { labels }) }, data: { v } };
  }

  test('start resolves with the cache loaded; adds, updates (with the old object) and deletes arrive', async () => {
    await namespace('events');
    await core.createNamespacedConfigMap({ namespace: 'events', body: cm('before', '1') });
    const { informer, seen } = configMapInformer(kubeConfigFor(server.url), 'events');
    cleanup.push(() => informer.stop());
    assert.equal(informer.hasSynced, false);
    await informer.start();
    assert.equal(informer.hasSynced, true);
    assert.deepEqual(seen, ['add before']);
    assert.equal(informer.get('events', 'before')?.kind, 'ConfigMap', 'list items get their kind');

    await core.createNamespacedConfigMap({ namespace: 'events', body: cm('x', '1') });
    await core.patchNamespacedConfigMap(
      { name: 'x', namespace: 'events', body: { data: { v: '2' } } },
      MERGE,
    );
    await core.deleteNamespacedConfigMap({ name: 'before', namespace: 'events' });
    await waitFor('the delete', () => seen.includes('delete before'));
    assert.deepEqual(seen, ['add before', 'add x', 'update x 1→2', 'delete before']);
    assert.deepEqual(names(informer.list()), ['x']);
    assert.deepEqual(names(informer.list('events')), ['x']);
    assert.deepEqual(informer.list('elsewhere'), []);
    assert.equal(informer.get('events', 'x')?.data?.v, '2');
    assert.equal(informer.get('events', 'before'), undefined);
  });

  test('a label selector applies to the list and the watch; a throwing handler is logged, not fatal', async () => {
    await namespace('labels');
    await core.createNamespacedConfigMap({ namespace: 'labels', body: cm('in', '1', { app: 'a' }) });
    await core.createNamespacedConfigMap({ namespace: 'labels', body: cm('out', '1', { app: 'b' }) });
    let calls = 0;
    const { informer, log } = configMapInformer(kubeConfigFor(server.url), 'labels', {
      labelSelector: 'app=a',
      onAdd: () => {
        calls++;
        throw new Error('handler bug');
      },
    });
    cleanup.push(() => informer.stop());
    await informer.start();
    assert.deepEqual(names(informer.list()), ['in']);
    await core.createNamespacedConfigMap({ namespace: 'labels', body: cm('later', '1', { app: 'a' }) });
    await core.createNamespacedConfigMap({ namespace: 'labels', body: cm('other', '1', { app: 'b' }) });
    await waitFor('the second add', () => calls === 2);
    assert.deepEqual(names(informer.list()), ['in', 'later']);
    const failures = log.messages('informer handler failed');
    assert.equal(failures.length, 2);
    assert.deepEqual(failures[0]?.fields, {
      informer: '/api/v1/namespaces/labels/configmaps',
      event: 'add',
      object: 'labels/in',
      err: 'Error: handler bug',
    });
  });

  test('cluster-scoped objects: get with no namespace', async () => {
    const kc = kubeConfigFor(server.url);
    const api = kc.makeApiClient(CoreV1Api);
    const added: string[] = [];
    const informer = new ResilientInformer<V1Namespace>({
      kubeConfig: kc,
      path: '/api/v1/namespaces',
      labelSelector: 'team=payments',
      list: (query) => api.listNamespace(query),
      onAdd: (ns) => added.push(ns.metadata?.name ?? ''),
    });
    cleanup.push(() => informer.stop());
    await core.createNamespace({ body: { metadata: { name: 'pay-1', labels: { team: 'payments' } } } });
    await informer.start();
    await core.createNamespace({ body: { metadata: { name: 'pay-2', labels: { team: 'payments' } } } });
    await waitFor('pay-2', () => added.includes('pay-2'));
    assert.deepEqual(added, ['pay-1', 'pay-2']);
    assert.equal(informer.get(undefined, 'pay-1')?.metadata?.name, 'pay-1');
    assert.equal(informer.get('', 'pay-2')?.kind, 'Namespace');
    assert.equal(informer.get(undefined, 'default'), undefined);
  });

  test('watches the server ends are resumed without losing events', async () => {
    await namespace('resume');
    const { informer, seen, log } = configMapInformer(kubeConfigFor(server.url), 'resume');
    cleanup.push(() => informer.stop());
    await informer.start();
    for (let i = 0; i < 3; i++) {
      server.closeWatches();
      await core.createNamespacedConfigMap({ namespace: 'resume', body: cm(`cm-${i}`, '1') });
      await waitFor(`cm-${i}`, () => seen.includes(`add cm-${i}`));
    }
    assert.deepEqual(seen, ['add cm-0', 'add cm-1', 'add cm-2']);
    assert.equal(log.messages('informer restarting').length, 0, 'a closed watch is not an error');
  });

  test('a resourceVersion expired while disconnected: relist, with the missed update and deletion', async () => {
    const small = await KubeTestServer.start({ historyLimit: 3 });
    cleanup.push(() => small.close());
    const kc = kubeConfigFor(small.url);
    const api = kc.makeApiClient(CoreV1Api);
    await api.createNamespacedConfigMap({ namespace: 'default', body: cm('keep', '1') });
    await api.createNamespacedConfigMap({ namespace: 'default', body: cm('drop', '1') });
    const { informer, seen, log } = configMapInformer(kc, 'default', { delay: async () => {} });
    cleanup.push(() => informer.stop());
    await informer.start();
    await waitFor('the watch', () => small.watchCount === 1);

    small.closeWatches({ hold: true });
    await api.patchNamespacedConfigMap(
      { name: 'keep', namespace: 'default', body: { data: { v: '2' } } },
      MERGE,
    );
    await api.deleteNamespacedConfigMap({ name: 'drop', namespace: 'default' });
    for (let i = 0; i < 5; i++) {
      await api.createNamespacedConfigMap({ namespace: 'default', body: cm(`new-${i}`, '1') });
    }
    small.releaseWatches();

    await waitFor('the relist', () => seen.includes('delete drop') && seen.includes('add new-4'));
    assert.deepEqual(seen.slice(0, 2), ['add drop', 'add keep'], 'the list comes sorted by name');
    assert.deepEqual(seen.slice(2).sort(), [
      'add new-0',
      'add new-1',
      'add new-2',
      'add new-3',
      'add new-4',
      'delete drop',
      'update keep 1→2',
    ]);
    assert.deepEqual(names(informer.list()), ['keep', 'new-0', 'new-1', 'new-2', 'new-3', 'new-4']);
    assert.equal(log.messages('watch expired, relisting').length, 1);
    assert.equal(log.messages('informer restarting').length, 0, '410 is handled by a relist, not a restart');

    await api.deleteNamespacedConfigMap({ name: 'keep', namespace: 'default' });
    await waitFor('the watch after the relist', () => seen.includes('delete keep'));
  });

  for (const mode of ['reset', 'http500'] as const) {
    test(`an API that ${mode === 'reset' ? 'is unreachable' : 'answers 500'}: restarts with backoff, then converges`, async () => {
      const small = await KubeTestServer.start({ historyLimit: 4 });
      const proxy = await TcpProxy.start(small.url);
      cleanup.push(
        () => small.close(),
        () => proxy.close(),
      );
      const direct = kubeConfigFor(small.url).makeApiClient(CoreV1Api);
      for (const name of ['a', 'b', 'c']) {
        await direct.createNamespacedConfigMap({ namespace: 'default', body: cm(name, '1') });
      }
      const { informer, seen, log } = configMapInformer(kubeConfigFor(proxy.url), 'default');
      cleanup.push(() => informer.stop());
      await informer.start();
      assert.deepEqual(seen, ['add a', 'add b', 'add c']);

      proxy.setMode(mode);
      await waitFor('three restarts', () => log.messages('informer restarting').length >= 3);
      await direct.deleteNamespacedConfigMap({ name: 'a', namespace: 'default' });
      await direct.patchNamespacedConfigMap(
        { name: 'b', namespace: 'default', body: { data: { v: '2' } } },
        MERGE,
      );
      for (const name of ['d', 'e', 'f', 'g']) {
        await direct.createNamespacedConfigMap({ namespace: 'default', body: cm(name, '1') });
      }
      assert.deepEqual(names(informer.list()), ['a', 'b', 'c'], 'the cache keeps the last known state');
      proxy.setMode('up');

      await waitFor('convergence', () => names(informer.list()).join() === 'b,c,d,e,f,g', 10_000);
      assert.deepEqual(seen.slice(3).sort(), [
        'add d',
        'add e',
        'add f',
        'add g',
        'delete a',
        'update b 1→2',
      ]);
      const restarts = log.messages('informer restarting');
      const delays = restarts.map((entry) => entry.fields.delayMs);
      // random() = 0.5 puts each delay at 3/4 of the base: 20 ms doubling, capped at 200 ms.
      assert.deepEqual(delays.slice(0, 5), [15, 30, 60, 120, 150].slice(0, Math.min(5, delays.length)));
      assert.deepEqual(
        restarts.map((entry) => entry.fields.attempt),
        restarts.map((_, i) => i + 1),
      );
      assert.equal(typeof restarts[0]?.fields.err, 'string');
      if (mode === 'http500') assert.ok(restarts.some((entry) => entry.fields.code === 500));
      await waitFor('the recovery log', () => log.messages('informer recovered').length === 1);

      await direct.deleteNamespacedConfigMap({ name: 'g', namespace: 'default' });
      await waitFor('the watch after recovery', () => seen.includes('delete g'));
    });
  }

  test('stop before the API ever answered: start resolves, nothing keeps running', async () => {
    const small = await KubeTestServer.start();
    const proxy = await TcpProxy.start(small.url);
    cleanup.push(
      () => small.close(),
      () => proxy.close(),
    );
    proxy.setMode('reset');
    const { informer, log } = configMapInformer(kubeConfigFor(proxy.url), 'default');
    const started = informer.start();
    await waitFor('a restart', () => log.messages('informer restarting').length >= 1);
    await informer.stop();
    await started;
    assert.equal(informer.hasSynced, false);
    const connections = proxy.connections;
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(proxy.connections, connections, 'no retry after stop');
    await informer.stop();
    assert.equal(informer.start(), informer.start(), 'start after stop does nothing');
  });

  test('stop while the watch connection is held does not wait for it', async () => {
    const small = await KubeTestServer.start();
    cleanup.push(() => small.close());
    small.closeWatches({ hold: true });
    const { informer } = configMapInformer(kubeConfigFor(small.url), 'default');
    const started = informer.start();
    await new Promise((resolve) => setTimeout(resolve, 200));
    const t0 = Date.now();
    await informer.stop();
    await started;
    assert.ok(Date.now() - t0 < 1000);
    small.releaseWatches();
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(small.watchCount, 0, 'the late connection is dropped');
  });
});
