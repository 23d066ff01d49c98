import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { status as GrpcStatus } from '@grpc/grpc-js';
import type { Hello, TrustBundle } from '../../proto/policy-service.ts';
import { podObject } from '../../test/support/kube-objects.ts';
import { podInfo, type WorkloadBundle } from '../index/policy-index.ts';
import { AckRecorder } from './ack-recorder.ts';
import { MeshPush } from './mesh-push.ts';
import { PushQueue } from './push-queue.ts';
import { pushTrustBundle, SessionRegistry, type SidecarSession } from './sessions.ts';
import { authenticateHello, type TokenReviewResult } from './sidecar-auth.ts';

const pod = { ...podInfo(podObject('orders-1', { app: 'orders' })), uid: 'uid-1' };
const hello = (over: Partial<Hello> = {}): Hello => ({
  podName: 'orders-1',
  podNamespace: 'shop',
  token: 'a-token',
  appPort: 8080,
  bundleVersion: '',
  agentVersion: '0',
  ...over,
});
const reviewer = (r: TokenReviewResult) => async () => r;
const find = async (ns: string, name: string) => (ns === 'shop' && name === 'orders-1' ? pod : undefined);
const sa = 'system:serviceaccount:shop:orders';
const bound = {
  'authentication.kubernetes.io/pod-name': ['orders-1'],
  'authentication.kubernetes.io/pod-uid': ['uid-1'],
};

describe('authenticateHello', () => {
  const cases: Array<[string, Hello, TokenReviewResult | Error, GrpcStatus | 'ok', RegExp?]> = [
    ['a bound token of the pod', hello(), { authenticated: true, username: sa, extra: bound }, 'ok'],
    ['an unbound token of its service account', hello(), { authenticated: true, username: sa }, 'ok'],
    [
      'no pod named',
      hello({ podName: '' }),
      { authenticated: true, username: sa },
      GrpcStatus.INVALID_ARGUMENT,
    ],
    ['no token', hello({ token: '' }), { authenticated: true, username: sa }, GrpcStatus.UNAUTHENTICATED],
    [
      'a rejected token',
      hello(),
      { authenticated: false, error: 'token has expired' },
      GrpcStatus.UNAUTHENTICATED,
      /expired/,
    ],
    [
      'a user, not a service account',
      hello(),
      { authenticated: true, username: 'alice' },
      GrpcStatus.PERMISSION_DENIED,
    ],
    [
      'another service account',
      hello(),
      { authenticated: true, username: 'system:serviceaccount:shop:web' },
      GrpcStatus.PERMISSION_DENIED,
      /cannot speak for pod shop\/orders-1/,
    ],
    [
      'another namespace',
      hello(),
      { authenticated: true, username: 'system:serviceaccount:prod:orders' },
      GrpcStatus.PERMISSION_DENIED,
    ],
    [
      'bound to another pod',
      hello(),
      { authenticated: true, username: sa, extra: { 'authentication.kubernetes.io/pod-name': ['orders-2'] } },
      GrpcStatus.PERMISSION_DENIED,
      /bound to pod orders-2/,
    ],
    [
      'bound to a previous pod of that name',
      hello(),
      {
        authenticated: true,
        username: sa,
        extra: { ...bound, 'authentication.kubernetes.io/pod-uid': ['old'] },
      },
      GrpcStatus.PERMISSION_DENIED,
    ],
    [
      'an unknown pod',
      hello({ podName: 'ghost' }),
      { authenticated: true, username: sa },
      GrpcStatus.PERMISSION_DENIED,
      /not found/,
    ],
    [
      'a TokenReview that fails',
      hello(),
      new Error('connection refused'),
      GrpcStatus.UNAVAILABLE,
      /connection refused/,
    ],
  ];
  for (const [name, h, result, expected, message] of cases) {
    test(name, async () => {
      const review = result instanceof Error ? async () => Promise.reject(result) : reviewer(result);
      const outcome = await authenticateHello(h, review, find);
      if (expected === 'ok') {
        assert.equal(outcome.ok, true);
        return;
      }
      assert.equal(outcome.ok, false);
      if (outcome.ok) return;
      assert.equal(outcome.code, expected);
      if (message) assert.match(outcome.message, message);
      assert.doesNotMatch(outcome.message, /a-token/, 'the token is never echoed');
    });
  }

  test('asks for the tollgate audience', async () => {
    let asked: string[] = [];
    await authenticateHello(
      hello(),
      async (_t, audiences) => {
        asked = audiences;
        return { authenticated: false };
      },
      find,
    );
    assert.deepEqual(asked, ['tollgate']);
  });
});

