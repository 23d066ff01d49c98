/**
 * LeaderElector against the Kubernetes API test server's Leases, through
 * client-node: two candidates, a monitor that fails the test the moment both
 * lead, release on stop, a leader cut off from the API (unreachable, or its
 * requests hanging) stepping down before the other takes over, expired and
 * live leases of others, and option checks.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { CoordinationV1Api, type KubeConfig, type V1Lease, V1MicroTime } from '@kubernetes/client-node';
import { kubeConfigFor } from '../../test/kube/client.ts';
import { KubeTestServer } from '../../test/kube/server.ts';
import { RecordingLogger, waitFor } from '../../test/support/recording-logger.ts';
import { TcpProxy } from '../../test/support/tcp-proxy.ts';
import { LeaderElector, type LeaderElectorOptions, type LeaseApi } from './leader-election.ts';

const FAST = { leaseDurationMs: 1000, renewDeadlineMs: 600, retryPeriodMs: 100 } as const;

/** Candidates sharing one lease, and the record of who led when. */
class Election {
  readonly electors = new Map<string, LeaderElector>();
  readonly leaders = new Set<string>();
  readonly history: string[] = [];
  readonly violations: string[] = [];
  readonly logs = new Map<string, RecordingLogger>();
  readonly lease: string;
  readonly #monitor: NodeJS.Timeout;

  constructor(lease: string) {
    this.lease = lease;
    // The invariant, checked continuously: never two leaders at once.
    this.#monitor = setInterval(() => this.check('monitor'), 2);
  }

  add(identity: string, kubeConfig: KubeConfig, extra: Partial<LeaderElectorOptions> = {}): LeaderElector {
    const log = new RecordingLogger();
    this.logs.set(identity, log);
    const elector = new LeaderElector({
      kubeConfig,
      namespace: 'default',
      name: this.lease,
      identity,
      ...FAST,
      log,
      onStartedLeading: () => {
        this.leaders.add(identity);
        this.history.push(`${identity} started`);
        this.check(`${identity} started`);
      },
      onStoppedLeading: () => {
        this.leaders.delete(identity);
        this.history.push(`${identity} stopped`);
      },
      ...extra,
    });
    this.electors.set(identity, elector);
    return elector;
  }

  check(step: string): void {
    const leading = [...this.electors].filter(([, e]) => e.isLeader).map(([id]) => id);
    if (leading.length > 1 || this.leaders.size > 1) {
      this.violations.push(`${step}: ${leading.join('+')} / ${[...this.leaders].join('+')}`);
    }
  }

  /** Asserts the invariant, and that exactly the given candidate (or none) leads. */
  assertLeader(expected: string | undefined): void {
    this.check('assert');
    assert.deepEqual(this.violations, []);
    const leading = [...this.electors].filter(([, e]) => e.isLeader).map(([id]) => id);
    assert.deepEqual(leading, expected === undefined ? [] : [expected]);
    assert.deepEqual([...this.leaders], expected === undefined ? [] : [expected]);
  }

  leader(): string | undefined {
    return [...this.electors].find(([, e]) => e.isLeader)?.[0];
  }

  async close(): Promise<void> {
    for (const elector of this.electors.values()) await elector.stop();
    clearInterval(this.#monitor);
    assert.deepEqual(this.violations, []);
  }
}

describe('LeaderElector', () => {
  let server: KubeTestServer;
  let kc: KubeConfig;
  let leases: CoordinationV1Api;
  const cleanup: Array<() => Promise<void>> = [];

  before(async () => {
    server = await KubeTestServer.start();
    kc = kubeConfigFor(server.url);
    leases = kc.makeApiClient(CoordinationV1Api);
  });
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step();
  });
  after(async () => {
    await server.close();
  });

  function election(lease: string): Election {
    const e = new Election(lease);
    cleanup.push(() => e.close());
    return e;
  }

  async function read(name: string): Promise<V1Lease> {
    return leases.readNamespacedLease({ namespace: 'default', name });
  }

