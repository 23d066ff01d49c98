/**
 * The mesh end to end with the real operator and real agents (operator mode,
 * operator-issued certificates): the operator streams the meshed pods (IPs,
 * captured ports, SPIFFE IDs) and the caller's agent originates mTLS to the
 * destination's agent, whose Strict policy then decides on the caller's
 * identity. Without iptables here, the destination pod's "captured port" is
 * its agent's inbound port itself, and a TCP proxy on 127.0.0.3 stands for
 * kube-proxy in front of a Service's cluster IP.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { V1Pod } from '@kubernetes/client-node';
import { type AgentProcess, eventually, startAgent, startUpstream } from '../support/agent-process.ts';
import {
  createApiPolicy,
  createNamespace,
  createPod,
  createWorkloadCa,
  freePort,
  type OperatorEnv,
  operatorAgentLaunch,
  type StartedOperator,
  startOperator,
  startOperatorEnv,
} from '../support/operator-env.ts';
import { TcpProxy } from '../support/tcp-proxy.ts';

const NS = 'shop';
const TD = 'spiffe://cluster.local';
const WEB = `${TD}/ns/${NS}/sa/web`;

interface Reply {
  status: number;
  body: string;
}

/** A plain HTTP GET with a Host header, as the app's client sends it to the outbound listener. */
function get(port: number, host: string, path: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers: { host }, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

const lines = (agent: AgentProcess, msg: string) =>
  agent
    .output()
    .split('\n')
    .filter((l) => l.includes(`"msg":"${msg}"`))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe('operator mesh: agents originate mTLS to meshed pods', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-mesh-'));
  let env: OperatorEnv;
  let op: StartedOperator;
  let orders: AgentProcess;
  let web: AgentProcess;
  let ordersPort: number;
  let clusterIp: TcpProxy;
  const upstreams: { server: { close(): void } }[] = [];

  async function operatorAgent(pod: V1Pod, extra: string[]): Promise<AgentProcess> {
    const upstream = await startUpstream();
    upstreams.push(upstream);
    const { args, options } = await operatorAgentLaunch(env, op.address, pod, dir);
    return startAgent(null, upstream.port, [...args, ...extra], options);
  }

  before(async () => {
    env = await startOperatorEnv();
    await createWorkloadCa(env);
    await createNamespace(env, NS, 'orders');
    await env.core.createNamespacedServiceAccount({ namespace: NS, body: { metadata: { name: 'web' } } });
    ordersPort = await freePort();
    const ordersPod = await createPod(
      env,
      NS,
      'orders-1',
      { app: 'orders' },
      { serviceAccount: 'orders', capturedPorts: [ordersPort], ip: '127.0.0.1' },
    );
    const webPod = await createPod(
      env,
      NS,
      'web-1',
      { app: 'web' },
      { serviceAccount: 'web', capturedPorts: [8080], ip: '127.0.0.2' },
    );
    await createApiPolicy(env, NS, 'orders', {
      selector: { matchLabels: { app: 'orders' } },
      mtls: { mode: 'Strict' },
      routes: [
        { name: 'from-web', methods: ['GET'], path: '/v1/from-web', allow: [{ peers: [WEB] }] },
        { name: 'open', methods: ['GET'], path: '/v1/open', public: true },
      ],
    });
    // The orders Service: cluster IP 127.0.0.3, its port forwarded to the pod's (as kube-proxy's DNAT would).
    clusterIp = await TcpProxy.start(`http://127.0.0.1:${ordersPort}`, '127.0.0.3');
    await env.core.createNamespacedService({
      namespace: NS,
      body: {
        metadata: { name: 'orders' },
        spec: {
          selector: { app: 'orders' },
          clusterIP: '127.0.0.3',
          ports: [{ name: 'http', port: clusterIp.port, targetPort: ordersPort }],
        },
      },
    });
    op = await startOperator(env, 'replica-1', { meshDebounceMs: 50 });
    orders = await operatorAgent(ordersPod, ['--listen', `127.0.0.1:${ordersPort}`]);
    web = await operatorAgent(webPod, ['--outbound', '127.0.0.1:0']);
    await eventually(
      async () =>
        [orders, web].every((a) => a.output().includes('workload certificate issued')) &&
        lines(web, 'mesh updated').some((l) => l.endpoints === 3),
      15_000,
    );
  });

  after(async () => {
    for (const agent of [orders, web]) {
      if (agent && agent.proc.exitCode === null) {
        const exited = new Promise((r) => agent.proc.once('exit', r));
        agent.proc.kill('SIGKILL');
        await exited;
      }
    }
    for (const u of upstreams) u.server.close();
    await clusterIp?.close();
    await op?.operator.stop();
    await env?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test("web's outbound call to orders goes over mTLS; orders' Strict policy allows it on web's SPIFFE ID", async () => {
    const reply = await get(web.outbound as number, `127.0.0.1:${ordersPort}`, '/v1/from-web');
    assert.equal(reply.status, 200, reply.body);
    // Access lines are written once each exchange is over: wait for them.
    const line = async (agent: AgentProcess, msg: string, path: string) => {
      await eventually(async () => lines(agent, msg).some((l) => l.path === path), 5_000);
      return lines(agent, msg).find((l) => l.path === path);
    };
    const inbound = await line(orders, 'request', '/v1/from-web');
    assert.deepEqual([inbound?.route, inbound?.status, inbound?.clientKey], ['from-web', 200, WEB]);
    const outbound = await line(web, 'outbound request', '/v1/from-web');
    assert.equal(outbound?.mtls, true);
  });

  test("through the orders Service's cluster IP: mTLS too (kube-proxy forwards the TLS bytes)", async () => {
    const reply = await get(
      web.outbound as number,
      `127.0.0.3:${clusterIp.port}`,
      '/v1/from-web?via=service',
    );
    assert.equal(reply.status, 200, reply.body);
    await eventually(
      async () => lines(web, 'outbound request').some((l) => l.destination === `127.0.0.3:${clusterIp.port}`),
      5_000,
    );
    const outbound = lines(web, 'outbound request').find(
      (l) => l.destination === `127.0.0.3:${clusterIp.port}`,
    );
    assert.equal(outbound?.mtls, true);
    assert.ok(clusterIp.connections > 0, 'the call went through the cluster IP');
  });

  test('a plaintext call straight to orders is refused by its Strict policy', async () => {
    const reply = await get(ordersPort, `127.0.0.1:${ordersPort}`, '/v1/open');
    assert.equal(reply.status, 403);
    assert.equal(JSON.parse(reply.body).code, 'ERR_MTLS_REQUIRED');
  });

  test('the mesh follows the pods: once orders-1 is gone, web sends plaintext (and Strict refuses it)', async () => {
    await env.core.deleteNamespacedPod({ namespace: NS, name: 'orders-1' });
    // Left: web's own pod (the orders pod and its Service, which selects nothing now, are gone).
    await eventually(async () => lines(web, 'mesh updated').some((l) => l.endpoints === 1), 10_000);
    const reply = await get(web.outbound as number, `127.0.0.1:${ordersPort}`, '/v1/open');
    assert.equal(reply.status, 403, reply.body);
    assert.equal(JSON.parse(reply.body).code, 'ERR_MTLS_REQUIRED');
    await eventually(async () => lines(web, 'outbound request').some((l) => l.path === '/v1/open'), 5_000);
    const outbound = lines(web, 'outbound request').find((l) => l.path === '/v1/open');
    assert.equal(outbound?.mtls, false);
  });
});
