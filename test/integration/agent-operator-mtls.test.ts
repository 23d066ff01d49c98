/**
 * Operator-issued mTLS end to end: a real operator (in-process, on the
 * Kubernetes API test server, its CA in Secret tollgate-ca) signs the
 * certificate of a real `tollgate agent --operator` process. Strict refuses
 * plaintext; a peer with a certificate the operator signed for another pod is
 * admitted by `peers`, one not listed gets 403, one from another CA is
 * refused; with a 20 s certificate the agent renews twice under continuous
 * keep-alive traffic without failing a request.
 */
import 'reflect-metadata';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type PeerCertificate, connect as tlsConnect } from 'node:tls';
import type { V1Pod } from '@kubernetes/client-node';
import { callSign, newKeyAndCsr } from '../../agent/identity/sign-client.ts';
import { type AgentProcess, eventually, send, startAgent, startUpstream } from '../support/agent-process.ts';
import { createCa, issueCertificate } from '../support/certs.ts';
import {
  createNamespace,
  createPod,
  createWorkloadCa,
  type OperatorEnv,
  podToken,
  type StartedOperator,
  startOperator,
  startOperatorEnv,
} from '../support/operator-env.ts';

const NS = 'shop';
const TD = 'spiffe://cluster.local';
const ORDERS = `${TD}/ns/${NS}/sa/orders`;
const BILLING = `${TD}/ns/${NS}/sa/billing`;
const TTL_MS = 20_000;

interface ClientCert {
  cert: string;
  key: string;
}

interface Reply {
  status: number;
  error?: string;
}