function session(
  id: number,
  podName = 'orders-1',
  sent = '',
): SidecarSession & { sent: string[]; meshes: string[]; trustSent: string[] } {
  const sentVersions: string[] = [];
  const meshes: string[] = [];
  const trustSent: string[] = [];
  return {
    id,
    namespace: 'shop',
    pod: podName,
    sentVersion: sent,
    ack: { version: sent, nack: null },
    sent: sentVersions,
    meshes,
    send(version) {
      sentVersions.push(version);
    },
    meshVersion: '',
    sendMesh(mesh) {
      meshes.push(mesh.version);
    },
    trustSentVersion: '',
    trustVersion: '',
    trustSent,
    sendTrust(bundle) {
      trustSent.push(bundle.version);
    },
  };
}

describe('pushTrustBundle', () => {
  test('sends a trust bundle once per version, nothing while there is none', () => {
    const s = session(1);
    const table: Array<[TrustBundle | null, boolean]> = [
      [null, false],
      [{ version: 'sha256:a', pem: 'A' }, true],
      [{ version: 'sha256:a', pem: 'A' }, false],
      [{ version: 'sha256:b', pem: 'AB' }, true],
      [null, false],
    ];
    for (const [bundle, sent] of table) assert.equal(pushTrustBundle(s, bundle), sent, bundle?.version);
    assert.deepEqual(s.trustSent, ['sha256:a', 'sha256:b']);
  });
});

describe('MeshPush', () => {
  const mesh = (version: string) => ({ version, endpoints: [] });

  test('a sidecar that connects gets the mesh once; a change reaches every sidecar once, after the debounce', async () => {
    const sessions = new SessionRegistry();
    let current = mesh('m1');
    let computed = 0;
    const pushed: string[] = [];
    const push = new MeshPush({
      sessions,
      mesh: () => {
        computed += 1;
        return current;
      },
      debounceMs: 20,
      onPush: (s, v) => pushed.push(`${s.id}:${v}`),
    });
    const a = session(1, 'orders-1');
    const b = session(2, 'orders-2');
    sessions.add(a);
    push.greet(a);
    push.greet(a);
    assert.deepEqual(a.meshes, ['m1']);
    sessions.add(b);
    push.greet(b);
    assert.equal(computed, 1, 'computed once, reused for the next sidecar');

    current = mesh('m2');
    push.changed();
    push.changed();
    push.changed();
    assert.deepEqual(a.meshes, ['m1'], 'nothing before the debounce');
    await new Promise((r) => setTimeout(r, 60));
    assert.deepEqual(
      [a.meshes, b.meshes],
      [
        ['m1', 'm2'],
        ['m1', 'm2'],
      ],
    );
    assert.equal(computed, 2, 'a burst of changes is one computation');

    // A change that leaves the mesh as it was sends nothing.
    push.changed();
    await new Promise((r) => setTimeout(r, 60));
    assert.deepEqual(a.meshes, ['m1', 'm2']);
    assert.deepEqual(pushed, ['1:m1', '2:m1', '1:m2', '2:m2']);
    push.close();
    current = mesh('m3');
    push.changed();
    push.greet(session(3));
    await new Promise((r) => setTimeout(r, 40));
    assert.deepEqual(a.meshes, ['m1', 'm2'], 'closed: nothing more');
  });
});

