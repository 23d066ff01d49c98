/**
 * EventRecorder against the Kubernetes API test server through client-node:
 * the Event it creates, aggregation of repeats into `count`, what starts a new
 * Event (another message or type, the window passing, eviction, the Event
 * gone), concurrent repeats, and an unreachable API (logged, never thrown).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CoreV1Api, type CoreV1Event, type KubeConfig, type V1ConfigMap } from '@kubernetes/client-node';
import { kubeConfigFor } from '../../test/kube/client.ts';
import { KubeTestServer } from '../../test/kube/server.ts';
import { RecordingLogger } from '../../test/support/recording-logger.ts';
import { TcpProxy } from '../../test/support/tcp-proxy.ts';
import { EventRecorder, type EventRecorderOptions } from './event-recorder.ts';

const T0 = Date.parse('2025-06-01T12:00:00Z');
const MINUTE = 60_000;

describe('EventRecorder', () => {
  let server: KubeTestServer;
  let kc: KubeConfig;
  let core: CoreV1Api;

  before(async () => {
    server = await KubeTestServer.start();
    kc = kubeConfigFor(server.url);
    core = kc.makeApiClient(CoreV1Api);
  });
  after(async () => {
    await server.close();
  });

  /** A fresh namespace with one ConfigMap to record events about. */
  async function subject(namespace: string): Promise<V1ConfigMap> {
    await core.createNamespace({ body: { metadata: { name: namespace } } });
    return core.createNamespacedConfigMap({ namespace, body: { metadata: { name: 'subject' } } });
  }

  async function events(namespace: string): Promise<CoreV1Event[]> {
    const list = await core.listNamespacedEvent({ namespace });
    return list.items.sort((a, b) => (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''));
  }

  function recorder(clock: { now: number }, extra: Partial<EventRecorderOptions> = {}): EventRecorder {
    return new EventRecorder({ kubeConfig: kc, instance: 'operator-0', now: () => clock.now, ...extra });
  }

  test('creates a core/v1 Event referencing the object, in its namespace', async () => {
    const cm = await subject('create');
    await recorder({ now: T0 }).record(
      cm,
      'Warning',
      'InvalidPolicy',
      'spec.routes[0].path: must start with /',
    );
    const [event, ...rest] = await events('create');
    assert.equal(rest.length, 0);
    assert.match(event?.metadata?.name ?? '', /^subject\.[0-9a-f]{16}$/);
    assert.deepEqual(
      { ...event?.involvedObject },
      {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        namespace: 'create',
        name: 'subject',
        uid: cm.metadata?.uid,
        resourceVersion: cm.metadata?.resourceVersion,
      },
    );
    assert.equal(event?.type, 'Warning');
    assert.equal(event?.reason, 'InvalidPolicy');
    assert.equal(event?.message, 'spec.routes[0].path: must start with /');
    assert.deepEqual({ ...event?.source }, { component: 'tollgate-operator', host: 'operator-0' });
    assert.equal(event?.reportingComponent, 'tollgate.dev/operator');
    assert.equal(event?.reportingInstance, 'operator-0');
    assert.equal(event?.count, 1);
    assert.equal(event?.firstTimestamp?.getTime(), T0);
    assert.equal(event?.lastTimestamp?.getTime(), T0);
  });

  test('repeats within 10 minutes of the last one update count and lastTimestamp; then a new Event', async () => {
    const cm = await subject('aggregate');
    const clock = { now: T0 };
    const r = recorder(clock);
    await r.record(cm, 'Normal', 'Accepted', 'policy compiled');
    clock.now = T0 + 4 * MINUTE;
    await r.record(cm, 'Normal', 'Accepted', 'policy compiled');
    clock.now = T0 + 13 * MINUTE;
    await r.record(cm, 'Normal', 'Accepted', 'policy compiled');
    const [event, ...rest] = await events('aggregate');
    assert.equal(rest.length, 0);
    assert.equal(event?.count, 3);
    assert.equal(event?.firstTimestamp?.getTime(), T0);
    assert.equal(event?.lastTimestamp?.getTime(), T0 + 13 * MINUTE);

    clock.now = T0 + 24 * MINUTE;
    await r.record(cm, 'Normal', 'Accepted', 'policy compiled');
    assert.deepEqual(
      (await events('aggregate')).map((e) => e.count),
      [3, 1],
      'past the window: a new Event',
    );
  });

  test('another message, type or object is another Event; concurrent repeats count in order', async () => {
    const cm = await subject('distinct');
    const other = await core.createNamespacedConfigMap({
      namespace: 'distinct',
      body: { metadata: { name: 'other' } },
    });
    const r = recorder({ now: T0 });
    await Promise.all([
      r.record(cm, 'Warning', 'Rejected', 'a'),
      r.record(cm, 'Warning', 'Rejected', 'a'),
      r.record(cm, 'Warning', 'Rejected', 'a'),
      r.record(cm, 'Warning', 'Rejected', 'a'),
      r.record(cm, 'Warning', 'Rejected', 'b'),
      r.record(cm, 'Normal', 'Rejected', 'a'),
      r.record(other, 'Warning', 'Rejected', 'a'),
    ]);
    const summary = (await events('distinct'))
      .map((e) => `${e.involvedObject.name} ${e.type} ${e.message} ×${e.count}`)
      .sort();
    assert.deepEqual(summary, [
      'other Warning a ×1',
      'subject Normal a ×1',
      'subject Warning a ×4',
      'subject Warning b ×1',
    ]);
  });

  test('an Event deleted on the server, or evicted from the cache, is created again', async () => {
    const cm = await subject('recreate');
    const r = recorder({ now: T0 }, { cacheSize: 2 });
    await r.record(cm, 'Normal', 'Synced', 'one');
    const [first] = await events('recreate');
    await core.deleteNamespacedEvent({ namespace: 'recreate', name: first?.metadata?.name ?? '' });
    await r.record(cm, 'Normal', 'Synced', 'one');
    assert.deepEqual(
      (await events('recreate')).map((e) => `${e.message} ×${e.count}`),
      ['one ×1'],
    );

    await r.record(cm, 'Normal', 'Synced', 'two');
    await r.record(cm, 'Normal', 'Synced', 'three');
    await r.record(cm, 'Normal', 'Synced', 'one');
    assert.deepEqual((await events('recreate')).map((e) => `${e.message} ×${e.count}`).sort(), [
      'one ×1',
      'one ×1',
      'three ×1',
      'two ×1',
    ]);
  });

  test('a cluster-scoped object gets its Events in default; long messages are cut', async () => {
    const ns = await core.createNamespace({ body: { metadata: { name: 'cluster-scoped' } } });
    const before = (await events('default')).length;
    await recorder({ now: T0 }).record(ns, 'Normal', 'Meshed', 'x'.repeat(5000));
    const mine = (await events('default')).filter((e) => e.involvedObject.name === 'cluster-scoped');
    assert.equal((await events('default')).length, before + 1);
    assert.equal(mine[0]?.involvedObject.kind, 'Namespace');
    assert.equal(mine[0]?.involvedObject.namespace, undefined);
    assert.equal(mine[0]?.message?.length, 1024);
  });

  test('API failures are logged, never thrown; recording resumes when the API is back', async () => {
    const cm = await subject('failing');
    const proxy = await TcpProxy.start(server.url);
    try {
      const log = new RecordingLogger();
      const clock = { now: T0 };
      const r = new EventRecorder({
        kubeConfig: kubeConfigFor(proxy.url),
        instance: 'operator-0',
        now: () => clock.now,
        log,
      });
      proxy.setMode('reset');
      await r.record(cm, 'Warning', 'Rejected', 'bad');
      assert.equal((await events('failing')).length, 0);
      const [entry] = log.messages('event not recorded');
      assert.equal(entry?.level, 'warn');
      assert.equal(entry?.fields.object, 'ConfigMap/failing/subject');
      assert.equal(entry?.fields.reason, 'Rejected');
      assert.match(String(entry?.fields.err), /fetch failed/);

      proxy.setMode('up');
      await r.record(cm, 'Warning', 'Rejected', 'bad');
      proxy.setMode('http500');
      clock.now += MINUTE;
      await r.record(cm, 'Warning', 'Rejected', 'bad');
      assert.equal(log.messages('event not recorded')[1]?.fields.code, 500);
      proxy.setMode('up');
      clock.now += MINUTE;
      await r.record(cm, 'Warning', 'Rejected', 'bad');
      const [event, ...rest] = await events('failing');
      assert.equal(rest.length, 0);
      assert.equal(event?.count, 2, 'the failed update was not counted');
      assert.equal(event?.lastTimestamp?.getTime(), T0 + 2 * MINUTE);
    } finally {
      await proxy.close();
    }
  });

  test('needs a client', () => {
    assert.throws(() => new EventRecorder({ instance: 'x' }), TypeError);
  });
});
