/**
 * An operator-meshed workload for mTLS tests and the rotation bench: the
 * Kubernetes API test server with the operator in-process (its workload CA
 * in Secret tollgate-ca, workload certificates of `ttlMs`), namespace `shop`
 * with pods orders-1, billing-1 and web-1, a Strict ApiPolicy on orders
 * (`/v1/invoices` admits only the billing SPIFFE ID, `/v1/open` is public),
 * and a real `tollgate agent --operator` process for orders-1 in front of a
 * recording upstream. Needs `npm run build` (bin/tollgate runs dist/).
 */
import 'reflect-metadata';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type PeerCertificate, connect as tlsConnect } from 'node:tls';
import type { V1Pod } from '@kubernetes/client-node';
import { callSign, newKeyAndCsr } from '../../agent/identity/sign-client.ts';
import { type AgentProcess, startAgent, startUpstream } from './agent-process.ts';
import type { PemPair } from './certs.ts';
import {
  createApiPolicy,
  createNamespace,
  createPod,
  createWorkloadCa,
  type OperatorEnv,
  operatorAgentLaunch,
  podToken,
  type StartedOperator,
  startOperator,
  startOperatorEnv,
  untilWorkloadIdentity,
} from './operator-env.ts';

export const NS = 'shop';
export const TD = 'spiffe://cluster.local';
export const ORDERS = `${TD}/ns/${NS}/sa/orders`;
export const BILLING = `${TD}/ns/${NS}/sa/billing`;

export interface MeshedOrders {
  env: OperatorEnv;
  op: StartedOperator;
  /** The workload CA: what the agent's certificate chains to. */
  workloadCa: PemPair;
  upstream: Awaited<ReturnType<typeof startUpstream>>;
  agent: AgentProcess;
  pods: Record<string, V1Pod>;
  /** A certificate the operator signs for `pod` (its own token), as a sidecar would get it. */
  signedFor(pod: string): Promise<PemPair>;
  /** Checks that the agent presents the orders SPIFFE ID (no DNS name: the URI SAN is checked). */
  checkServer(host: string, cert: PeerCertificate): Error | undefined;
  /** The serial of the certificate the agent presents to a new connection from `client`. */
  servedSerial(client: PemPair): Promise<string>;
  close(): Promise<void>;
}

/** Starts the environment, the operator (workload certificates of `ttlMs`) and the orders agent; resolves once it holds its first certificate. */
export async function startMeshedOrders(options: { ttlMs: number }): Promise<MeshedOrders> {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-meshed-'));
  const env = await startOperatorEnv();
  let op: StartedOperator | undefined;
  let upstream: MeshedOrders['upstream'] | undefined;
  let agent: AgentProcess | undefined;
  const close = async () => {
    if (agent && agent.proc.exitCode === null) {
      const exited = new Promise((r) => agent?.proc.once('exit', r));
      agent.proc.kill('SIGKILL');
      await exited;
    }
    upstream?.server.closeAllConnections();
    upstream?.server.close();
    await op?.operator.stop();
    await env.close();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const workloadCa = await createWorkloadCa(env);
    await createNamespace(env, NS, 'orders');
    for (const sa of ['billing', 'web'])
      await env.core.createNamespacedServiceAccount({ namespace: NS, body: { metadata: { name: sa } } });
    const pods: Record<string, V1Pod> = {};
    for (const [name, sa] of [
      ['orders-1', 'orders'],
      ['billing-1', 'billing'],
      ['web-1', 'web'],
    ] as const)
      pods[name] = await createPod(env, NS, name, { app: sa }, { serviceAccount: sa });
    await createApiPolicy(env, NS, 'orders', {
      selector: { matchLabels: { app: 'orders' } },
      mtls: { mode: 'Strict' },
      routes: [
        { name: 'invoices', methods: ['GET'], path: '/v1/invoices', allow: [{ peers: [BILLING] }] },
        { name: 'open', methods: ['GET'], path: '/v1/open', public: true },
      ],
    });
    op = await startOperator(env, 'replica-1', { workloadCertTtlMs: options.ttlMs });
    const operator = op;
    upstream = await startUpstream();
    const launch = await operatorAgentLaunch(env, op.address, pods['orders-1'] as V1Pod, dir);
    // Traffic tests send tens of thousands of requests: an access line each would load this process.
    const started = await startAgent(
      null,
      upstream.port,
      [...launch.args, '--access-log', 'off'],
      launch.options,
    );
    agent = started;
    await untilWorkloadIdentity(started);
    const checkServer = (_host: string, cert: PeerCertificate) =>
      cert.subjectaltname === `URI:${ORDERS}`
        ? undefined
        : new Error(`unexpected server ${cert.subjectaltname}`);
    return {
      env,
      op,
      workloadCa,
      upstream,
      agent: started,
      pods,
      checkServer,
      async signedFor(pod) {
        const { key, csr } = await newKeyAndCsr();
        const token = await podToken(env, pods[pod] as V1Pod);
        const out = await callSign(
          { target: operator.address, ca: env.ca.cert, serverName: 'localhost' },
          { podName: pod, podNamespace: NS, token, csr },
        );
        return { cert: out.certChain.join('\n'), key };
      },
      servedSerial(client) {
        return new Promise((resolve, reject) => {
          const s = tlsConnect(
            {
              host: '127.0.0.1',
              port: started.port,
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
      },
      close,
    };
  } catch (e) {
    await close();
    throw e;
  }
}
