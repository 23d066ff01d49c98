/**
 * The operator against the Kubernetes API test server, driven through the real
 * @kubernetes/client-node, with simulated sidecars on real gRPC/TLS streams:
 * bundles per workload, status conditions, Events, sidecar authentication,
 * NACKs, and two replicas with leader election.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { status as GrpcStatus } from '@grpc/grpc-js';
import type { V1Pod } from '@kubernetes/client-node';
import type { PolicyBundle } from '../../policy/compile/bundle.ts';
import {
  createNamespace,
  createPod,
  type OperatorEnv,
  type PolicyCondition,
  type PolicyObject,
  podToken,
  policyManifest,
  type StartedOperator,
  startOperator,
  startOperatorEnv,
} from '../support/operator-env.ts';
import { waitFor } from '../support/recording-logger.ts';
import { SimulatedSidecar } from '../support/sidecar-client.ts';

const NS = 'shop';
const API = { group: 'tollgate.dev', version: 'v1alpha1', plural: 'apipolicies', namespace: NS };

let env: OperatorEnv;
let op: StartedOperator;
const pods: Record<string, V1Pod> = {};
const sidecars: SimulatedSidecar[] = [];

function names(bundle: { json: string } | undefined): string[] {
  if (!bundle) return [];
  return (JSON.parse(bundle.json) as PolicyBundle).policies.map((p) => p.ref.name).sort();
}

async function connect(
  pod: string,
  opts: { token?: string; refuse?: () => string | undefined; address?: string } = {},
) {
  const p = pods[pod];
  assert.ok(p, pod);
  const sidecar = new SimulatedSidecar({
    address: opts.address ?? op.address,
    ca: env.ca.cert,
    serverName: 'localhost',
    hello: { podName: pod, podNamespace: NS, token: opts.token ?? (await podToken(env, p)) },
    ...(opts.refuse ? { refuse: opts.refuse } : {}),
  });
  sidecars.push(sidecar);
  return sidecar;
}

async function getPolicy(name: string): Promise<PolicyObject> {
  return (await env.custom.getNamespacedCustomObject({ ...API, name })) as PolicyObject;
}

async function statusOf(
  name: string,
  check: (p: PolicyObject) => boolean,
  timeoutMs = 5000,
): Promise<PolicyObject> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const p = await getPolicy(name);
    if (check(p)) return p;
    if (Date.now() > deadline)
      throw new Error(`status of ${name} never matched: ${JSON.stringify(p.status)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function condition(p: PolicyObject, type: string): PolicyCondition | undefined {
  return p.status?.conditions?.find((c) => c.type === type);
}

async function apply(manifest: Record<string, unknown>): Promise<void> {
  await env.custom.createNamespacedCustomObject({ ...API, body: manifest });
}

async function replaceSpec(name: string, spec: Record<string, unknown>): Promise<void> {
  const current = (await getPolicy(name)) as unknown as Record<string, unknown>;
  await env.custom.replaceNamespacedCustomObject({ ...API, name, body: { ...current, spec } });
}

before(async () => {
  env = await startOperatorEnv();
  await createNamespace(env, NS, 'orders');
  await env.core.createNamespacedServiceAccount({ namespace: NS, body: { metadata: { name: 'web' } } });
  pods['orders-1'] = await createPod(env, NS, 'orders-1', { app: 'orders' }, { serviceAccount: 'orders' });
  pods['orders-2'] = await createPod(env, NS, 'orders-2', { app: 'orders' }, { serviceAccount: 'orders' });
  pods['web-1'] = await createPod(env, NS, 'web-1', { app: 'web' }, { serviceAccount: 'web' });
  pods['plain-1'] = await createPod(
    env,
    NS,
    'plain-1',
    { app: 'orders' },
    { serviceAccount: 'orders', meshed: false },
  );
  op = await startOperator(env);
  await waitFor('leadership', () => op.operator.leader);
});

after(async () => {
  for (const s of sidecars) s.close();
  await op?.operator.stop();
  await env?.close();
});

describe('operator: policy → bundles → status', () => {
  test('a sidecar with no policy gets an empty bundle (its agent denies everything)', async () => {
    const web = await connect('web-1');
    const b = await web.waitForBundle();
    assert.deepEqual(names(b), []);
  });

  test('apply: selected sidecars get the policy, status Accepted/Programmed with workloads 2/2', async () => {
    const one = await connect('orders-1');
    const two = await connect('orders-2');
    await one.waitForBundle();
    await apply(policyManifest('orders', { selector: { app: 'orders' }, paths: ['/v1/orders'] }));
    for (const s of [one, two]) await s.waitForBundle((b) => names(b).includes('orders'));
    const p = await statusOf('orders', (x) => condition(x, 'Programmed')?.status === 'True');
    assert.equal(p.status?.observedGeneration, 1);
    assert.deepEqual(
      { ...condition(p, 'Accepted') },
      {
        ...condition(p, 'Accepted'),
        type: 'Accepted',
        status: 'True',
        reason: 'Valid',
        observedGeneration: 1,
      },
    );
    assert.equal(condition(p, 'Programmed')?.reason, 'AllSynced');
    assert.deepEqual(p.status?.workloads, { selected: 2, programmed: 2 }, 'the unmeshed pod is not counted');
    assert.match(p.status?.policyHash ?? '', /^sha256:[0-9a-f]{64}$/);
    const web = sidecars[0];
    assert.equal(web?.bundles.length, 1, 'a sidecar the policy does not select gets no push');
  });

  test('edit: the new generation reaches every selected sidecar within 1 s; status follows', async () => {
    const [one, two] = [sidecars[1], sidecars[2]];
    assert.ok(one && two);
    const started = performance.now();
    await replaceSpec(
      'orders',
      policyManifest('x', { selector: { app: 'orders' }, paths: ['/v2/orders'] }).spec as never,
    );
    const isV2 = (b: { json: string }) =>
      (JSON.parse(b.json) as PolicyBundle).policies[0]?.routes[0]?.path === '/v2/orders';
    const got = await Promise.all([one.waitForBundle(isV2, 1000), two.waitForBundle(isV2, 1000)]);
    for (const b of got) assert.ok(b.at - started < 1000, `took ${b.at - started} ms`);
    const p = await statusOf(
      'orders',
      (x) => x.status?.observedGeneration === 2 && condition(x, 'Programmed')?.status === 'True',
    );
    assert.deepEqual(p.status?.workloads, { selected: 2, programmed: 2 });
  });

  test('invalid (passes the schema, fails semantics): Accepted=False with the path, the old generation keeps running', async () => {
    const one = sidecars[1];
    assert.ok(one);
    const before = one.bundles.length;
    await replaceSpec('orders', {
      selector: { matchLabels: { app: 'orders' } },
      routes: [{ name: 'r0', path: '/v3/{id}/{id}', methods: ['GET'], public: true }],
    });
    const p = await statusOf('orders', (x) => x.status?.observedGeneration === 3);
    const accepted = condition(p, 'Accepted');
    assert.equal(accepted?.status, 'False');
    assert.equal(accepted?.reason, 'Invalid');
    assert.match(accepted?.message ?? '', /^spec\.routes\[0\]\.path: .*id/);
    assert.equal(condition(p, 'Programmed')?.message, 'generation 3 is invalid; generation 2 keeps running');
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(one.bundles.length, before, 'no push: the bundle did not change');
    const events = await env.core.listNamespacedEvent({ namespace: NS });
    const invalid = events.items.find((e) => e.reason === 'Invalid' && e.involvedObject.name === 'orders');
    assert.equal(invalid?.type, 'Warning');
    assert.match(invalid?.message ?? '', /spec\.routes\[0\]\.path/);
    // Fix it again for the next tests.
    await replaceSpec(
      'orders',
      policyManifest('x', { selector: { app: 'orders' }, paths: ['/v4/orders'] }).spec as never,
    );
    await statusOf(
      'orders',
      (x) => x.status?.observedGeneration === 4 && condition(x, 'Programmed')?.status === 'True',
    );
  });

  test('two policies selecting the same pods: the newer is Conflicted, bundles keep the older', async () => {
    const one = sidecars[1];
    assert.ok(one);
    const before = one.bundles.length;
    await new Promise((r) => setTimeout(r, 1100)); // creationTimestamp has one-second resolution
    await apply(policyManifest('orders-copy', { selector: { app: 'orders' }, paths: ['/copy'] }));
    const p = await statusOf('orders-copy', (x) => condition(x, 'Accepted')?.reason === 'Conflicted');
    assert.equal(condition(p, 'Accepted')?.status, 'False');
    assert.match(condition(p, 'Accepted')?.message ?? '', /older shop\/orders, which wins/);
    assert.equal(condition(p, 'Programmed')?.reason, 'Conflicted');
    const older = await getPolicy('orders');
    assert.equal(condition(older, 'Accepted')?.reason, 'Valid');
    assert.equal(one.bundles.length, before, 'the loser changes no bundle');
    await env.custom.deleteNamespacedCustomObject({ ...API, name: 'orders-copy' });
  });

  test('a NACK: Programmed=False reason Rejected with the sidecar error, and a Warning Event', async () => {
    pods['orders-3'] = await createPod(env, NS, 'orders-3', { app: 'orders' }, { serviceAccount: 'orders' });
    const three = await connect('orders-3', { refuse: () => 'cannot load: out of memory (simulated)' });
    await three.waitForBundle();
    const p = await statusOf('orders', (x) => condition(x, 'Programmed')?.reason === 'Rejected');
    assert.match(
      condition(p, 'Programmed')?.message ?? '',
      /shop\/orders-3 rejected sha256:[0-9a-f]+: cannot load: out of memory/,
    );
    assert.deepEqual(p.status?.workloads, { selected: 3, programmed: 2 });
    await waitFor('the NACK annotation', () =>
      (op.operator.index.pod(NS, 'orders-3')?.nack ?? '').includes('out of memory'),
    );
    three.close();
    await env.core.deleteNamespacedPod({ namespace: NS, name: 'orders-3' });
    const back = await statusOf('orders', (x) => condition(x, 'Programmed')?.status === 'True');
    assert.deepEqual(back.status?.workloads, { selected: 2, programmed: 2 });
  });

  test('/metrics on the health port counts pushes, ACKs, NACKs and connected sidecars; /readyz is 200', async () => {
    const base = `http://127.0.0.1:${op.healthPort}`;
    assert.equal((await fetch(`${base}/readyz`)).status, 200);
    const text = await (await fetch(`${base}/metrics`)).text();
    const value = (series: string) =>
      Number(
        text
          .split('\n')
          .find((l) => l.startsWith(`${series} `))
          ?.slice(series.length + 1),
      );
    assert.ok(value('tollgate_operator_acks_total{result="ack"}') >= 3, text);
    assert.ok(value('tollgate_operator_acks_total{result="nack"}') >= 1);
    assert.ok(value('tollgate_operator_pushes_total{result="ok"}') >= 5);
    assert.equal(value('tollgate_operator_connected_sidecars'), op.operator.sessions.size);
    assert.equal(value('tollgate_operator_leader'), 1);
    assert.ok(value('tollgate_operator_watch_events_total{resource="ApiPolicy",event="ADDED"}') >= 2, text);
  });

  test('reports: client-blocked becomes a Warning Event on the pod; unknown or malformed ones are ignored', async () => {
    const one = sidecars[1];
    assert.ok(one);
    one.report('inventory', '{}');
    one.report('client-blocked', 'not json');
    one.report(
      'client-blocked',
      JSON.stringify({
        key: 'ip:10.1.2.3',
        reason: 'authFailures',
        until: '2026-11-22T18:00:00Z',
        policy: 'shop/orders',
        mode: 'Enforce',
      }),
    );
    let found: { type?: string; message?: string; kind?: string } = {};
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline) {
      const events = await env.core.listNamespacedEvent({ namespace: NS });
      const e = events.items.find(
        (x) => x.reason === 'ClientBlocked' && x.involvedObject.name === 'orders-1',
      );
      if (e) {
        found = {
          ...(e.type ? { type: e.type } : {}),
          ...(e.message ? { message: e.message } : {}),
          ...(e.involvedObject.kind ? { kind: e.involvedObject.kind } : {}),
        };
        break;
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    assert.equal(found.type, 'Warning');
    assert.equal(found.kind, 'Pod');
    assert.equal(
      found.message,
      'protection blocked client ip:10.1.2.3 (authFailures) until 2026-11-22T18:00:00Z; policy shop/orders, mode Enforce',
    );
    assert.equal(op.log.messages('sidecar report ignored').length, 1);
    assert.equal(op.log.messages('sidecar report malformed').length, 1);
  });

  test('delete: selected sidecars get an empty bundle (deny by default)', async () => {
    const [one, two] = [sidecars[1], sidecars[2]];
    assert.ok(one && two);
    await env.custom.deleteNamespacedCustomObject({ ...API, name: 'orders' });
    for (const s of [one, two]) await s.waitForBundle((b) => b === s.latest && names(b).length === 0);
  });
});

describe('operator: who may open a policy stream', () => {
  const refused = async (pod: string, token: string) => {
    const s = await connect(pod, { token });
    const end = await s.waitForEnd();
    assert.equal(s.bundles.length, 0, 'no bundle before authentication');
    return end;
  };

  test('an expired token is UNAUTHENTICATED', async () => {
    const p = pods['orders-1'] as V1Pod;
    const end = await refused('orders-1', await podToken(env, p, { expirationSeconds: -120 }));
    assert.equal(end.code, GrpcStatus.UNAUTHENTICATED);
    assert.match(end.details, /expired/i);
  });

  test('a token for another audience, or signed by an unknown key, is UNAUTHENTICATED', async () => {
    const p = pods['orders-1'] as V1Pod;
    assert.equal(
      (await refused('orders-1', await podToken(env, p, { audiences: ['vault'] }))).code,
      GrpcStatus.UNAUTHENTICATED,
    );
    assert.equal(
      (await refused('orders-1', await podToken(env, p, { signingKey: 'foreign' }))).code,
      GrpcStatus.UNAUTHENTICATED,
    );
    assert.equal((await refused('orders-1', 'not-a-jwt')).code, GrpcStatus.UNAUTHENTICATED);
  });

  test("another pod's token is PERMISSION_DENIED", async () => {
    const web = pods['web-1'] as V1Pod;
    const end = await refused('orders-1', await podToken(env, web));
    assert.equal(end.code, GrpcStatus.PERMISSION_DENIED);
    const sameSa = await refused('orders-1', await podToken(env, pods['orders-2'] as V1Pod));
    assert.equal(sameSa.code, GrpcStatus.PERMISSION_DENIED, 'bound to orders-2, presented for orders-1');
    assert.match(sameSa.details, /bound to pod orders-2/);
  });

  test('a token for a pod that does not exist is PERMISSION_DENIED; no token is UNAUTHENTICATED', async () => {
    const s = new SimulatedSidecar({
      address: op.address,
      ca: env.ca.cert,
      serverName: 'localhost',
      hello: { podName: 'ghost', podNamespace: NS, token: await podToken(env, pods['orders-1'] as V1Pod) },
    });
    sidecars.push(s);
    assert.equal((await s.waitForEnd()).code, GrpcStatus.PERMISSION_DENIED);
    assert.equal((await refused('orders-1', '')).code, GrpcStatus.UNAUTHENTICATED);
  });

  test('the token never appears in the operator log', () => {
    const text = JSON.stringify(op.log.entries);
    assert.doesNotMatch(text, /eyJ[A-Za-z0-9_-]{10,}/);
    assert.ok(op.log.messages('sidecar refused').length >= 5);
  });
});

describe('operator: two replicas', () => {
  test('only the leader writes status; a sidecar on the follower counts through its pod annotation', async () => {
    const second = await startOperator(env, 'replica-2');
    try {
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(op.operator.leader, true);
      assert.equal(second.operator.leader, false);
      await apply(policyManifest('orders', { selector: { app: 'orders' }, paths: ['/again'] }));
      // orders-1's sidecar moves to the follower: the leader hears of its ACKs only through the pod.
      sidecars[1]?.close();
      const follower = await connect('orders-1', { address: second.address });
      await follower.waitForBundle((b) => names(b).includes('orders'));
      const p = await statusOf('orders', (x) => condition(x, 'Programmed')?.status === 'True');
      assert.deepEqual(p.status?.workloads, { selected: 2, programmed: 2 });
      assert.equal(second.operator.sessions.size, 1);
      const pod = await env.core.readNamespacedPod({ namespace: NS, name: 'orders-1' });
      assert.equal(pod.metadata?.annotations?.['tollgate.dev/policy-version'], follower.latest?.version);
      // The leader stops: the follower takes over and keeps status current.
      await op.operator.stop();
      await waitFor('the follower leading', () => second.operator.leader, 5000);
      await replaceSpec(
        'orders',
        policyManifest('x', { selector: { app: 'orders' }, paths: ['/after'] }).spec as never,
      );
      await follower.waitForBundle((b) => b.json.includes('/after'));
      const q = await statusOf('orders', (x) => x.status?.observedGeneration === 2);
      assert.equal(condition(q, 'Accepted')?.status, 'True');
    } finally {
      await second.operator.stop();
    }
  });
});
