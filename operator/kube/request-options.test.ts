/** mergePatch and withSignal on real client-node calls against the Kubernetes API test server. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CoreV1Api } from '@kubernetes/client-node';
import { apiFailure, kubeConfigFor } from '../../test/kube/client.ts';
import { KubeTestServer } from '../../test/kube/server.ts';
import { TcpProxy } from '../../test/support/tcp-proxy.ts';
import { mergePatch, statusOf, withSignal } from './request-options.ts';

describe('request options', () => {
  let server: KubeTestServer;
  let core: CoreV1Api;

  before(async () => {
    server = await KubeTestServer.start();
    core = kubeConfigFor(server.url).makeApiClient(CoreV1Api);
    await core.createNamespacedConfigMap({
      namespace: 'default',
      body: { metadata: { name: 'cm' }, data: { a: '1' } },
    });
  });
  after(async () => {
    await server.close();
  });

  test('mergePatch sends a merge patch (client-node would send JSON Patch)', async () => {
    const body = { data: { b: '2' } };
    const patched = await core.patchNamespacedConfigMap(
      { namespace: 'default', name: 'cm', body },
      mergePatch(),
    );
    assert.deepEqual(patched.data, { a: '1', b: '2' });
    const failure = await apiFailure(
      core.patchNamespacedConfigMap({ namespace: 'default', name: 'cm', body }),
    );
    assert.notEqual(failure.code, 200, 'an object body is not a JSON Patch');
  });

  test('withSignal cancels a hanging request; options compose', async () => {
    const proxy = await TcpProxy.start(server.url);
    try {
      const stalled = kubeConfigFor(proxy.url).makeApiClient(CoreV1Api);
      proxy.setMode('stall');
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 50);
      const t0 = Date.now();
      await assert.rejects(
        stalled.readNamespacedConfigMap({ namespace: 'default', name: 'cm' }, withSignal(controller.signal)),
        { name: 'AbortError' },
      );
      assert.ok(Date.now() - t0 < 2000);
      const both = withSignal(new AbortController().signal, mergePatch());
      assert.equal(both.middleware?.length, 2);
      proxy.setMode('up');
      const patched = await stalled.patchNamespacedConfigMap(
        { namespace: 'default', name: 'cm', body: { data: { c: '3' } } },
        both,
      );
      assert.equal(patched.data?.c, '3');
    } finally {
      await proxy.close();
    }
  });

  test('statusOf reads an ApiException code only', async () => {
    const missing = core.readNamespacedConfigMap({ namespace: 'default', name: 'missing' });
    const error = await missing.then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.equal(statusOf(error), 404);
    assert.equal(statusOf(Object.assign(new Error('x'), { code: 'ECONNRESET' })), undefined);
    assert.equal(statusOf(null), undefined);
  });
});
