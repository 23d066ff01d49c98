import assert from 'node:assert/strict';
import { test } from 'node:test';
import { podObject, policyObject } from '../../test/support/kube-objects.ts';
import { PolicyIndex, type PolicyRecord, podInfo } from '../index/policy-index.ts';
import type { PolicyStatus } from './policy-status.ts';
import { type PolicyEvent, StatusReconciler } from './status-reconciler.ts';

const tick = (ms = 30) => new Promise((r) => setTimeout(r, ms));

function setup(write?: (record: PolicyRecord, status: PolicyStatus) => Promise<unknown>) {
  const index = new PolicyIndex();
  index.upsertPolicy(policyObject('orders', { selector: { matchLabels: { app: 'orders' } } }));
  index.upsertPod(podInfo(podObject('a', { app: 'orders' })));
  const writes: PolicyStatus[] = [];
  const events: PolicyEvent[] = [];
  const reconciler = new StatusReconciler({
    index,
    acks: () => ({ version: '', nack: null }),
    writeStatus:
      write ??
      (async (record, status) => {
        writes.push(status);
        return { ...record.object, status };
      }),
    emitEvent: (_r, e) => events.push(e),
    log: { warn: () => {}, debug: () => {} },
    debounceMs: 5,
    retryMs: 10,
    now: () => new Date('2026-01-01T00:00:00Z'),
  });
  return { index, reconciler, writes, events };
}

test('a follower writes nothing; the leader writes once, and again only when the status changes', async () => {
  const { index, reconciler, writes } = setup();
  reconciler.mark('shop', 'orders');
  await tick();
  assert.equal(writes.length, 0);
  reconciler.setActive(true);
  await tick();
  assert.equal(writes.length, 1);
  assert.equal(writes[0]?.conditions[1]?.reason, 'Pending');
  assert.equal(writes[0]?.conditions[0]?.lastTransitionTime, '2026-01-01T00:00:00.000Z');
  reconciler.mark('shop', 'orders');
  await tick();
  assert.equal(writes.length, 1, 'unchanged: no write');
  index.deletePod('shop', 'a');
  reconciler.mark('shop', 'orders');
  await tick();
  assert.equal(writes.length, 2);
  assert.equal(writes[1]?.conditions[1]?.reason, 'NoWorkloads');
  reconciler.close();
});

test('a Warning Event once per invalid generation', async () => {
  const { index, reconciler, events } = setup();
  const bad = policyObject('orders', { generation: 2, selector: { matchLabels: { app: 'orders' } } });
  (bad.spec.routes[0] as Record<string, unknown>).path = 'no-slash';
  index.upsertPolicy(bad);
  reconciler.setActive(true);
  await tick();
  reconciler.mark('shop', 'orders');
  await tick();
  assert.deepEqual(
    events.map((e) => [e.type, e.reason]),
    [['Warning', 'Invalid']],
  );
  reconciler.close();
});

test('a failed write is retried', async () => {
  let attempts = 0;
  const { reconciler } = setup(async (record, status) => {
    attempts++;
    if (attempts === 1) throw new Error('409 conflict');
    return { ...record.object, status };
  });
  reconciler.setActive(true);
  await tick(60);
  assert.equal(attempts, 2);
  reconciler.close();
});