  test('of two candidates exactly one leads, and keeps renewing', async () => {
    const e = election('two');
    e.add('a', kc).start();
    e.add('b', kc).start();
    await waitFor('a leader', () => e.leader() !== undefined);
    const leader = e.leader() ?? '';
    e.assertLeader(leader);
    const first = await read('two');
    assert.equal(first.spec?.holderIdentity, leader);
    assert.equal(first.spec?.leaseDurationSeconds, 1);
    assert.equal(first.spec?.leaseTransitions, 0);
    assert.match(String(first.spec?.renewTime), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);

    await new Promise((resolve) => setTimeout(resolve, 1500));
    e.assertLeader(leader);
    const later = await read('two');
    assert.equal(later.spec?.holderIdentity, leader);
    assert.ok(new Date(String(later.spec?.renewTime)) > new Date(String(first.spec?.renewTime)), 'renewed');
    assert.equal(later.spec?.acquireTime?.toString(), first.spec?.acquireTime?.toString());
    assert.equal(later.spec?.leaseTransitions, 0);
    assert.deepEqual(e.history, [`${leader} started`]);
  });

  test('stopping the leader releases the lease and the other takes over before it would expire', async () => {
    const slow = { leaseDurationMs: 5000, renewDeadlineMs: 3000, retryPeriodMs: 100 };
    const e = election('handover');
    const a = e.add('a', kc, slow);
    a.start();
    await waitFor('a to lead', () => a.isLeader);
    const b = e.add('b', kc, slow);
    b.start();
    await new Promise((resolve) => setTimeout(resolve, 300));
    e.assertLeader('a');

    const stoppedAt = Date.now();
    await a.stop();
    e.assertLeader(undefined);
    const released = await read('handover');
    assert.equal(released.spec?.holderIdentity, '');
    assert.equal(released.spec?.leaseDurationSeconds, 1);
    await waitFor('b to lead', () => b.isLeader, 2000);
    assert.ok(Date.now() - stoppedAt < 1500, 'handed over well before the 5 s lease would expire');
    e.assertLeader('b');
    const taken = await read('handover');
    assert.equal(taken.spec?.holderIdentity, 'b');
    assert.equal(taken.spec?.leaseTransitions, 1);
    assert.deepEqual(e.history, ['a started', 'a stopped', 'b started']);
    assert.equal(e.logs.get('a')?.messages('lease released').length, 1);
    await a.stop();
    assert.equal(e.history.length, 3, 'a second stop does nothing');
  });

  for (const mode of ['reset', 'stall'] as const) {
    test(`a leader whose API is ${mode === 'reset' ? 'unreachable' : 'hanging'} steps down, then the other takes over after expiry`, async () => {
      const proxy = await TcpProxy.start(server.url);
      cleanup.push(() => proxy.close());
      const e = election(`cut-${mode}`);
      const a = e.add('a', kubeConfigFor(proxy.url));
      a.start();
      await waitFor('a to lead', () => a.isLeader);
      const b = e.add('b', kc);
      b.start();
      await new Promise((resolve) => setTimeout(resolve, 300));
      e.assertLeader('a');

      const held = await read(`cut-${mode}`);
      const lastRenew = new Date(String(held.spec?.renewTime)).getTime();
      proxy.setMode(mode);
      await waitFor('a to step down', () => !e.leaders.has('a'), 3000);
      const steppedDown = Date.now();
      e.assertLeader(undefined);
      await waitFor('b to lead', () => b.isLeader, 5000);
      e.assertLeader('b');
      assert.deepEqual(e.history, ['a started', 'a stopped', 'b started']);
      // a gives up within its renew deadline (plus a renewal it may have sent just before the cut) …
      assert.ok(
        steppedDown - lastRenew < 600 + 100 + 300,
        `stepped down ${steppedDown - lastRenew} ms after renewal`,
      );
      // … and b waits for the lease to expire.
      const taken = await read(`cut-${mode}`);
      const acquired = new Date(String(taken.spec?.acquireTime)).getTime();
      assert.ok(acquired - lastRenew >= 1000, `taken over ${acquired - lastRenew} ms after the last renewal`);
      assert.equal(taken.spec?.leaseTransitions, 1);
      const warning = e.logs.get('a')?.messages('stopped leading')[0];
      assert.equal(warning?.fields.reason, 'renew deadline passed');

      proxy.setMode('up');
      await new Promise((resolve) => setTimeout(resolve, 400));
      e.assertLeader('b');
      await a.stop();
      assert.equal((await read(`cut-${mode}`)).spec?.holderIdentity, 'b', 'a non-leader releases nothing');
    });
  }

