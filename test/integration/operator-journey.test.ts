/**
 * The whole journey with real processes: `tollgate operator` against the
 * Kubernetes API test server (driven through the real client-node), and a real
 * `tollgate agent --operator` in front of a real upstream, authenticated with a
 * bound ServiceAccount token the test server issued. Apply, edit, invalid,
 * conflict, delete, operator outage with an agent restart, recovery, and
 * refused tokens.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { V1Pod } from '@kubernetes/client-node';
import { type AgentProcess, eventually, send, startAgent, startUpstream } from '../support/agent-process.ts';
import {
  createNamespace,
  createPod,
  freePort,
  type OperatorEnv,
  type OperatorProcess,
  type PolicyObject,
  podToken,
  policyManifest,
  startOperatorEnv,
  startOperatorProcess,
  writeKubeconfig,
} from '../support/operator-env.ts';

const NS = 'shop';
const API = { group: 'tollgate.dev', version: 'v1alpha1', plural: 'apipolicies', namespace: NS };

describe('operator + agent journey (real processes)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-journey-'));
  const files = {
    kubeconfig: join(dir, 'kubeconfig'),
    ca: join(dir, 'ca.crt'),
    token: join(dir, 'token'),
    state: join(dir, 'state'),
  };
  let env: OperatorEnv;
  let operator: OperatorProcess;
  let grpcPort: number;
  let healthPort: number;
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  let agent: AgentProcess;
  const agents: AgentProcess[] = [];
  const pods: Record<string, V1Pod> = {};

  const get = async (path: string, a: AgentProcess = agent) => (await send(a.port, path)).status;

  async function startSidecar(
    tokenFile = files.token,
    stateDir: string | null = files.state,
  ): Promise<AgentProcess> {
    const a = await startAgent(
      null,
      upstream.port,
      [
        '--operator',
        `127.0.0.1:${grpcPort}`,
        '--operator-ca',
        files.ca,
        '--operator-server-name',
        'localhost',
        '--token-file',
        tokenFile,
        ...(stateDir ? ['--state-dir', stateDir] : []),
        '--operator-backoff-ms',
        '50,400',
      ],
      { env: { POD_NAME: 'orders-1', POD_NAMESPACE: NS } },
    );
    agents.push(a);
    return a;
  }

  async function stopAgent(a: AgentProcess): Promise<void> {
    if (a.proc.exitCode !== null || a.proc.signalCode !== null) return;
    const exited = new Promise((r) => a.proc.once('exit', r));
    a.proc.kill('SIGKILL');
    await exited;
  }

  async function policy(name: string): Promise<PolicyObject> {
    return (await env.custom.getNamespacedCustomObject({ ...API, name })) as PolicyObject;
  }

  async function statusOf(name: string, check: (p: PolicyObject) => boolean): Promise<PolicyObject> {
    let last: PolicyObject | undefined;
    await eventually(async () => {
      last = await policy(name);
      return check(last);
    }, 8000).catch(() => assert.fail(`status of ${name}: ${JSON.stringify(last?.status)}`));
    return last as PolicyObject;
  }

  const cond = (p: PolicyObject, type: string) => p.status?.conditions?.find((c) => c.type === type);

  async function replaceSpec(name: string, spec: unknown): Promise<void> {
    const current = await policy(name);
    await env.custom.replaceNamespacedCustomObject({ ...API, name, body: { ...current, spec } });
  }

  before(async () => {
    env = await startOperatorEnv();
    await createNamespace(env, NS, 'orders');
    await env.core.createNamespacedServiceAccount({ namespace: NS, body: { metadata: { name: 'web' } } });
    pods['orders-1'] = await createPod(env, NS, 'orders-1', { app: 'orders' }, { serviceAccount: 'orders' });
    pods['web-1'] = await createPod(env, NS, 'web-1', { app: 'web' }, { serviceAccount: 'web' });
    writeKubeconfig(env, files.kubeconfig);
    writeFileSync(files.ca, env.ca.cert);
    writeFileSync(files.token, await podToken(env, pods['orders-1'] as V1Pod));
    [grpcPort, healthPort] = [await freePort(), await freePort()];
    operator = await startOperatorProcess(files.kubeconfig, grpcPort, healthPort);
    upstream = await startUpstream();
    agent = await startSidecar();
  });

  after(async () => {
    await Promise.all(agents.map(stopAgent));
    await operator?.kill();
    upstream?.server.close();
    await env?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('no policy selects the pod yet: the agent denies (403)', async () => {
    await eventually(async () => (await get('/v1/orders')) === 403);
    assert.equal((await fetch(`http://127.0.0.1:${agent.admin}/readyz`)).status, 200);
  });

  test('apply: the agent enforces it; Accepted=True, Programmed=True, workloads 1/1', async () => {
    await env.custom.createNamespacedCustomObject({
      ...API,
      body: policyManifest('orders', { selector: { app: 'orders' }, paths: ['/v1/orders'] }),
    });
    await eventually(async () => (await get('/v1/orders')) === 200);
    assert.equal(await get('/v1/other'), 404);
    const p = await statusOf('orders', (x) => cond(x, 'Programmed')?.status === 'True');
    assert.equal(cond(p, 'Accepted')?.status, 'True');
    assert.deepEqual(p.status?.workloads, { selected: 1, programmed: 1 });
  });

  test('edit: the new behaviour is enforced within 1 s', async () => {
    const t0 = performance.now();
    await replaceSpec(
      'orders',
      policyManifest('x', { selector: { app: 'orders' }, paths: ['/v2/orders'] }).spec,
    );
    await eventually(async () => (await get('/v2/orders')) === 200, 1000);
    const took = performance.now() - t0;
    assert.ok(took < 1000, `took ${took} ms`);
    assert.equal(await get('/v1/orders'), 404);
    await statusOf(
      'orders',
      (x) => x.status?.observedGeneration === 2 && cond(x, 'Programmed')?.status === 'True',
    );
  });

  test('invalid: Accepted=False with the path and message; the old policy keeps running', async () => {
    await replaceSpec('orders', {
      selector: { matchLabels: { app: 'orders' } },
      routes: [{ name: 'dup', path: '/v3/{id}/{id}', methods: ['GET'], public: true }],
    });
    const p = await statusOf('orders', (x) => x.status?.observedGeneration === 3);
    assert.equal(cond(p, 'Accepted')?.reason, 'Invalid');
    assert.match(cond(p, 'Accepted')?.message ?? '', /^spec\.routes\[0\]\.path: /);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(await get('/v2/orders'), 200);
  });

  test('two conflicting policies: the newer is Conflicted and changes nothing', async () => {
    await replaceSpec(
      'orders',
      policyManifest('x', { selector: { app: 'orders' }, paths: ['/v4/orders'] }).spec,
    );
    await eventually(async () => (await get('/v4/orders')) === 200);
    await new Promise((r) => setTimeout(r, 1100)); // creationTimestamp has one-second resolution
    await env.custom.createNamespacedCustomObject({
      ...API,
      body: policyManifest('orders-new', { selector: { app: 'orders' }, paths: ['/new'] }),
    });
    const p = await statusOf('orders-new', (x) => cond(x, 'Accepted')?.reason === 'Conflicted');
    assert.equal(cond(p, 'Accepted')?.status, 'False');
    assert.equal(await get('/new'), 404);
    assert.equal(await get('/v4/orders'), 200);
    await env.custom.deleteNamespacedCustomObject({ ...API, name: 'orders-new' });
  });

  test('delete: the agent falls back to deny', async () => {
    await env.custom.deleteNamespacedCustomObject({ ...API, name: 'orders' });
    await eventually(async () => (await get('/v4/orders')) === 403);
    await env.custom.createNamespacedCustomObject({
      ...API,
      body: policyManifest('orders', { selector: { app: 'orders' }, paths: ['/v5/orders'] }),
    });
    await eventually(async () => (await get('/v5/orders')) === 200);
  });

  test('operator killed: the agent keeps enforcing, also after a restart (state dir); operator back: converges', async () => {
    await operator.kill();
    assert.equal(await get('/v5/orders'), 200);
    await stopAgent(agent);
    agent = await startSidecar();
    assert.equal(await get('/v5/orders'), 200, 'enforces the bundle from its state dir at once');
    assert.equal((await fetch(`http://127.0.0.1:${agent.admin}/readyz`)).status, 200);
    assert.equal(await get('/v6/orders'), 404);
    // A change while the operator is down reaches the agent once it is back.
    await replaceSpec(
      'orders',
      policyManifest('x', { selector: { app: 'orders' }, paths: ['/v6/orders'] }).spec,
    );
    operator = await startOperatorProcess(files.kubeconfig, grpcPort, healthPort);
    await eventually(async () => (await get('/v6/orders')) === 200, 8000);
    const p = await statusOf('orders', (x) => cond(x, 'Programmed')?.status === 'True');
    assert.deepEqual(p.status?.workloads, { selected: 1, programmed: 1 });
  });

  test('a client blocked by protection becomes a Warning Event on the pod', async () => {
    await replaceSpec('orders', {
      ...(policyManifest('x', { selector: { app: 'orders' }, paths: ['/v7/orders'] }).spec as Record<
        string,
        unknown
      >),
      protection: { unmatched: { threshold: 2, window: '1m', block: '1m' } },
    });
    await eventually(async () => (await get('/v7/orders')) === 200);
    // Scanning undeclared paths (404 each, the contract's order) blocks the client on the next request.
    for (let i = 0; i < 3; i++) assert.equal(await get(`/probe-${i}`), 404);
    assert.equal(await get('/v7/orders'), 429);
    let message = '';
    await eventually(async () => {
      const events = await env.core.listNamespacedEvent({ namespace: NS });
      const e = events.items.find(
        (x) => x.reason === 'ClientBlocked' && x.involvedObject.name === 'orders-1',
      );
      message = e?.message ?? '';
      return e?.type === 'Warning' && e.involvedObject.kind === 'Pod';
    });
    assert.match(message, /protection blocked client .+ \(unmatched\) until .+; policy shop\/orders/);
  });

  test("a stale token, or another pod's token, is refused: that agent never gets a bundle (503)", async () => {
    const cases = {
      stale: await podToken(env, pods['orders-1'] as V1Pod, { expirationSeconds: -120 }),
      other: await podToken(env, pods['web-1'] as V1Pod),
    };
    for (const [name, token] of Object.entries(cases)) {
      const file = join(dir, `token-${name}`);
      writeFileSync(file, token);
      const a = await startSidecar(file, null);
      await new Promise((r) => setTimeout(r, 600));
      assert.equal(await get('/v6/orders', a), 503, name);
      assert.equal((await fetch(`http://127.0.0.1:${a.admin}/readyz`)).status, 503, name);
      await stopAgent(a);
    }
    const refusals = operator
      .output()
      .split('\n')
      .filter((l) => l.includes('sidecar refused'));
    assert.ok(
      refusals.some((l) => l.includes('UNAUTHENTICATED')),
      'the stale token',
    );
    assert.ok(
      refusals.some((l) => l.includes('PERMISSION_DENIED')),
      "the other pod's token",
    );
    assert.doesNotMatch(operator.output(), /eyJ[A-Za-z0-9_-]{20,}/, 'no token in the operator log');
  });
});
