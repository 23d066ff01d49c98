import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PolicyEngine } from '../../policy/engine/engine.ts';
import { podObject, policyObject } from '../../test/support/kube-objects.ts';
import {
  ACKED_VERSION_ANNOTATION,
  AGENT_CONTAINER,
  NACK_ANNOTATION,
  PolicyIndex,
  podInfo,
} from './policy-index.ts';

describe('podInfo', () => {
  it('reads labels, service account, the sidecar, termination and the ACK annotations', () => {
    const p = podInfo(
      podObject(
        'a',
        { app: 'orders' },
        { annotations: { [ACKED_VERSION_ANNOTATION]: 'sha256:1', [NACK_ANNOTATION]: 'sha256:2: bad' } },
      ),
    );
    assert.deepEqual(p, {
      namespace: 'shop',
      name: 'a',
      uid: 'uid-a',
      labels: { app: 'orders' },
      serviceAccount: 'orders',
      meshed: true,
      terminating: false,
      ackedVersion: 'sha256:1',
      nack: 'sha256:2: bad',
      ips: [],
      capture: null,
      namedPorts: {},
    });
    assert.equal(podInfo(podObject('b', {}, { meshed: false })).meshed, false);
    assert.equal(podInfo(podObject('c', {}, { deleting: true })).terminating, true);
    assert.equal(
      podInfo({ metadata: { name: 'd' }, spec: {}, status: { phase: 'Succeeded' } }).terminating,
      true,
    );
    assert.equal(
      podInfo({ metadata: { name: 'e' }, spec: { initContainers: [{ name: AGENT_CONTAINER }] } }).meshed,
      true,
    );
    assert.equal(podInfo({}).serviceAccount, 'default');
  });
});