describe('tollgate agent --operator with operator-issued mTLS', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-op-mtls-'));
  const files = { ca: join(dir, 'operator-ca.crt'), token: join(dir, 'token') };
  let env: OperatorEnv;
  let op: StartedOperator;
  let workloadCa: ClientCert;
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  let agent: AgentProcess;
  const pods: Record<string, V1Pod> = {};

  /** A certificate the operator signs for `pod` (its own token). */
  async function signedFor(pod: string): Promise<ClientCert> {
    const { key, csr } = await newKeyAndCsr();
    const token = await podToken(env, pods[pod] as V1Pod);
    const out = await callSign(
      { target: op.address, ca: env.ca.cert },
      { podName: pod, podNamespace: NS, token, csr },
    );
    return { cert: out.certChain.join('\n'), key };
  }

  /** The agent must present the orders workload's SPIFFE ID (no DNS name: the URI SAN is checked). */
  const checkServer = (_host: string, cert: PeerCertificate) =>
    cert.subjectaltname === `URI:${ORDERS}`
      ? undefined
      : new Error(`unexpected server ${cert.subjectaltname}`);

  function get(
    path: string,
    client: ClientCert | null,
    agentOption: HttpsAgent | false = false,
  ): Promise<Reply> {
    return new Promise((resolve) => {
      const req = httpsRequest(
        {
          host: '127.0.0.1',
          port: agent.port,
          path,
          ca: workloadCa.cert,
          checkServerIdentity: checkServer,
          ...(client ?? {}),
          agent: agentOption,
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode ?? 0 }));
        },
      );
      req.on('error', (e) => resolve({ status: 0, error: e.message }));
      req.end();
    });
  }

  /** The serial of the certificate the agent presents to a new connection. */
  function servedSerial(client: ClientCert): Promise<string> {
    return new Promise((resolve, reject) => {
      const s = tlsConnect(
        {
          host: '127.0.0.1',
          port: agent.port,
          ca: workloadCa.cert,
          checkServerIdentity: checkServer,
          ...client,
        },
        () => {
          const serial = s.getPeerX509Certificate()?.serialNumber ?? '';
          s.end();
          resolve(serial);
        },
      );
      s.on('error', reject);
    });
  }

  before(async () => {
    env = await startOperatorEnv();
    workloadCa = await createWorkloadCa(env);
    await createNamespace(env, NS, 'orders');
    for (const sa of ['billing', 'web'])
      await env.core.createNamespacedServiceAccount({ namespace: NS, body: { metadata: { name: sa } } });
    for (const [name, sa] of [
      ['orders-1', 'orders'],
      ['billing-1', 'billing'],
      ['web-1', 'web'],
    ] as const)
      pods[name] = await createPod(env, NS, name, { app: sa }, { serviceAccount: sa });
    await env.custom.createNamespacedCustomObject({
      group: 'tollgate.dev',
      version: 'v1alpha1',
      plural: 'apipolicies',
      namespace: NS,
      body: {
        apiVersion: 'tollgate.dev/v1alpha1',
        kind: 'ApiPolicy',
        metadata: { name: 'orders' },
        spec: {
          selector: { matchLabels: { app: 'orders' } },
          mtls: { mode: 'Strict' },
          routes: [
            { name: 'invoices', methods: ['GET'], path: '/v1/invoices', allow: [{ peers: [BILLING] }] },
            { name: 'open', methods: ['GET'], path: '/v1/open', public: true },
          ],
        },
      },
    });
    op = await startOperator(env, 'replica-1', { workloadCertTtlMs: TTL_MS });
    writeFileSync(files.ca, env.ca.cert);
    writeFileSync(files.token, await podToken(env, pods['orders-1'] as V1Pod));
    upstream = await startUpstream();
    agent = await startAgent(
      null,
      upstream.port,
      [
        '--operator',
        op.address,
        '--operator-ca',
        files.ca,
        '--operator-server-name',
        'localhost',
        '--token-file',
        files.token,
        '--operator-backoff-ms',
        '50,400',
      ],
      { env: { POD_NAME: 'orders-1', POD_NAMESPACE: NS } },
    );
    await eventually(
      async () =>
        agent.output().includes('workload certificate issued') &&
        (await fetch(`http://127.0.0.1:${agent.admin}/readyz`)).status === 200,
      10_000,
    );
  });

  after(async () => {
    if (agent && agent.proc.exitCode === null) {
      const exited = new Promise((r) => agent.proc.once('exit', r));
      agent.proc.kill('SIGKILL');
      await exited;
    }
    upstream?.server.close();
    await op?.operator.stop();
    await env?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the agent logs its SPIFFE ID from the operator; the key never touches the disk', () => {
    assert.match(agent.output(), new RegExp(`"spiffeId":"${ORDERS}".*"msg":"workload certificate issued"`));
    assert.doesNotMatch(agent.output(), /PRIVATE KEY/);
  });

  test('the expiry of the certificate in force is a metric', async () => {
    const text = await (await fetch(`http://127.0.0.1:${agent.admin}/metrics`)).text();
    const m = /^tollgate_mtls_certificate_expiry_timestamp_seconds (\S+)$/m.exec(text);
    const expiry = Number(m?.[1]) * 1000;
    assert.ok(expiry > Date.now() && expiry <= Date.now() + TTL_MS, text.slice(0, 200));
  });

  test('Strict: plaintext is refused (403)', async () => {
    assert.equal((await send(agent.port, '/v1/open')).status, 403);
  });

  test('a peer signed for another pod is admitted by peers; one not in peers gets 403', async () => {
    const billing = await signedFor('billing-1');
    const web = await signedFor('web-1');
    assert.equal((await get('/v1/invoices', billing)).status, 200);
    assert.equal((await get('/v1/invoices', web)).status, 403);
    assert.equal((await get('/v1/open', web)).status, 200);
  });

  test('a client certificate from another CA is refused', async () => {
    const other = await createCa({ commonName: 'elsewhere' });
    const foreign = await issueCertificate(other, { uris: [BILLING], usages: 'client' });
    const r = await get('/v1/invoices', foreign);
    assert.equal(r.status, 0);
    assert.ok(r.error);
    const none = await get('/v1/open', null);
    assert.equal(none.status, 0, 'no client certificate: refused');
  });

  test('renewal under continuous keep-alive traffic: two new certificates, no failed request', async () => {
    const deadline = Date.now() + 25_000;
    let client = await signedFor('billing-1');
    let pool = new HttpsAgent({ keepAlive: true, maxSockets: 4 });
    const pools = [pool];
    const serials = new Set<string>([await servedSerial(client)]);
    const failures: string[] = [];
    let ok = 0;
    // The client's own certificate lives 20 s too: it renews it like a sidecar would, on a new pool.
    const refresher = (async () => {
      while (Date.now() < deadline - 8000) {
        await new Promise((r) => setTimeout(r, 8000));
        client = await signedFor('billing-1');
        pool = new HttpsAgent({ keepAlive: true, maxSockets: 4 });
        pools.push(pool);
      }
    })();
    const worker = async () => {
      while (Date.now() < deadline) {
        const r = await get('/v1/invoices', client, pool);
        if (r.status === 200) ok++;
        else failures.push(r.error ?? String(r.status));
        await new Promise((res) => setTimeout(res, 15));
      }
    };
    const prober = async () => {
      while (Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 500));
        serials.add(await servedSerial(client));
      }
    };
    await Promise.all([worker(), worker(), worker(), worker(), prober(), refresher]);
    for (const p of pools) p.destroy();
    assert.deepEqual(failures, []);
    assert.ok(ok > 1000, `${ok} requests`);
    assert.ok(serials.size >= 3, `served serials: ${[...serials].join(', ')}`);
    const issued = agent
      .output()
      .split('\n')
      .filter((l) => l.includes('workload certificate issued'));
    assert.ok(issued.length >= 3, `${issued.length} certificates issued`);
  });
});
