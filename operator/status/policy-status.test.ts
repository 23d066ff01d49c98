import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { podObject, policyObject } from '../../test/support/kube-objects.ts';
import { PolicyIndex, podInfo } from '../index/policy-index.ts';
import {
  type AckState,
  annotatedAck,
  computeStatus,
  parseNack,
  sameStatus,
  withTransitionTimes,
} from './policy-status.ts';

const none = (): AckState => ({ version: '', nack: null });

function setup() {
  const index = new PolicyIndex();
  index.upsertPolicy(policyObject('orders', { selector: { matchLabels: { app: 'orders' } } }));
  for (const name of ['a', 'b']) index.upsertPod(podInfo(podObject(name, { app: 'orders' })));
  const record = index.policy('shop', 'orders');
  assert.ok(record);
  const version = index.bundleFor({ namespace: 'shop', labels: { app: 'orders' } }).version;
  return { index, record, version };
}

function condition(status: ReturnType<typeof computeStatus>['status'], type: string) {
  return status.conditions.find((c) => c.type === type);
}

describe('computeStatus', () => {
  it('Accepted/Valid and Programmed/AllSynced once every selected sidecar ACKed', () => {
    const { index, record, version } = setup();
    const { status } = computeStatus(index, record, () => ({ version, nack: null }));
    assert.equal(condition(status, 'Accepted')?.status, 'True');
    assert.equal(condition(status, 'Accepted')?.reason, 'Valid');
    assert.equal(condition(status, 'Programmed')?.status, 'True');
    assert.equal(condition(status, 'Programmed')?.reason, 'AllSynced');
    assert.deepEqual(status.workloads, { selected: 2, programmed: 2 });
    assert.equal(status.observedGeneration, 1);
    assert.equal(status.policyHash, record.running?.compiled.hash);
    assert.match(status.policyHash ?? '', /^sha256:[0-9a-f]{64}$/);
  });

  it('Pending while some sidecars run an older bundle', () => {
    const { index, record, version } = setup();
    const { status } = computeStatus(index, record, (pod) =>
      pod.name === 'a' ? { version, nack: null } : none(),
    );
    assert.equal(condition(status, 'Programmed')?.reason, 'Pending');
    assert.equal(condition(status, 'Programmed')?.message, '1 of 2 selected sidecars run generation 1');
    assert.deepEqual(status.workloads, { selected: 2, programmed: 1 });
  });

  it('Rejected with the NACK text when a sidecar refused the bundle', () => {
    const { index, record, version } = setup();
    const r = computeStatus(index, record, (pod) =>
      pod.name === 'b'
        ? { version: 'sha256:old', nack: { version, error: 'boom' } }
        : { version, nack: null },
    );
    assert.equal(condition(r.status, 'Programmed')?.reason, 'Rejected');
    assert.match(condition(r.status, 'Programmed')?.message ?? '', /shop\/b rejected sha256:[0-9a-f]+: boom/);
    assert.deepEqual(r.rejections, [{ pod: 'shop/b', version, error: 'boom' }]);
  });

  it('NoWorkloads when nothing is selected', () => {
    const index = new PolicyIndex();
    index.upsertPolicy(policyObject('orders'));
    const record = index.policy('shop', 'orders');
    assert.ok(record);
    const { status } = computeStatus(index, record, none);
    assert.equal(condition(status, 'Programmed')?.reason, 'NoWorkloads');
    assert.deepEqual(status.workloads, { selected: 0, programmed: 0 });
  });

  it('Invalid with the field path and message; the previous generation keeps running', () => {
    const { index, version } = setup();
    const bad = policyObject('orders', { generation: 2, selector: { matchLabels: { app: 'orders' } } });
    (bad.spec.routes[0] as Record<string, unknown>).path = '/a/{id}/{id}';
    index.upsertPolicy(bad);
    const record = index.policy('shop', 'orders');
    assert.ok(record);
    const { status } = computeStatus(index, record, () => ({ version, nack: null }));
    const accepted = condition(status, 'Accepted');
    assert.equal(accepted?.status, 'False');
    assert.equal(accepted?.reason, 'Invalid');
    assert.match(accepted?.message ?? '', /^spec\.routes\[0\]\.path: /);
    assert.equal(
      condition(status, 'Programmed')?.message,
      'generation 2 is invalid; generation 1 keeps running',
    );
    assert.equal(status.observedGeneration, 2);
    assert.deepEqual(status.workloads, { selected: 2, programmed: 0 });
  });

  it('the newer of two policies selecting the same pods is Conflicted, the older Valid', () => {
    const { index, version } = setup();
    index.upsertPolicy(
      policyObject('newer', {
        created: '2026-06-01T00:00:00Z',
        selector: { matchLabels: { app: 'orders' } },
      }),
    );
    const newer = index.policy('shop', 'newer');
    const older = index.policy('shop', 'orders');
    assert.ok(newer && older);
    const current = index.bundleFor({ namespace: 'shop', labels: { app: 'orders' } }).version;
    assert.equal(current, version, 'the loser changes nothing in the bundle');
    const n = computeStatus(index, newer, () => ({ version, nack: null }));
    assert.equal(condition(n.status, 'Accepted')?.reason, 'Conflicted');
    assert.match(
      condition(n.status, 'Accepted')?.message ?? '',
      /older shop\/orders, which wins \(pod a; pod b\)/,
    );
    assert.equal(condition(n.status, 'Programmed')?.reason, 'Conflicted');
    assert.deepEqual(n.conflictsWith, ['shop/orders']);
    assert.equal(
      condition(computeStatus(index, older, () => ({ version, nack: null })).status, 'Accepted')?.reason,
      'Valid',
    );
  });
});

describe('status helpers', () => {
  it('parses the NACK annotation', () => {
    assert.deepEqual(parseNack('sha256:1: bad: thing'), { version: 'sha256:1', error: 'bad: thing' });
    assert.equal(parseNack(''), null);
    assert.equal(parseNack('garbage'), null);
    assert.deepEqual(annotatedAck(podInfo(podObject('a', {}))), { version: '', nack: null });
  });

  it('keeps transition times of unchanged conditions and compares without them', () => {
    const { index, record, version } = setup();
    const { status } = computeStatus(index, record, () => ({ version, nack: null }));
    const t0 = new Date('2026-01-01T00:00:00Z');
    const first = withTransitionTimes(status, undefined, t0);
    assert.ok(first.conditions.every((c) => c.lastTransitionTime === t0.toISOString()));
    const later = withTransitionTimes(status, first.conditions, new Date('2026-02-01T00:00:00Z'));
    assert.equal(later.conditions[0]?.lastTransitionTime, t0.toISOString());
    assert.ok(sameStatus(status, JSON.parse(JSON.stringify(later))));
    const pending = computeStatus(index, record, none).status;
    assert.equal(sameStatus(pending, later), false);
    const flipped = withTransitionTimes(pending, later.conditions, new Date('2026-03-01T00:00:00Z'));
    assert.equal(flipped.conditions[1]?.lastTransitionTime, '2026-03-01T00:00:00.000Z');
    assert.equal(sameStatus(status, undefined), false);
  });
});