describe('PolicyIndex', () => {
  it('compiles a loadable bundle per workload with the policies that select it', () => {
    const index = new PolicyIndex();
    index.upsertPolicy(policyObject('orders', { selector: { matchLabels: { app: 'orders' } } }));
    index.upsertPolicy(policyObject('other', { selector: { matchLabels: { app: 'other' } } }));
    index.upsertPolicy(policyObject('elsewhere', { namespace: 'prod' }));
    const pod = podInfo(podObject('a', { app: 'orders' }));
    const wb = index.bundleFor(pod);
    assert.deepEqual(
      wb.bundle.policies.map((p) => p.ref.name),
      ['orders'],
    );
    assert.equal(wb.version, wb.bundle.version);
    assert.deepEqual(JSON.parse(wb.json), wb.bundle);
    assert.equal(PolicyEngine.load(JSON.parse(wb.json)).bundle.version, wb.version);
    assert.equal(index.bundleFor(pod), wb, 'cached per workload');
    assert.equal(index.bundleFor(podInfo(podObject('x', { app: 'none' }))).bundle.policies.length, 0);
  });

  it('revalidates only on a new generation; a status-only update changes nothing', () => {
    const index = new PolicyIndex();
    assert.equal(index.upsertPolicy(policyObject('orders')), true);
    const pod = podInfo(podObject('a', {}));
    const before = index.bundleFor(pod);
    assert.equal(index.upsertPolicy({ ...policyObject('orders'), status: { observedGeneration: 1 } }), false);
    assert.equal(index.bundleFor(pod), before);
    assert.equal(index.upsertPolicy(policyObject('orders', { generation: 2, path: '/v2' })), true);
    assert.notEqual(index.bundleFor(pod).version, before.version);
    assert.equal(index.bundleFor(pod).bundle.policies[0]?.routes[0]?.path, '/v2');
  });

  it('keeps the last valid generation running when a new one is invalid', () => {
    const index = new PolicyIndex();
    index.upsertPolicy(policyObject('orders'));
    const pod = podInfo(podObject('a', {}));
    const good = index.bundleFor(pod).version;
    const bad = policyObject('orders', { generation: 2 });
    (bad.spec.routes[0] as Record<string, unknown>).path = '/a/{id}/{id}';
    index.upsertPolicy(bad);
    const record = index.policy('shop', 'orders');
    assert.equal(record?.valid, false);
    assert.equal(record?.running?.generation, 1);
    assert.ok(record?.diagnostics.some((d) => d.severity === 'error'));
    assert.equal(index.bundleFor(pod).version, good);
  });

  it('a never-valid policy runs nowhere and selects nothing', () => {
    const index = new PolicyIndex();
    const bad = policyObject('broken', { selector: { matchExpressions: 'nope' } });
    index.upsertPolicy(bad);
    index.upsertPod(podInfo(podObject('a', { app: 'x' })));
    const record = index.policy('shop', 'broken');
    assert.ok(record);
    assert.equal(record.running, null);
    assert.deepEqual(index.selectedPods(record), []);
    assert.equal(index.bundleFor(podInfo(podObject('a', {}))).bundle.policies.length, 0);
  });

  it('resolves conflicts oldest first and reports the loser', () => {
    const index = new PolicyIndex();
    index.upsertPolicy(policyObject('new', { created: '2026-02-01T00:00:00Z', path: '/new' }));
    index.upsertPolicy(policyObject('old', { created: '2026-01-01T00:00:00Z', path: '/old' }));
    index.upsertPolicy(policyObject('port', { created: '2025-12-01T00:00:00Z', port: 9090 }));
    const wb = index.bundleFor(podInfo(podObject('a', {})));
    assert.deepEqual(wb.bundle.policies.map((p) => p.ref.name).sort(), ['old', 'port']);
    assert.deepEqual(
      wb.conflicts.map((c) => [c.policy.name, c.winner.name]),
      [['new', 'old']],
    );
  });

  it('selects meshed live pods only, and forgets deleted policies and pods', () => {
    const index = new PolicyIndex();
    index.upsertPolicy(policyObject('orders', { selector: { matchLabels: { app: 'orders' } } }));
    index.upsertPod(podInfo(podObject('a', { app: 'orders' })));
    index.upsertPod(podInfo(podObject('b', { app: 'orders' }, { meshed: false })));
    index.upsertPod(podInfo(podObject('c', { app: 'orders' }, { deleting: true })));
    index.upsertPod(podInfo(podObject('d', { app: 'web' })));
    index.upsertPod(podInfo(podObject('e', { app: 'orders' }, { namespace: 'prod' })));
    const record = index.policy('shop', 'orders');
    assert.ok(record);
    assert.deepEqual(
      index.selectedPods(record).map((p) => p.name),
      ['a'],
    );
    assert.deepEqual(
      index.policiesSelecting('shop', { app: 'orders' }).map((p) => p.name),
      ['orders'],
    );
    assert.ok(index.deletePod('shop', 'a'));
    assert.deepEqual(index.selectedPods(record), []);
    const pod = podInfo(podObject('z', { app: 'orders' }));
    assert.equal(index.bundleFor(pod).bundle.policies.length, 1);
    assert.equal(index.deletePolicy('shop', 'orders'), true);
    assert.equal(index.deletePolicy('shop', 'orders'), false);
    assert.equal(index.bundleFor(pod).bundle.policies.length, 0);
  });

  it('a recreated policy (new uid) does not inherit the old running generation', () => {
    const index = new PolicyIndex();
    index.upsertPolicy(policyObject('orders', { uid: 'one' }));
    const bad = policyObject('orders', { uid: 'two' });
    (bad.spec.routes[0] as Record<string, unknown>).path = 'no-slash';
    index.upsertPolicy(bad);
    assert.equal(index.policy('shop', 'orders')?.running, null);
  });

  it('keeps namespace labels', () => {
    const index = new PolicyIndex();
    index.upsertNamespace('shop', { 'tollgate.dev/inject': 'enabled' });
    assert.deepEqual(index.namespaceLabels('shop'), { 'tollgate.dev/inject': 'enabled' });
    index.deleteNamespace('shop');
    assert.equal(index.namespaceLabels('shop'), undefined);
  });
});
