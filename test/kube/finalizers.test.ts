/**
 * Finalizers and graceful deletion through client-node: DELETE marks an
 * object with finalizers (MODIFIED, 200 with the object), nothing may add a
 * finalizer to it, the spec stays writable (generation still counts), and
 * removing the last finalizer deletes it (DELETED). Namespaces terminate the
 * same way, holding new content back.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  PatchStrategy,
  setHeaderOptions,
} from '@kubernetes/client-node';
import { apiFailure, kubeConfigFor } from './client.ts';
import { KubeTestServer } from './server.ts';
import { CRD, collectWatch, meta, obj, POLICY, policy, ROUTES, waitFor } from './testing.ts';

const MERGE = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

describe('Finalizers and graceful deletion', () => {
  let server: KubeTestServer;
  let kc: KubeConfig;
  let core: CoreV1Api;
  let custom: CustomObjectsApi;

  before(async () => {
    server = await KubeTestServer.start({ crds: [CRD] });
    kc = kubeConfigFor(server.url);
    core = kc.makeApiClient(CoreV1Api);
    custom = kc.makeApiClient(CustomObjectsApi);
    await core.createNamespace({ body: { metadata: { name: 'fin' } } });
  });
  after(async () => {
    await server.close();
  });

  test('DELETE marks an object with finalizers; removing the last one deletes it', async () => {
    const watch = await collectWatch(kc, '/api/v1/namespaces/fin/configmaps', {
      resourceVersion: server.resourceVersion,
    });
    try {
      await waitFor('the watch', () => server.watchCount > 0);
      const created = await core.createNamespacedConfigMap({
        namespace: 'fin',
        body: {
          metadata: { name: 'held', finalizers: ['tollgate.dev/cleanup', 'other.io/x'] },
          data: { a: '1' },
        },
      });
      // client-node types the answer as a V1Status, which keeps kind and resourceVersion of the object.
      const answer = obj(await core.deleteNamespacedConfigMap({ name: 'held', namespace: 'fin' }));
      assert.equal(answer.kind, 'ConfigMap', 'the object, not a Status');
      const marked = (await core.readNamespacedConfigMap({ name: 'held', namespace: 'fin' })).metadata;
      assert.equal(meta(answer).resourceVersion, marked?.resourceVersion);
      const deletionTimestamp = marked?.deletionTimestamp?.toISOString();
      assert.ok(
        deletionTimestamp !== undefined && Math.abs(Date.parse(deletionTimestamp) - Date.now()) < 5000,
      );
      assert.equal(marked?.deletionGracePeriodSeconds, 0);
      assert.ok(Number(marked?.resourceVersion) > Number(created.metadata?.resourceVersion));
      const again = obj(await core.deleteNamespacedConfigMap({ name: 'held', namespace: 'fin' }));
      assert.equal(meta(again).resourceVersion, marked?.resourceVersion, 'a second DELETE changes nothing');

      const edited = await core.patchNamespacedConfigMap(
        { name: 'held', namespace: 'fin', body: { data: { a: '2' }, metadata: { deletionTimestamp: null } } },
        MERGE,
      );
      assert.equal(edited.data?.a, '2', 'a terminating object stays writable');
      assert.equal(edited.metadata?.deletionTimestamp?.toISOString(), deletionTimestamp);

      const refused = await apiFailure(
        core.patchNamespacedConfigMap(
          {
            name: 'held',
            namespace: 'fin',
            body: { metadata: { finalizers: ['tollgate.dev/cleanup', 'z.io/new', 'a.io/new'] } },
          },
          MERGE,
        ),
      );
      assert.equal(refused.code, 422);
      assert.equal(
        refused.status.message,
        'ConfigMap "held" is invalid: metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{"a.io/new", "z.io/new"}',
      );
      assert.deepEqual(refused.status.details?.causes, [
        {
          reason: 'FieldValueForbidden',
          message:
            'Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{"a.io/new", "z.io/new"}',
          field: 'metadata.finalizers',
        },
      ]);

      const one = await core.patchNamespacedConfigMap({
        name: 'held',
        namespace: 'fin',
        body: [{ op: 'remove', path: '/metadata/finalizers/1' }],
      });
      assert.deepEqual(one.metadata?.finalizers, ['tollgate.dev/cleanup']);
      const last = await core.patchNamespacedConfigMap(
        { name: 'held', namespace: 'fin', body: { metadata: { finalizers: null } } },
        MERGE,
      );
      assert.equal(last.metadata?.finalizers, undefined, 'the response is the object as written');
      assert.equal(
        (await apiFailure(core.readNamespacedConfigMap({ name: 'held', namespace: 'fin' }))).code,
        404,
      );

      await waitFor('the DELETED event', () => watch.lines.some((l) => l.type === 'DELETED'));
      assert.deepEqual(
        watch.lines.map((l) => l.type),
        ['ADDED', 'MODIFIED', 'MODIFIED', 'MODIFIED', 'DELETED'],
      );
      const deleted = obj(watch.lines.at(-1)?.object);
      assert.deepEqual(
        meta(deleted).finalizers,
        ['tollgate.dev/cleanup'],
        'DELETED carries the last stored object',
      );
      assert.equal(meta(deleted).resourceVersion, server.resourceVersion);
    } finally {
      watch.stop();
    }
  });

  test('a custom resource: deletion bumps generation once, spec changes while terminating still count', async () => {
    const body = policy('guarded', { routes: ROUTES });
    obj(body.metadata).finalizers = ['tollgate.dev/cleanup'];
    await custom.createNamespacedCustomObject({ ...POLICY, namespace: 'fin', body });
    const marked = obj(
      await custom.deleteNamespacedCustomObject({ ...POLICY, namespace: 'fin', name: 'guarded' }),
    );
    assert.equal(meta(marked).generation, 2);
    assert.equal(meta(marked).deletionGracePeriodSeconds, 0);
    const respecced = obj(
      await custom.patchNamespacedCustomObject(
        { ...POLICY, namespace: 'fin', name: 'guarded', body: { spec: { mode: 'Audit' } } },
        MERGE,
      ),
    );
    assert.equal(meta(respecced).generation, 3);
    assert.equal(meta(respecced).deletionTimestamp, meta(marked).deletionTimestamp);
    const status = obj(
      await custom.patchNamespacedCustomObjectStatus(
        { ...POLICY, namespace: 'fin', name: 'guarded', body: { status: { observedGeneration: 3 } } },
        MERGE,
      ),
    );
    assert.equal(meta(status).generation, 3);
    await custom.patchNamespacedCustomObject({
      ...POLICY,
      namespace: 'fin',
      name: 'guarded',
      body: [{ op: 'remove', path: '/metadata/finalizers' }],
    });
    const gone = await apiFailure(
      custom.getNamespacedCustomObject({ ...POLICY, namespace: 'fin', name: 'guarded' }),
    );
    assert.equal(gone.code, 404);
  });

  test('without finalizers: pods answer the deleted object, configmaps a Success Status', async () => {
    await core.createNamespacedPod({
      namespace: 'fin',
      body: { metadata: { name: 'p' }, spec: { containers: [{ name: 'app', image: 'app:1' }] } },
    });
    const pod = await core.deleteNamespacedPod({ name: 'p', namespace: 'fin' });
    assert.equal(pod.metadata?.name, 'p');
    await core.createNamespacedConfigMap({ namespace: 'fin', body: { metadata: { name: 'plain' } } });
    const status = obj(await core.deleteNamespacedConfigMap({ name: 'plain', namespace: 'fin' }));
    assert.equal(status.kind, 'Status');
    assert.equal(status.status, 'Success');
  });

  test('a namespace terminates: new content is refused, content with finalizers holds it', async () => {
    await core.createNamespace({ body: { metadata: { name: 'doomed' } } });
    await core.createNamespacedConfigMap({
      namespace: 'doomed',
      body: { metadata: { name: 'keeper', finalizers: ['tollgate.dev/cleanup'] } },
    });
    await core.createNamespacedSecret({ namespace: 'doomed', body: { metadata: { name: 's' } } });
    const terminating = await core.deleteNamespace({ name: 'doomed' });
    assert.equal(obj(terminating).kind, 'Namespace');
    assert.equal(obj(obj(terminating).status).phase, 'Terminating');

    const refused = await apiFailure(
      core.createNamespacedConfigMap({ namespace: 'doomed', body: { metadata: { name: 'late' } } }),
    );
    assert.equal(refused.code, 403);
    assert.equal(
      refused.status.message,
      'configmaps "late" is forbidden: unable to create new content in namespace doomed because it is being terminated',
    );
    assert.deepEqual(refused.status.details?.causes, [
      {
        reason: 'NamespaceTerminating',
        message: 'namespace doomed is being terminated',
        field: 'metadata.namespace',
      },
    ]);

    const held = async (): Promise<string[]> =>
      (await core.listNamespacedConfigMap({ namespace: 'doomed' })).items.map(
        (cm) => cm.metadata?.name ?? '',
      );
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(await held(), ['keeper']);
    assert.equal((await core.listNamespacedSecret({ namespace: 'doomed' })).items.length, 0);
    assert.equal((await core.readNamespace({ name: 'doomed' })).status?.phase, 'Terminating');

    await core.patchNamespacedConfigMap(
      { name: 'keeper', namespace: 'doomed', body: { metadata: { finalizers: null } } },
      MERGE,
    );
    const deadline = Date.now() + 5000;
    let code = 200;
    while (code !== 404 && Date.now() < deadline) {
      code = await core.readNamespace({ name: 'doomed' }).then(
        () => 200,
        (error: unknown) => (error as { code: number }).code,
      );
      if (code !== 404) await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.equal(code, 404, 'the namespace goes once its content is gone');
  });
});
