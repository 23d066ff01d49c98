/**
 * requestInfo reads what kube-apiserver's RequestInfoFactory reads (table from
 * its own tests' cases), and the API test server reports it for every
 * request a client-node call makes.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CoreV1Api } from '@kubernetes/client-node';
import { kubeConfigFor } from './client.ts';
import { type RequestInfo, requestInfo } from './request-info.ts';
import { KubeTestServer } from './server.ts';

const short = (i: RequestInfo) =>
  i.resourceRequest
    ? [i.verb, i.apiGroup, i.resource, i.subresource, i.namespace, i.name].join('|')
    : `${i.verb} ${i.path}`;

describe('requestInfo', () => {
  const table: [string, string, string][] = [
    ['GET', '/api/v1/pods', 'list||pods|||'],
    ['GET', '/api/v1/pods?watch=true&resourceVersion=5', 'watch||pods|||'],
    ['GET', '/api/v1/watch/pods', 'watch||pods|||'],
    ['GET', '/api/v1/namespaces/shop/pods/p', 'get||pods||shop|p'],
    ['PATCH', '/api/v1/namespaces/shop/pods/p', 'patch||pods||shop|p'],
    ['PUT', '/api/v1/namespaces/shop/configmaps/c', 'update||configmaps||shop|c'],
    ['POST', '/api/v1/namespaces/shop/configmaps', 'create||configmaps||shop|'],
    ['DELETE', '/api/v1/namespaces/shop/configmaps', 'deletecollection||configmaps||shop|'],
    ['DELETE', '/api/v1/namespaces/shop/configmaps/c', 'delete||configmaps||shop|c'],
    [
      'GET',
      '/api/v1/configmaps?fieldSelector=metadata.name%3Dtollgate-ca-root',
      'list||configmaps|||tollgate-ca-root',
    ],
    [
      'GET',
      '/api/v1/namespaces/shop/configmaps?watch=1&fieldSelector=metadata.name%3D%3Dx',
      'watch||configmaps||shop|x',
    ],
    ['GET', '/api/v1/configmaps?fieldSelector=metadata.namespace%3Dshop', 'list||configmaps|||'],
    ['GET', '/api/v1/namespaces', 'list||namespaces|||'],
    ['GET', '/api/v1/namespaces/shop', 'get||namespaces||shop|shop'],
    ['PUT', '/api/v1/namespaces/shop/finalize', 'update||namespaces|finalize|shop|shop'],
    [
      'PATCH',
      '/apis/tollgate.dev/v1alpha1/namespaces/shop/apipolicies/p/status',
      'patch|tollgate.dev|apipolicies|status|shop|p',
    ],
    ['GET', '/apis/tollgate.dev/v1alpha1/apipolicies', 'list|tollgate.dev|apipolicies|||'],
    [
      'GET',
      '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/tollgate-sidecar-injector',
      'get|admissionregistration.k8s.io|mutatingwebhookconfigurations|||tollgate-sidecar-injector',
    ],
    ['POST', '/apis/authentication.k8s.io/v1/tokenreviews', 'create|authentication.k8s.io|tokenreviews|||'],
    ['GET', '/version', 'get /version'],
    ['GET', '/api', 'get /api'],
    ['GET', '/api/v1', 'get /api/v1'],
    ['GET', '/apis/tollgate.dev/v1alpha1', 'get /apis/tollgate.dev/v1alpha1'],
    ['GET', '/healthz', 'get /healthz'],
  ];
  for (const [method, url, want] of table)
    test(`${method} ${url}`, () => assert.equal(short(requestInfo(method, url)), want));
});

describe('KubeTestServer onRequest', () => {
  test('reports every request with its attributes', async () => {
    const seen: RequestInfo[] = [];
    const kube = await KubeTestServer.start({ onRequest: (i) => seen.push(i) });
    try {
      const core = kubeConfigFor(kube.url).makeApiClient(CoreV1Api);
      await core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'c' } } });
      await core.readNamespacedConfigMap({ namespace: 'default', name: 'c' });
      await core.listConfigMapForAllNamespaces({ fieldSelector: 'metadata.name=c' });
      assert.deepEqual(seen.map(short), [
        'create||configmaps||default|',
        'get||configmaps||default|c',
        'list||configmaps|||c',
      ]);
    } finally {
      await kube.close();
    }
  });
});
