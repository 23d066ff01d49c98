/**
 * Paged lists through client-node (`limit`, `_continue`): consistent
 * snapshots across pages, the real continue token, remainingItemCount, the
 * 410 for a compacted snapshot with its inconsistent continuation, and the
 * 400s for malformed tokens.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { apiFailure, kubeConfigFor } from './client.ts';
import { CONTINUE_EXPIRED } from './paging.ts';
import { KubeTestServer } from './server.ts';
import { CRD, fixtureJson, obj, POLICY, policy, ROUTES } from './testing.ts';

function decode(token: string | undefined): unknown {
  return JSON.parse(Buffer.from(token ?? '', 'base64url').toString('utf8'));
}

describe('List paging', () => {
  let server: KubeTestServer;
  let core: CoreV1Api;

  before(async () => {
    server = await KubeTestServer.start({ crds: [CRD] });
    core = kubeConfigFor(server.url).makeApiClient(CoreV1Api);
    for (const ns of ['paged', 'other']) await core.createNamespace({ body: { metadata: { name: ns } } });
    for (const name of ['a', 'b', 'c', 'd', 'e']) {
      await core.createNamespacedConfigMap({
        namespace: 'paged',
        body: { metadata: { name, labels: { tier: name < 'c' ? 'front' : 'back' } } },
      });
    }
    await core.createNamespacedConfigMap({ namespace: 'other', body: { metadata: { name: 'z' } } });
  });
  after(async () => {
    await server.close();
  });

  test('pages show the snapshot of the first page, whatever changes in between', async () => {
    const first = await core.listNamespacedConfigMap({ namespace: 'paged', limit: 2 });
    const rv = first.metadata?.resourceVersion;
    assert.deepEqual(
      first.items.map((cm) => cm.metadata?.name),
      ['a', 'b'],
    );
    assert.equal(first.metadata?.remainingItemCount, 3);
    assert.deepEqual(decode(first.metadata?._continue), {
      v: 'meta.k8s.io/v1',
      rv: Number(rv),
      start: 'b\u0000',
    });

    await core.deleteNamespacedConfigMap({ name: 'c', namespace: 'paged' });
    await core.createNamespacedConfigMap({ namespace: 'paged', body: { metadata: { name: 'cc' } } });
    await core.patchNamespacedConfigMap({
      name: 'd',
      namespace: 'paged',
      body: [{ op: 'add', path: '/data', value: { v: '2' } }],
    });

    const second = await core.listNamespacedConfigMap({
      namespace: 'paged',
      limit: 2,
      _continue: first.metadata?._continue ?? '',
    });
    assert.equal(second.metadata?.resourceVersion, rv);
    assert.deepEqual(
      second.items.map((cm) => [cm.metadata?.name, cm.data]),
      [
        ['c', undefined],
        ['d', undefined],
      ],
    );
    assert.equal(second.metadata?.remainingItemCount, 1);
    const last = await core.listNamespacedConfigMap({
      namespace: 'paged',
      limit: 2,
      _continue: second.metadata?._continue ?? '',
    });
    assert.deepEqual(
      last.items.map((cm) => cm.metadata?.name),
      ['e'],
    );
    assert.equal(last.metadata?._continue, undefined);
    assert.equal(last.metadata?.remainingItemCount, undefined);

    const now = await core.listNamespacedConfigMap({ namespace: 'paged' });
    assert.deepEqual(
      now.items.map((cm) => cm.metadata?.name),
      ['a', 'b', 'cc', 'd', 'e'],
    );
    assert.equal(now.metadata?._continue, undefined);
  });

  test('selectors page by matches and leave remainingItemCount unset; all-namespace keys carry the namespace', async () => {
    const front = await core.listNamespacedConfigMap({
      namespace: 'paged',
      limit: 1,
      labelSelector: 'tier=back',
    });
    assert.equal(front.items.length, 1);
    assert.equal(front.metadata?.remainingItemCount, undefined);
    assert.ok(front.metadata?._continue);
    const everywhere = await core.listConfigMapForAllNamespaces({ limit: 1 });
    assert.equal(obj(decode(everywhere.metadata?._continue)).start, 'other/z\u0000');
    const zero = await core.listNamespacedConfigMap({ namespace: 'paged', limit: 1, resourceVersion: '0' });
    assert.equal(zero.items.length, 5, 'resourceVersion=0 is served whole, as from the watch cache');
    assert.equal(zero.metadata?._continue, undefined);
  });

  test('custom resources page the same way', async () => {
    const custom = kubeConfigFor(server.url).makeApiClient(CustomObjectsApi);
    for (const name of ['p1', 'p2', 'p3']) {
      await custom.createNamespacedCustomObject({
        ...POLICY,
        namespace: 'paged',
        body: policy(name, { routes: ROUTES }),
      });
    }
    const page = obj(await custom.listNamespacedCustomObject({ ...POLICY, namespace: 'paged', limit: 2 }));
    const metadata = obj(page.metadata);
    assert.equal((page.items as unknown[]).length, 2);
    assert.equal(metadata.remainingItemCount, 1);
    const rest = obj(
      await custom.listNamespacedCustomObject({
        ...POLICY,
        namespace: 'paged',
        limit: 2,
        _continue: String(metadata.continue),
      }),
    );
    assert.deepEqual(
      (rest.items as unknown[]).map((item) => obj(obj(item).metadata).name),
      ['p3'],
    );
  });

  test('a continue token whose snapshot was compacted gets 410 Expired and an inconsistent continuation', async () => {
    const small = await KubeTestServer.start({ historyLimit: 3 });
    const score = kubeConfigFor(small.url).makeApiClient(CoreV1Api);
    try {
      for (const name of ['a', 'b', 'c'])
        await score.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name } } });
      const first = await score.listNamespacedConfigMap({ namespace: 'default', limit: 1 });
      for (const name of ['d', 'e', 'f', 'g'])
        await score.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name } } });
      const gone = await apiFailure(
        score.listNamespacedConfigMap({
          namespace: 'default',
          limit: 1,
          _continue: first.metadata?._continue ?? '',
        }),
      );
      assert.equal(gone.code, 410);
      const recorded = fixtureJson('status-continue-expired.json');
      assert.deepEqual({ ...gone.status, metadata: {} }, { ...recorded, metadata: {} });
      assert.equal(gone.status.message, CONTINUE_EXPIRED);
      const token = String(obj(gone.status.metadata).continue);
      assert.deepEqual(decode(token), { v: 'meta.k8s.io/v1', rv: -1, start: 'a\u0000' });
      const rest = await score.listNamespacedConfigMap({ namespace: 'default', limit: 10, _continue: token });
      assert.deepEqual(
        rest.items.map((cm) => cm.metadata?.name),
        ['b', 'c', 'd', 'e', 'f', 'g'],
      );
      assert.equal(rest.metadata?.resourceVersion, small.resourceVersion);
    } finally {
      await small.close();
    }
  });

  test('malformed tokens and tokens with a resourceVersion are 400 BadRequest', async () => {
    const garbage = await apiFailure(
      core.listNamespacedConfigMap({ namespace: 'paged', limit: 1, _continue: 'not+base64!' }),
    );
    assert.equal(garbage.code, 400);
    assert.match(garbage.status.message ?? '', /^invalid continue token: continue key is not valid/);
    const noRv = Buffer.from(JSON.stringify({ v: 'meta.k8s.io/v1', rv: 0, start: 'a\u0000' })).toString(
      'base64url',
    );
    const zero = await apiFailure(
      core.listNamespacedConfigMap({ namespace: 'paged', limit: 1, _continue: noRv }),
    );
    assert.equal(
      zero.status.message,
      'invalid continue token: continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)',
    );
    const first = await core.listNamespacedConfigMap({ namespace: 'paged', limit: 1 });
    const withRv = await apiFailure(
      core.listNamespacedConfigMap({
        namespace: 'paged',
        limit: 1,
        _continue: first.metadata?._continue ?? '',
        resourceVersion: '5',
      }),
    );
    assert.equal(withRv.code, 400);
    assert.equal(withRv.status.message, 'specifying resource version is not allowed when using continue');
  });
});
