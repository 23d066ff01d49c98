/**
 * The server's responses against real kube-apiserver responses recorded in
 * public sources (fixtures/README.md says where each comes from): verbatim
 * where the recorded values can be reproduced, otherwise the same keys, the
 * same reason and code, and the same message pattern.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { AuthenticationV1Api, CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { apiFailure, kubeConfigFor } from './client.ts';
import { KubeTestServer } from './server.ts';
import { CRD, collectWatch, fixtureJson, meta, obj, shape, waitFor } from './testing.ts';

describe('Recorded kube-apiserver responses', () => {
  let server: KubeTestServer;
  let kc: KubeConfig;
  let core: CoreV1Api;

  before(async () => {
    server = await KubeTestServer.start({ crds: [CRD] });
    kc = kubeConfigFor(server.url);
    core = kc.makeApiClient(CoreV1Api);
  });
  after(async () => {
    await server.close();
  });

  test('409 AlreadyExists, verbatim', async () => {
    const body = { metadata: { name: 'nifi-apache-configmap-opnfv06' } };
    await core.createNamespacedConfigMap({ namespace: 'default', body });
    const { code, status } = await apiFailure(core.createNamespacedConfigMap({ namespace: 'default', body }));
    assert.equal(code, 409);
    assert.deepEqual(status, fixtureJson('status-already-exists.json'));
  });

  test('a Pod BOOKMARK carries the typed zero values, verbatim but for the version', async () => {
    const watch = await collectWatch(kc, '/api/v1/namespaces/default/pods', {
      allowWatchBookmarks: true,
      resourceVersion: server.resourceVersion,
    });
    try {
      await waitFor('the watch', () => server.watchCount > 0);
      server.sendBookmarks();
      await waitFor('the bookmark', () => watch.lines.length === 1);
    } finally {
      watch.stop();
    }
    const recorded = fixtureJson('watch-bookmark-pod.json');
    meta(obj(recorded.object)).resourceVersion = server.resourceVersion;
    assert.deepEqual(watch.lines[0], recorded);
    assert.deepEqual(Object.keys(obj(watch.lines[0]?.object)), Object.keys(obj(recorded.object)));
  });

  test('a custom resource BOOKMARK is unstructured: apiVersion, kind and the version only', async () => {
    const watch = await collectWatch(kc, '/apis/tollgate.dev/v1alpha1/apipolicies', {
      allowWatchBookmarks: true,
      resourceVersion: server.resourceVersion,
    });
    try {
      await waitFor('the watch', () => server.watchCount > 0);
      server.sendBookmarks();
      await waitFor('the bookmark', () => watch.lines.length === 1);
    } finally {
      watch.stop();
    }
    const recorded = fixtureJson('watch-bookmark-custom.json');
    meta(obj(recorded.object)).resourceVersion = server.resourceVersion;
    assert.deepEqual(watch.lines[0], recorded);
  });

  test('a TokenReview for another audience: the recorded error, verbatim', async () => {
    await core.createNamespace({ body: { metadata: { name: 'ch42' } } });
    await core.createNamespacedServiceAccount({ namespace: 'ch42', body: { metadata: { name: 'robot' } } });
    const pod = await core.createNamespacedPod({
      namespace: 'ch42',
      body: {
        metadata: { name: 'outil' },
        spec: { serviceAccountName: 'robot', containers: [{ name: 'outil', image: 'netshoot' }] },
      },
    });
    const token = await server.issueToken({
      namespace: 'ch42',
      serviceAccount: 'robot',
      audiences: ['coffre'],
      pod: { name: 'outil', uid: pod.metadata?.uid ?? '' },
    });
    const auth = kc.makeApiClient(AuthenticationV1Api);
    const rejected = await auth.createTokenReview({ body: { spec: { token } } });
    const recorded = fixtureJson('tokenreview-rejected.json');
    assert.equal(rejected.kind, recorded.kind);
    assert.equal(rejected.apiVersion, recorded.apiVersion);
    assert.deepEqual({ ...rejected.status, user: { ...rejected.status?.user } }, recorded.status);

    const accepted = await auth.createTokenReview({ body: { spec: { token, audiences: ['coffre'] } } });
    const expected = obj(fixtureJson('tokenreview-authenticated.json').status);
    assert.deepEqual(shape(accepted.status), shape(expected));
    assert.deepEqual(accepted.status?.audiences, expected.audiences);
    assert.deepEqual(accepted.status?.user?.groups, obj(expected.user).groups);
  });
});