  test('an expired lease of a dead holder is taken over; a live one is not', async () => {
    const minuteAgo = Date.now() - 60_000;
    await leases.createNamespacedLease({
      namespace: 'default',
      body: {
        metadata: { name: 'expired' },
        spec: {
          holderIdentity: 'ghost',
          leaseDurationSeconds: 15,
          acquireTime: new V1MicroTime(minuteAgo),
          renewTime: new V1MicroTime(minuteAgo),
          leaseTransitions: 3,
        },
      },
    });
    const now = Date.now();
    await leases.createNamespacedLease({
      namespace: 'default',
      body: {
        metadata: { name: 'live' },
        spec: { holderIdentity: 'other', leaseDurationSeconds: 15, renewTime: new V1MicroTime(now) },
      },
    });
    const e1 = election('expired');
    const a = e1.add('a', kc);
    a.start();
    await waitFor('a to take the expired lease', () => a.isLeader);
    const taken = await read('expired');
    assert.equal(taken.spec?.holderIdentity, 'a');
    assert.equal(taken.spec?.leaseTransitions, 4);
    assert.equal(taken.spec?.leaseDurationSeconds, 1);

    const e2 = election('live');
    const b = e2.add('b', kc);
    b.start();
    await new Promise((resolve) => setTimeout(resolve, 500));
    e2.assertLeader(undefined);
    assert.ok((e2.logs.get('b')?.messages('lease held').length ?? 0) >= 1);
    assert.equal((await read('live')).spec?.holderIdentity, 'other');
  });

  test('a leader renews with the resourceVersion it wrote, without reading first (api option)', async () => {
    const calls = { read: 0, create: 0, replace: 0 };
    const api: LeaseApi = {
      readNamespacedLease: (param, options) => {
        calls.read++;
        return leases.readNamespacedLease(param, options);
      },
      createNamespacedLease: (param, options) => {
        calls.create++;
        return leases.createNamespacedLease(param, options);
      },
      replaceNamespacedLease: (param, options) => {
        calls.replace++;
        return leases.replaceNamespacedLease(param, options);
      },
    };
    const e = election('fast-path');
    const a = e.add('a', kc, { api });
    a.start();
    await waitFor('a to lead', () => a.isLeader);
    await new Promise((resolve) => setTimeout(resolve, 500));
    e.assertLeader('a');
    assert.deepEqual({ read: calls.read, create: calls.create }, { read: 1, create: 1 });
    assert.ok(calls.replace >= 3, `${calls.replace} renewals`);
  });

  test('a clock past the renew deadline ends leadership at once', async () => {
    let skew = 0;
    const e = election('clock');
    const a = e.add('a', kc, {
      now: () => Date.now() + skew,
      leaseDurationMs: 15_000,
      renewDeadlineMs: 10_000,
      retryPeriodMs: 2_000,
    });
    a.start();
    await waitFor('a to lead', () => a.isLeader);
    skew = 10_001;
    assert.equal(a.isLeader, false, 'isLeader checks the deadline itself');
    await a.stop();
    assert.deepEqual(e.history, ['a started', 'a stopped']);
  });

  test('throwing callbacks are logged; a candidate that never led releases nothing', async () => {
    const e = election('callbacks');
    const a = e.add('a', kc, {
      onStartedLeading: () => {
        throw new Error('boom');
      },
    });
    a.start();
    await waitFor('a to lead', () => a.isLeader);
    assert.deepEqual(e.logs.get('a')?.messages('leader callback failed')[0]?.fields, {
      lease: 'callbacks',
      callback: 'onStartedLeading',
      err: 'Error: boom',
    });
    const b = e.add('b', kc);
    b.start();
    await new Promise((resolve) => setTimeout(resolve, 200));
    await b.stop();
    assert.equal((await read('callbacks')).spec?.holderIdentity, 'a');
    assert.equal(e.logs.get('b')?.messages('lease released').length, 0);
  });

  test('options are checked when constructed', () => {
    const base = { kubeConfig: kc, namespace: 'default', name: 'x', identity: 'a' };
    assert.throws(() => new LeaderElector({ namespace: 'default', name: 'x', identity: 'a' }), TypeError);
    assert.throws(() => new LeaderElector({ ...base, identity: '' }), RangeError);
    assert.throws(() => new LeaderElector({ ...base, leaseDurationMs: 10_000 }), RangeError);
    assert.throws(() => new LeaderElector({ ...base, retryPeriodMs: 9000 }), RangeError);
    assert.throws(
      () => new LeaderElector({ ...base, leaseDurationMs: 500, renewDeadlineMs: 400 }),
      RangeError,
    );
    const elector = new LeaderElector(base);
    assert.equal(elector.isLeader, false);
  });
});
