/**
 * CRD validation rules (`x-kubernetes-validations`) through client-node, on
 * a small CRD of our own (fixtures/crd-widgets.yaml) and on the ApiPolicy
 * CRD: messages, messageExpression, fieldPath, reason, transition rules and
 * their correlation, evaluation errors, blocking schema errors, ratcheting
 * after a CRD update, and CRDs whose rules do not compile.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  ApiextensionsV1Api,
  CustomObjectsApi,
  loadYaml,
  PatchStrategy,
  setHeaderOptions,
  type V1CustomResourceDefinition,
} from '@kubernetes/client-node';
import { apiFailure, kubeConfigFor } from './client.ts';
import { KubeTestServer } from './server.ts';
import type { Obj, StatusBody } from './status.ts';
import { CRD, fixture, fixtureJson, fixturePath, obj, POLICY, policy } from './testing.ts';

const WIDGET = { group: 'example.dev', version: 'v1', plural: 'widgets', namespace: 'default' } as const;
const MERGE = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

function widget(name: string, spec: Obj): Obj {
  return { apiVersion: 'example.dev/v1', kind: 'Widget', metadata: { name }, spec };
}

const GOOD = {
  minReplicas: 1,
  maxReplicas: 3,
  region: 'eu',
  ports: [{ name: 'http', port: 80, protocol: 'TCP' }],
  labels: { team: 'web' },
};

function causes(status: StatusBody): string[] {
  return (status.details?.causes ?? []).map((c) => `${c.field} ${c.reason}: ${c.message}`);
}

describe('CEL validation rules', () => {
  let server: KubeTestServer;
  let custom: CustomObjectsApi;
  let crds: ApiextensionsV1Api;

  async function refused(promise: Promise<unknown>): Promise<StatusBody> {
    const { code, status } = await apiFailure(promise);
    assert.equal(code, 422);
    assert.equal(status.reason, 'Invalid');
    return status;
  }

  before(async () => {
    server = await KubeTestServer.start({ crds: [CRD, fixturePath('crd-widgets.yaml')] });
    const kc = kubeConfigFor(server.url);
    custom = kc.makeApiClient(CustomObjectsApi);
    crds = kc.makeApiClient(ApiextensionsV1Api);
  });
  after(async () => {
    await server.close();
  });

  test('a valid object passes; the root rule reports at <nil> with its messageExpression', async () => {
    await custom.createNamespacedCustomObject({ ...WIDGET, body: widget('w-good', GOOD) });
    const status = await refused(
      custom.createNamespacedCustomObject({ ...WIDGET, body: widget('bad', GOOD) }),
    );
    assert.equal(
      status.message,
      'Widget.example.dev "bad" is invalid: <nil>: Invalid value: "object": name must start with w-, got bad',
    );
    assert.deepEqual(causes(status), [
      '<nil> FieldValueInvalid: Invalid value: "object": name must start with w-, got bad',
    ]);
  });

  test('message, default message, fieldPath, reason and map values, all in one 422', async () => {
    const status = await refused(
      custom.createNamespacedCustomObject({
        ...WIDGET,
        body: widget('w-many', {
          ...GOOD,
          minReplicas: 5,
          legacy: 'yes',
          ports: [{ name: 'http', port: 0 }],
          labels: { team: 'toolong' },
        }),
      }),
    );
    assert.deepEqual(causes(status).sort(), [
      'spec.labels[team] FieldValueInvalid: Invalid value: "string": label values are at most 5 characters',
      'spec.legacy FieldValueForbidden: Forbidden: legacy is no longer supported',
      'spec.minReplicas FieldValueInvalid: Invalid value: "object": minReplicas must not exceed maxReplicas',
      'spec.ports[0] FieldValueInvalid: Invalid value: "object": failed rule: self.port > 0',
    ]);
    assert.match(
      status.message ?? '',
      /^Widget\.example\.dev "w-many" is invalid: \[spec\.minReplicas: Invalid value: "object": minReplicas must not exceed maxReplicas, /,
    );
  });

  test('an evaluation error reports "<error> evaluating rule: <message>"', async () => {
    const status = await refused(
      custom.createNamespacedCustomObject({
        ...WIDGET,
        body: widget('w-lookup', { ...GOOD, lookup: { other: 1 } }),
      }),
    );
    assert.deepEqual(causes(status), [
      'spec.lookup FieldValueInvalid: Invalid value: "object": no such key: key evaluating rule: lookup key must be x',
    ]);
  });

  test('transition rules run on update only, on correlated values', async () => {
    await custom.createNamespacedCustomObject({
      ...WIDGET,
      body: widget('w-moving', { ...GOOD, maxReplicas: 2 }),
    });
    const patch = (spec: Obj): Promise<unknown> =>
      custom.patchNamespacedCustomObject({ ...WIDGET, name: 'w-moving', body: { spec } }, MERGE);
    assert.deepEqual(causes(await refused(patch({ maxReplicas: 1 }))), [
      'spec FieldValueInvalid: Invalid value: "object": maxReplicas may not shrink',
    ]);
    assert.deepEqual(causes(await refused(patch({ region: 'us' }))), [
      'spec.region FieldValueInvalid: Invalid value: "string": region is immutable',
    ]);
    assert.deepEqual(causes(await refused(patch({ ports: [{ name: 'http', port: 80, protocol: 'UDP' }] }))), [
      'spec.ports[0] FieldValueInvalid: Invalid value: "object": protocol of a port is immutable',
    ]);
    // A new key of the map-list has no old value, and items correlate by key, not by index.
    const moved = obj(
      await patch({
        maxReplicas: 4,
        ports: [
          { name: 'grpc', port: 90, protocol: 'UDP' },
          { name: 'http', port: 81, protocol: 'TCP' },
        ],
      }),
    );
    assert.equal(obj(moved.spec).maxReplicas, 4);
  });

  test('rules on status run through the status subresource', async () => {
    const status = await refused(
      custom.patchNamespacedCustomObjectStatus(
        { ...WIDGET, name: 'w-good', body: { status: { phase: 'Weird' } } },
        MERGE,
      ),
    );
    assert.deepEqual(causes(status), [
      'status.phase FieldValueInvalid: Invalid value: "string": unknown phase',
    ]);
    const ready = obj(
      await custom.patchNamespacedCustomObjectStatus(
        { ...WIDGET, name: 'w-good', body: { status: { phase: 'Ready' } } },
        MERGE,
      ),
    );
    assert.equal(obj(ready.status).phase, 'Ready');
  });

  test('blocking schema errors keep the rules from running, with the real <nil> cause', async () => {
    const status = await refused(
      custom.createNamespacedCustomObject({
        ...WIDGET,
        body: widget('w-typed', { ...GOOD, maxReplicas: 'many', legacy: 'yes' }),
      }),
    );
    assert.deepEqual(causes(status), [
      'spec.maxReplicas FieldValueTypeInvalid: Invalid value: "string": spec.maxReplicas in body must be of type integer: "string"',
      '<nil> FieldValueInvalid: Invalid value: "null": some validation rules were not checked because the object was invalid; correct the existing errors to complete validation',
    ]);
  });

  test('ratcheting: after a CRD update, an unchanged value that breaks a new rule is let through', async () => {
    await custom.createNamespacedCustomObject({
      ...WIDGET,
      body: widget('w-big', { ...GOOD, maxReplicas: 20 }),
    });
    await crds.patchCustomResourceDefinition({
      name: 'widgets.example.dev',
      body: [
        {
          op: 'add',
          path: '/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties/maxReplicas/x-kubernetes-validations',
          value: [{ rule: 'self <= 10', message: 'at most 10 replicas' }],
        },
      ],
    });
    const relabelled = obj(
      await custom.patchNamespacedCustomObject(
        { ...WIDGET, name: 'w-big', body: { spec: { labels: { a: 'b' } } } },
        MERGE,
      ),
    );
    assert.equal(obj(relabelled.spec).maxReplicas, 20);
    const status = await refused(
      custom.patchNamespacedCustomObject(
        { ...WIDGET, name: 'w-big', body: { spec: { maxReplicas: 30 } } },
        MERGE,
      ),
    );
    assert.deepEqual(causes(status), [
      'spec.maxReplicas FieldValueInvalid: Invalid value: "integer": at most 10 replicas',
    ]);
  });

  test('a CRD whose rule does not compile is refused', async () => {
    const crd = loadYaml<V1CustomResourceDefinition>(fixture('crd-widgets.yaml'));
    crd.metadata = { name: 'gadgets.example.dev' };
    crd.spec.names = { kind: 'Gadget', listKind: 'GadgetList', plural: 'gadgets', singular: 'gadget' };
    const root = crd.spec.versions[0]?.schema?.openAPIV3Schema;
    assert.ok(root);
    root.x_kubernetes_validations = [{ rule: 'self.metadata.name +' }];
    const status = await refused(crds.createCustomResourceDefinition({ body: crd }));
    assert.match(
      status.message ?? '',
      /^CustomResourceDefinition\.apiextensions\.k8s\.io "gadgets\.example\.dev" is invalid: spec\.versions\[0\]\.schema\.openAPIV3Schema\.x-kubernetes-validations\[0\]\.rule: Invalid value: "self\.metadata\.name \+": compilation failed: /,
    );
  });

  test('the ApiPolicy CRD: a route both public and with allow rules breaks its rule', async () => {
    const status = await refused(
      custom.createNamespacedCustomObject({
        ...POLICY,
        namespace: 'default',
        body: policy('mixed', {
          routes: [
            { name: 'list', methods: ['GET'], path: '/v1/orders', public: true, allow: [{ jwt: 'Any' }] },
          ],
        }),
      }),
    );
    const recorded = fixtureJson('status-invalid-cel.json');
    assert.deepEqual(status, recorded);
  });
});