describe('PushQueue', () => {
  const bundle = (version: string) => ({ version, json: '{}' }) as WorkloadBundle;

  test('merges repeated enqueues into one push and skips unchanged versions', async () => {
    const sessions = new SessionRegistry();
    const a = session(1);
    const b = session(2, 'orders-2', 'v1');
    sessions.add(a);
    sessions.add(b);
    let version = 'v1';
    const pushed: string[] = [];
    const queue = new PushQueue({
      sessions,
      bundleFor: () => bundle(version),
      debounceMs: 5,
      onPush: (s, v) => pushed.push(`${s.pod}:${v}`),
    });
    queue.enqueueNamespace('shop');
    queue.enqueuePod('shop', 'orders-1');
    queue.enqueueNamespace('shop');
    await new Promise((r) => setTimeout(r, 30));
    assert.deepEqual(pushed, ['orders-1:v1'], 'orders-2 already runs v1');
    version = 'v2';
    queue.enqueueNamespace('shop');
    queue.enqueueNamespace('other');
    await new Promise((r) => setTimeout(r, 30));
    assert.deepEqual(a.sent, ['v1', 'v2']);
    assert.deepEqual(b.sent, ['v2']);
    queue.close();
    version = 'v3';
    queue.enqueueNamespace('shop');
    queue.flush();
    assert.deepEqual(a.sent, ['v1', 'v2'], 'nothing after close');
  });

  test('a session whose pod is unknown gets nothing', () => {
    const sessions = new SessionRegistry();
    const a = session(1);
    sessions.add(a);
    const queue = new PushQueue({ sessions, bundleFor: () => undefined });
    queue.pushNow(a);
    assert.deepEqual(a.sent, []);
    assert.equal(sessions.ackFor('shop', 'orders-1')?.version, '');
    sessions.remove(a);
    assert.equal(sessions.size, 0);
    assert.equal(sessions.ackFor('shop', 'orders-1'), undefined);
  });

  test('the newest session of a pod speaks for it', () => {
    const sessions = new SessionRegistry();
    const old = session(1, 'orders-1', 'v1');
    const fresh = session(2, 'orders-1', 'v2');
    sessions.add(old);
    sessions.add(fresh);
    assert.equal(sessions.ackFor('shop', 'orders-1')?.version, 'v2');
  });
});

describe('AckRecorder', () => {
  test('coalesces per pod, clears the NACK on an ACK, retries failures, drops gone pods', async () => {
    const writes: Array<[string, Record<string, string | null>]> = [];
    let fail = 1;
    const warnings: string[] = [];
    const recorder = new AckRecorder({
      annotate: async (_ns, name, annotations) => {
        if (name === 'gone') throw Object.assign(new Error('not found'), { code: 404 });
        if (name === 'flaky' && fail-- > 0) throw Object.assign(new Error('conflict'), { code: 409 });
        writes.push([name, annotations]);
      },
      log: { warn: (_o, msg) => warnings.push(msg) },
      flushMs: 5,
      retryMs: 10,
    });
    recorder.nack('shop', 'a', 'v2', 'bad bundle');
    recorder.ack('shop', 'a', 'v3');
    recorder.ack('shop', 'gone', 'v1');
    recorder.ack('shop', 'flaky', 'v1');
    await new Promise((r) => setTimeout(r, 60));
    assert.deepEqual(writes, [
      ['a', { 'tollgate.dev/policy-version': 'v3', 'tollgate.dev/policy-error': null }],
      ['flaky', { 'tollgate.dev/policy-version': 'v1', 'tollgate.dev/policy-error': null }],
    ]);
    assert.deepEqual(warnings, ['ack annotation failed']);
    recorder.nack('shop', 'b', 'v9', 'x'.repeat(5000));
    await recorder.flush();
    const nack = writes.at(-1)?.[1]['tollgate.dev/policy-error'] ?? '';
    assert.ok(nack.startsWith('v9: xxx') && nack.length < 1100, 'long errors are cut');
    recorder.close();
  });
});
