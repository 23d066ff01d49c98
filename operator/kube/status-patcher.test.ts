/**
 * patchStatus against the Kubernetes API test server with the real ApiPolicy
 * CRD (and a cluster-scoped one), through client-node: status written, spec
 * and generation untouched, merge semantics, optimistic concurrency, errors.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CustomObjectsApi, type KubernetesObject } from '@kubernetes/client-node';
import { apiFailure, kubeConfigFor } from '../../test/kube/client.ts';
import { KubeTestServer } from '../../test/kube/server.ts';
import { patchStatus } from './status-patcher.ts';

const CRD = new URL('../../crds/apipolicies.tollgate.dev.yaml', import.meta.url).pathname;
const POLICY = { group: 'tollgate.dev', version: 'v1alpha1', plural: 'apipolicies' } as const;
const ROUTES = [{ name: 'get-order', methods: ['GET'], path: '/v1/orders/{id}', public: true }];

const CLUSTER_CRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: meshconfigs.test.tollgate.dev
spec:
  group: test.tollgate.dev
  scope: Cluster
  names: { kind: MeshConfig, plural: meshconfigs, singular: meshconfig, listKind: MeshConfigList }
  versions:
    - name: v1
      served: true
      storage: true
      subresources: { status: {} }
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec: { type: object, x-kubernetes-preserve-unknown-fields: true }
            status: { type: object, x-kubernetes-preserve-unknown-fields: true }
`;

interface ApiPolicy extends KubernetesObject {
  spec: Record<string, unknown>;
  status?: Record<string, unknown>;
}

const ACCEPTED = {
  type: 'Accepted',
  status: 'True',
  reason: 'Compiled',
  message: 'policy compiled',
  observedGeneration: 1,
  lastTransitionTime: '2025-06-01T12:00:00Z',
};

describe('patchStatus', () => {
  let server: KubeTestServer;
  let custom: CustomObjectsApi;
  let dir: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tollgate-crd-'));
    const clusterCrd = join(dir, 'meshconfigs.yaml');
    writeFileSync(clusterCrd, CLUSTER_CRD);
    server = await KubeTestServer.start({ crds: [CRD, clusterCrd] });
    custom = kubeConfigFor(server.url).makeApiClient(CustomObjectsApi);
  });
  after(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function createPolicy(name: string): Promise<ApiPolicy> {
    return (await custom.createNamespacedCustomObject({
      ...POLICY,
      namespace: 'default',
      body: {
        apiVersion: 'tollgate.dev/v1alpha1',
        kind: 'ApiPolicy',
        metadata: { name },
        spec: { routes: ROUTES },
      },
    })) as ApiPolicy;
  }

  test('writes status through the subresource: generation and spec unchanged', async () => {
    const created = await createPolicy('orders');
    const ref = { ...POLICY, namespace: 'default', name: 'orders' };
    const updated = await patchStatus<ApiPolicy>(custom, ref, {
      observedGeneration: 1,
      conditions: [ACCEPTED],
    });
    assert.deepEqual(updated.status, { observedGeneration: 1, conditions: [ACCEPTED] });
    assert.equal(updated.metadata?.generation, 1);
    assert.deepEqual(updated.spec, created.spec);
    assert.ok(Number(updated.metadata?.resourceVersion) > Number(created.metadata?.resourceVersion));
    const read = (await custom.getNamespacedCustomObject({ ...ref })) as ApiPolicy;
    assert.deepEqual(read.status, updated.status);
    assert.equal(read.metadata?.generation, 1);
  });

  test('merge semantics: keys merge, null removes, arrays are replaced whole', async () => {
    await createPolicy('merge');
    const ref = { ...POLICY, namespace: 'default', name: 'merge' };
    await patchStatus(custom, ref, {
      conditions: [ACCEPTED, { ...ACCEPTED, type: 'Programmed', reason: 'Pending', status: 'Unknown' }],
      policyHash: 'sha256:abc',
      workloads: { selected: 3, programmed: 1 },
    });
    const updated = await patchStatus<ApiPolicy>(custom, ref, {
      conditions: [ACCEPTED],
      policyHash: null,
      workloads: { programmed: 3 },
    });
    assert.deepEqual(updated.status, { conditions: [ACCEPTED], workloads: { selected: 3, programmed: 3 } });
  });

  test('with a resourceVersion: written when current, 409 when stale', async () => {
    const created = await createPolicy('guarded');
    const ref = { ...POLICY, namespace: 'default', name: 'guarded' };
    const rv = created.metadata?.resourceVersion ?? '';
    const first = await patchStatus<ApiPolicy>(
      custom,
      ref,
      { observedGeneration: 1 },
      { resourceVersion: rv },
    );
    assert.equal(first.status?.observedGeneration, 1);
    const stale = await apiFailure(
      patchStatus(custom, ref, { observedGeneration: 2 }, { resourceVersion: rv }),
    );
    assert.equal(stale.code, 409);
    assert.equal(stale.status.reason, 'Conflict');
  });

  test('a status the schema rejects is 422 and changes nothing; a missing object is 404', async () => {
    const created = await createPolicy('strict');
    const ref = { ...POLICY, namespace: 'default', name: 'strict' };
    const invalid = await apiFailure(
      patchStatus(custom, ref, { conditions: [{ ...ACCEPTED, status: 'Maybe' }] }),
    );
    assert.equal(invalid.code, 422);
    const read = (await custom.getNamespacedCustomObject({ ...ref })) as ApiPolicy;
    assert.equal(read.status, undefined);
    assert.deepEqual(read.spec, created.spec);
    const missing = await apiFailure(
      patchStatus(custom, { ...ref, name: 'nope' }, { observedGeneration: 1 }),
    );
    assert.equal(missing.code, 404);
  });

  test('cluster-scoped objects: no namespace in the reference', async () => {
    const group = { group: 'test.tollgate.dev', version: 'v1', plural: 'meshconfigs' };
    await custom.createClusterCustomObject({
      ...group,
      body: {
        apiVersion: 'test.tollgate.dev/v1',
        kind: 'MeshConfig',
        metadata: { name: 'mesh' },
        spec: { a: 1 },
      },
    });
    const updated = await patchStatus<ApiPolicy>(custom, { ...group, name: 'mesh' }, { ready: true });
    assert.deepEqual(updated.status, { ready: true });
    assert.deepEqual(updated.spec, { a: 1 });
    assert.equal(updated.metadata?.generation, 1);
  });
});
