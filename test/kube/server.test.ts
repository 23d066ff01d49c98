/**
 * The Kubernetes API test server, driven only through the real
 * `@kubernetes/client-node`: CRUD, optimistic concurrency, label selectors,
 * the ApiPolicy CRD (status subresource, generation, pruning, defaulting,
 * schema validation), informers (ADD/UPDATE/DELETE, relist after a forced
 * 410), bookmarks, and the wire shapes recorded in `fixtures/`.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  ApiextensionsV1Api,
  ApisApi,
  CoordinationV1Api,
  CoreApi,
  CoreV1Api,
  CustomObjectsApi,
  makeInformer,
  PatchStrategy,
  setHeaderOptions,
  type V1ConfigMap,
  Watch,
} from '@kubernetes/client-node';
import { apiFailure, kubeConfigFor } from './client.ts';
import { KubeTestServer } from './server.ts';
import { CRD, fixture, meta, obj, POLICY, policy, ROUTES, shape, TIME, UID, waitFor } from './testing.ts';

describe('Kubernetes API test server', () => {
  let server: KubeTestServer;
  let core: CoreV1Api;
  let custom: CustomObjectsApi;
  let coordination: CoordinationV1Api;
  let kc: ReturnType<typeof kubeConfigFor>;

  before(async () => {
    server = await KubeTestServer.start({ crds: [CRD], token: 'tollgate-test-token' });
    kc = kubeConfigFor(server.url);
    core = kc.makeApiClient(CoreV1Api);
    custom = kc.makeApiClient(CustomObjectsApi);
    coordination = kc.makeApiClient(CoordinationV1Api);
    await core.createNamespace({ body: { metadata: { name: 'shop' } } });
  });
  after(async () => {
    await server.close();
  });

  test('refuses a request without the bearer token', async () => {
    const anonymous = kubeConfigFor(server.url, 'wrong').makeApiClient(CoreV1Api);
    const { code } = await apiFailure(anonymous.listNamespace());
    assert.equal(code, 401);
  });

  test('ships the usual namespaces, labelled with their name', async () => {
    const list = await core.listNamespace({
      labelSelector: 'kubernetes.io/metadata.name in (default,kube-system)',
    });
    assert.deepEqual(
      list.items.map((n) => n.metadata?.name),
      ['default', 'kube-system'],
    );
    assert.equal(list.items[0]?.status?.phase, 'Active');
  });

  test('create, get, update, merge and JSON patch, delete a ConfigMap', async () => {
    const created = await core.createNamespacedConfigMap({
      namespace: 'shop',
      body: { metadata: { name: 'crud', labels: { app: 'orders' } }, data: { a: '1' } },
    });
    assert.match(created.metadata?.uid ?? '', UID);
    assert.match(String(created.metadata?.creationTimestamp?.toISOString()), /Z$/);
    assert.equal(created.metadata?.namespace, 'shop');
    assert.equal(created.metadata?.generation, undefined);
    const rv = Number(created.metadata?.resourceVersion);
    assert.ok(rv > 0);

    const read = await core.readNamespacedConfigMap({ name: 'crud', namespace: 'shop' });
    assert.deepEqual(read.data, { a: '1' });

    const replaced = await core.replaceNamespacedConfigMap({
      name: 'crud',
      namespace: 'shop',
      body: { ...read, data: { a: '2' } },
    });
    assert.ok(Number(replaced.metadata?.resourceVersion) > rv);
    assert.equal(replaced.metadata?.uid, created.metadata?.uid);

    const merged = await core.patchNamespacedConfigMap(
      { name: 'crud', namespace: 'shop', body: { data: { b: '3' }, metadata: { labels: { tier: 'gold' } } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    assert.deepEqual(merged.data, { a: '2', b: '3' });
    assert.deepEqual(merged.metadata?.labels, { app: 'orders', tier: 'gold' });

    const patched = await core.patchNamespacedConfigMap({
      name: 'crud',
      namespace: 'shop',
      body: [
        { op: 'test', path: '/data/a', value: '2' },
        { op: 'remove', path: '/data/b' },
        { op: 'add', path: '/data/c', value: '4' },
      ],
    });
    assert.deepEqual(patched.data, { a: '2', c: '4' });

    const failedTest = await apiFailure(
      core.patchNamespacedConfigMap({
        name: 'crud',
        namespace: 'shop',
        body: [{ op: 'test', path: '/data/a', value: 'nope' }],
      }),
    );
    assert.equal(failedTest.code, 422);

    const deleted = obj(await core.deleteNamespacedConfigMap({ name: 'crud', namespace: 'shop' }));
    assert.equal(deleted.status, 'Success');
    const gone = await apiFailure(core.readNamespacedConfigMap({ name: 'crud', namespace: 'shop' }));
    assert.equal(gone.code, 404);
    assert.deepEqual(gone.status, {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'configmaps "crud" not found',
      reason: 'NotFound',
      details: { name: 'crud', kind: 'configmaps' },
      code: 404,
    });
  });

  test('409 AlreadyExists, 404 for a missing namespace, generateName', async () => {
    await core.createNamespacedSecret({
      namespace: 'shop',
      body: { metadata: { name: 'token' }, stringData: { k: 'v' } },
    });
    const dup = await apiFailure(
      core.createNamespacedSecret({ namespace: 'shop', body: { metadata: { name: 'token' } } }),
    );
    assert.equal(dup.code, 409);
    assert.equal(dup.status.reason, 'AlreadyExists');
    assert.equal(dup.status.message, 'secrets "token" already exists');

    const noNs = await apiFailure(
      core.createNamespacedServiceAccount({ namespace: 'nowhere', body: { metadata: { name: 'sa' } } }),
    );
    assert.equal(noNs.code, 404);
    assert.equal(noNs.status.message, 'namespaces "nowhere" not found');

    const generated = await core.createNamespacedEvent({
      namespace: 'shop',
      body: {
        metadata: { generateName: 'orders.' },
        involvedObject: { kind: 'Pod', name: 'p' },
        reason: 'Tested',
      },
    });
    assert.match(generated.metadata?.name ?? '', /^orders\.[0-9a-f]{5}$/);
  });

  test('409 Conflict on an update with a stale resourceVersion, shaped like the recorded one', async () => {
    const created = await core.createNamespacedConfigMap({
      namespace: 'shop',
      body: { metadata: { name: 'settings' }, data: { mode: 'on' } },
    });
    await core.replaceNamespacedConfigMap({
      name: 'settings',
      namespace: 'shop',
      body: { ...created, data: { mode: 'off' } },
    });
    const stale = await apiFailure(
      core.replaceNamespacedConfigMap({
        name: 'settings',
        namespace: 'shop',
        body: { ...created, data: { mode: 'x' } },
      }),
    );
    assert.equal(stale.code, 409);
    // Recorded for resourcequotas "quota" (helm's test data); the same body names ours.
    const recorded = fixture('status-conflict.json')
      .replaceAll('resourcequotas', 'configmaps')
      .replaceAll('quota', 'settings');
    assert.deepEqual(stale.status, JSON.parse(recorded));

    const stalePatch = await apiFailure(
      core.patchNamespacedConfigMap(
        {
          name: 'settings',
          namespace: 'shop',
          body: { metadata: { resourceVersion: created.metadata?.resourceVersion } },
        },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      ),
    );
    assert.equal(stalePatch.code, 409);

    const staleDelete = await apiFailure(
      core.deleteNamespacedConfigMap({
        name: 'settings',
        namespace: 'shop',
        body: { preconditions: { resourceVersion: created.metadata?.resourceVersion ?? '' } },
      }),
    );
    assert.equal(staleDelete.code, 409);
  });

  test('lists by label selector: =, !=, in, notin, exists, !exists', async () => {
    const labels: Array<[string, Record<string, string>]> = [
      ['sel-a', { app: 'orders', tier: 'gold' }],
      ['sel-b', { app: 'orders', tier: 'silver' }],
      ['sel-c', { app: 'billing' }],
    ];
    for (const [name, l] of labels) {
      await core.createNamespacedPod({
        namespace: 'shop',
        body: { metadata: { name, labels: l }, spec: { containers: [{ name: 'app', image: 'app:1' }] } },
      });
    }
    const names = async (labelSelector: string): Promise<string[]> =>
      (await core.listNamespacedPod({ namespace: 'shop', labelSelector })).items.map(
        (p) => p.metadata?.name ?? '',
      );
    assert.deepEqual(await names('app=orders'), ['sel-a', 'sel-b']);
    assert.deepEqual(await names('app==orders,tier!=gold'), ['sel-b']);
    assert.deepEqual(await names('tier in (gold, silver)'), ['sel-a', 'sel-b']);
    assert.deepEqual(await names('tier notin (gold)'), ['sel-b', 'sel-c']);
    assert.deepEqual(await names('tier'), ['sel-a', 'sel-b']);
    assert.deepEqual(await names('!tier'), ['sel-c']);
    const all = await core.listPodForAllNamespaces({ labelSelector: 'app' });
    assert.equal(all.items.length, 3);
    assert.ok(Number(all.metadata?.resourceVersion) >= Number(all.items[2]?.metadata?.resourceVersion));
    const bad = await apiFailure(core.listNamespacedPod({ namespace: 'shop', labelSelector: 'a in b' }));
    assert.equal(bad.code, 400);
  });

  test('leases (coordination.k8s.io/v1)', async () => {
    const lease = await coordination.createNamespacedLease({
      namespace: 'shop',
      body: {
        metadata: { name: 'tollgate-operator' },
        spec: { holderIdentity: 'a', leaseDurationSeconds: 15 },
      },
    });
    const renewed = await coordination.replaceNamespacedLease({
      name: 'tollgate-operator',
      namespace: 'shop',
      body: { ...lease, spec: { ...lease.spec, holderIdentity: 'b' } },
    });
    assert.equal(renewed.spec?.holderIdentity, 'b');
    const stolen = await apiFailure(
      coordination.replaceNamespacedLease({ name: 'tollgate-operator', namespace: 'shop', body: lease }),
    );
    assert.equal(stolen.code, 409);
  });

  describe('ApiPolicy (from crds/)', () => {
    test('the CRD is installed and Established', async () => {
      const crds = kc.makeApiClient(ApiextensionsV1Api);
      const crd = await crds.readCustomResourceDefinition({ name: 'apipolicies.tollgate.dev' });
      assert.equal(crd.metadata?.generation, 1);
      assert.ok(crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True'));
    });

    test('defaults are applied; spec writes bump generation, status and metadata writes do not', async () => {
      const created = obj(
        await custom.createNamespacedCustomObject({
          ...POLICY,
          namespace: 'shop',
          body: { ...policy('gen', { routes: ROUTES }), status: { policyHash: 'ignored on create' } },
        }),
      );
      assert.equal(meta(created).generation, 1);
      assert.equal(obj(created.spec).mode, 'Enforce');
      assert.equal(obj(created.spec).unmatched, 'Deny');
      assert.equal(created.status, undefined);

      const status = {
        observedGeneration: 1,
        conditions: [
          { type: 'Accepted', status: 'True', reason: 'Valid', lastTransitionTime: '2026-01-01T00:00:00Z' },
        ],
      };
      const withStatus = obj(
        await custom.replaceNamespacedCustomObjectStatus({
          ...POLICY,
          namespace: 'shop',
          name: 'gen',
          body: { ...created, spec: { routes: [] }, status },
        }),
      );
      assert.equal(meta(withStatus).generation, 1);
      assert.deepEqual(withStatus.status, status);
      assert.deepEqual(obj(withStatus.spec).routes, ROUTES, 'spec is not written through /status');

      const relabelled = obj(
        await custom.patchNamespacedCustomObject(
          {
            ...POLICY,
            namespace: 'shop',
            name: 'gen',
            body: { metadata: { labels: { team: 'a' } }, status: null },
          },
          setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
        ),
      );
      assert.equal(meta(relabelled).generation, 1);
      assert.deepEqual(relabelled.status, status, 'status is not written through the main resource');

      const respecced = obj(
        await custom.patchNamespacedCustomObject(
          { ...POLICY, namespace: 'shop', name: 'gen', body: { spec: { mode: 'Audit' } } },
          setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
        ),
      );
      assert.equal(meta(respecced).generation, 2);
      assert.equal(obj(respecced.spec).mode, 'Audit');
      assert.deepEqual(respecced.status, status);

      const statusPatched = obj(
        await custom.patchNamespacedCustomObjectStatus({
          ...POLICY,
          namespace: 'shop',
          name: 'gen',
          body: [{ op: 'replace', path: '/status/observedGeneration', value: 2 }],
        }),
      );
      assert.equal(meta(statusPatched).generation, 2);
      assert.equal(obj(statusPatched.status).observedGeneration, 2);
    });

    test('422 Invalid for schema errors, shaped like the recorded one', async () => {
      const bad = await apiFailure(
        custom.createNamespacedCustomObject({
          ...POLICY,
          namespace: 'shop',
          body: policy('orders', { mode: 'Sometimes', routes: ROUTES }),
        }),
      );
      assert.equal(bad.code, 422);
      assert.deepEqual(bad.status, JSON.parse(fixture('status-invalid.json')));

      const several = await apiFailure(
        custom.createNamespacedCustomObject({
          ...POLICY,
          namespace: 'shop',
          body: policy('several', {
            port: 'http',
            rateLimits: [{ name: 'Bad_Name', limit: 0, period: '1s' }],
          }),
        }),
      );
      assert.equal(several.code, 422);
      const fields = several.status.details?.causes?.map((c) => `${c.field}: ${c.reason}`).sort();
      assert.deepEqual(fields, [
        '<nil>: FieldValueInvalid',
        'spec.port: FieldValueTypeInvalid',
        'spec.rateLimits[0].limit: FieldValueInvalid',
        'spec.rateLimits[0].name: FieldValueInvalid',
        'spec.routes: FieldValueRequired',
      ]);
      assert.match(
        several.status.message ?? '',
        /^ApiPolicy\.tollgate\.dev "several" is invalid: \[.*spec\.routes: Required value/,
      );
    });

    test('unknown fields: pruned with a warning by default, 400 under fieldValidation=Strict', async () => {
      const created = obj(
        await custom.createNamespacedCustomObject({
          ...POLICY,
          namespace: 'shop',
          body: policy('pruned', { routes: ROUTES, bogus: true }),
        }),
      );
      assert.equal(Object.hasOwn(obj(created.spec), 'bogus'), false);

      const strict = await apiFailure(
        custom.createNamespacedCustomObject({
          ...POLICY,
          namespace: 'shop',
          fieldValidation: 'Strict',
          body: policy('strict', { routes: [{ ...ROUTES[0], colour: 'red' }] }),
        }),
      );
      assert.equal(strict.code, 400);
      assert.equal(
        strict.status.message,
        'ApiPolicy in version "v1alpha1" cannot be handled as a ApiPolicy: strict decoding error: unknown field "spec.routes[0].colour"',
      );
    });
  });

  test('an informer sees ADD, UPDATE and DELETE', async () => {
    await core.createNamespace({ body: { metadata: { name: 'informed' } } });
    const informer = makeInformer(kc, '/api/v1/namespaces/informed/configmaps', () =>
      core.listNamespacedConfigMap({ namespace: 'informed' }),
    );
    const seen: string[] = [];
    informer.on('add', (cm: V1ConfigMap) => seen.push(`add ${cm.metadata?.name}`));
    informer.on('update', (cm: V1ConfigMap) => seen.push(`update ${cm.metadata?.name} ${cm.data?.v}`));
    informer.on('delete', (cm: V1ConfigMap) => seen.push(`delete ${cm.metadata?.name}`));
    await core.createNamespacedConfigMap({ namespace: 'informed', body: { metadata: { name: 'before' } } });
    await informer.start();
    try {
      await waitFor('the initial list', () => seen.includes('add before'));
      await core.createNamespacedConfigMap({
        namespace: 'informed',
        body: { metadata: { name: 'x' }, data: { v: '1' } },
      });
      await core.patchNamespacedConfigMap(
        { name: 'x', namespace: 'informed', body: { data: { v: '2' } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
      await core.deleteNamespacedConfigMap({ name: 'x', namespace: 'informed' });
      await waitFor('the delete', () => seen.includes('delete x'));
      assert.deepEqual(seen, ['add before', 'add x', 'update x 2', 'delete x']);
      assert.deepEqual(
        informer.list('informed').map((cm) => cm.metadata?.name),
        ['before'],
      );
    } finally {
      await informer.stop();
    }
  });

  test('a watch resumed from an expired resourceVersion gets 410 and the informer relists', async () => {
    const small = await KubeTestServer.start({ historyLimit: 2 });
    const skc = kubeConfigFor(small.url);
    const score = skc.makeApiClient(CoreV1Api);
    try {
      const informer = makeInformer(skc, '/api/v1/namespaces/default/configmaps', () =>
        score.listNamespacedConfigMap({ namespace: 'default' }),
      );
      const seen: string[] = [];
      let connects = 0;
      informer.on('add', (cm: V1ConfigMap) => seen.push(`add ${cm.metadata?.name}`));
      informer.on('update', (cm: V1ConfigMap) => seen.push(`update ${cm.metadata?.name}`));
      informer.on('delete', (cm: V1ConfigMap) => seen.push(`delete ${cm.metadata?.name}`));
      informer.on('connect', () => {
        connects++;
      });
      await score.createNamespacedConfigMap({
        namespace: 'default',
        body: { metadata: { name: 'keep' }, data: { v: '1' } },
      });
      await score.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'drop' } } });
      await informer.start();
      await waitFor('the initial list', () => seen.length === 2 && small.watchCount === 1);
      const lastSeen = small.resourceVersion;

      small.closeWatches({ hold: true });
      await waitFor('the informer to reconnect', () => connects === 2);
      await score.patchNamespacedConfigMap(
        { name: 'keep', namespace: 'default', body: { data: { v: '2' } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
      await score.deleteNamespacedConfigMap({ name: 'drop', namespace: 'default' });
      await score.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'new' } } });

      const expiredEvents: unknown[] = [];
      const watch = new Watch(skc);
      small.releaseWatches();
      await new Promise<void>((resolve, reject) => {
        watch
          .watch(
            '/api/v1/namespaces/default/configmaps',
            { resourceVersion: lastSeen },
            (_type, _object, line) => expiredEvents.push(line),
            () => resolve(),
          )
          .catch(reject);
      });
      const recorded = obj(JSON.parse(fixture('watch-expired.json')));
      assert.deepEqual(shape(expiredEvents), [shape(recorded)]);
      const status = obj(obj(expiredEvents[0]).object);
      assert.deepEqual({ ...status, message: '' }, { ...obj(recorded.object), message: '' });
      assert.match(String(status.message), new RegExp(`^too old resource version: ${lastSeen} \\(\\d+\\)$`));

      await waitFor('the relist', () => seen.includes('add new') && seen.includes('delete drop'), 5000);
      assert.deepEqual(seen.slice(2).sort(), ['add new', 'delete drop', 'update keep']);
      assert.deepEqual(
        informer
          .list('default')
          .map((cm) => cm.metadata?.name)
          .sort(),
        ['keep', 'new'],
      );
      assert.equal(informer.get('keep', 'default')?.data?.v, '2');
      await informer.stop();
    } finally {
      await small.close();
    }
  });

  test('watch events and bookmarks are shaped like the recorded stream', async () => {
    const lines: unknown[] = [];
    const watch = new Watch(kc);
    const controller = await watch.watch(
      '/api/v1/namespaces/shop/configmaps',
      { allowWatchBookmarks: true, resourceVersion: server.resourceVersion, labelSelector: 'app=orders' },
      (_type, _object, line) => lines.push(line),
      () => {},
    );
    try {
      await waitFor('the watch', () => server.watchCount > 0);
      await core.createNamespacedConfigMap({
        namespace: 'shop',
        body: { metadata: { name: 'watched', labels: { app: 'orders' } }, data: { mode: 'on' } },
      });
      await core.createNamespacedConfigMap({ namespace: 'shop', body: { metadata: { name: 'unselected' } } });
      await waitFor('the ADDED event', () => lines.length === 1);
      server.sendBookmarks();
      await waitFor('the bookmark', () => lines.length === 2);
    } finally {
      controller.abort();
    }
    const recorded = fixture('watch-events.ndjson')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as unknown);
    assert.deepEqual(shape(lines), shape(recorded));
    const added = meta(obj(lines[0]).object);
    assert.match(String(added.uid), UID);
    assert.match(String(added.creationTimestamp), TIME);
    assert.equal(meta(obj(lines[1]).object).resourceVersion, server.resourceVersion);
  });

  test('discovery lists the served groups and resources', async () => {
    const versions = await kc.makeApiClient(CoreApi).getAPIVersions();
    assert.deepEqual(versions.versions, ['v1']);
    const groups = await kc.makeApiClient(ApisApi).getAPIVersions();
    assert.deepEqual(groups.groups.map((g) => g.name).sort(), [
      'admissionregistration.k8s.io',
      'apiextensions.k8s.io',
      'authentication.k8s.io',
      'coordination.k8s.io',
      'tollgate.dev',
    ]);
    const resources = await custom.getAPIResources({ group: 'tollgate.dev', version: 'v1alpha1' });
    assert.deepEqual(
      resources.resources.map((r) => r.name),
      ['apipolicies', 'apipolicies/status'],
    );
  });
});
