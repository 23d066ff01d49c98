/**
 * The mesh trust bundle in the policy stream, end to end: a real operator
 * (in-process, on the Kubernetes API test server, cert-manager style CA
 * Secret tollgate-ca) and a real `tollgate agent --operator` process with
 * operator-issued mTLS. The agent gets the bundle on stream start; a root
 * rotation done on the Secret stage by stage (ca.crt old+new, then signing
 * with the new root, then the new root alone) reaches it without a restart:
 * a peer whose leaf chains to the new root is refused before stage 1 and
 * admitted after it, and a keep-alive connection opened before survives. A
 * damaged ca.crt edit never replaces the good bundle; a malformed TrustBundle
 * message (from a stand-in operator) is rejected by the agent, which keeps
 * its bundle, also across a restart from its state directory.
 */
import 'reflect-metadata';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type PeerCertificate, connect as tlsConnect } from 'node:tls';
import { PatchStrategy, setHeaderOptions, type V1Pod } from '@kubernetes/client-node';
import { callSign, newKeyAndCsr } from '../../agent/identity/sign-client.ts';
import { signedBy } from '../../operator/ca/certificates.ts';
import { trustBundleVersion } from '../../proto/policy-service.ts';
import { type AgentProcess, eventually, startAgent, startUpstream } from '../support/agent-process.ts';
import { createCa, issueCertificate, type TestCa } from '../support/certs.ts';
import {
  createApiPolicy,
  createNamespace,
  createPod,
  createWorkloadCa,
  type OperatorEnv,
  operatorAgentLaunch,
  podToken,
  type StartedOperator,
  SYSTEM_NS,
  startOperator,
  startOperatorEnv,
  untilWorkloadIdentity,
} from '../support/operator-env.ts';
import { bundleOf, FakeOperator } from '../support/operator-server.ts';

const NS = 'shop';
const TD = 'spiffe://cluster.local';
const ORDERS = `${TD}/ns/${NS}/sa/orders`;
const BILLING = `${TD}/ns/${NS}/sa/billing`;

interface ClientCert {
  cert: string;
  key: string;
}

const b64 = (t: string) => Buffer.from(t).toString('base64');

async function kill(agent: AgentProcess | undefined): Promise<void> {
  if (!agent || agent.proc.exitCode !== null) return;
  const exited = new Promise((r) => agent.proc.once('exit', r));
  agent.proc.kill('SIGKILL');
  await exited;
}

/** The version label of `tollgate_mtls_trust_bundle_info` on the agent's admin port ('' none). */
async function agentTrustVersion(agent: AgentProcess): Promise<string> {
  const text = await (await fetch(`http://127.0.0.1:${agent.admin}/metrics`)).text();
  return /^tollgate_mtls_trust_bundle_info\{version="([^"]+)"\} 1$/m.exec(text)?.[1] ?? '';
}

describe('trust bundle in the policy stream: root rotation with a real operator and agent', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-trust-'));
  const files = { state: join(dir, 'state') };
  let env: OperatorEnv;
  let op: StartedOperator;
  let oldRoot: ClientCert;
  let newRoot: TestCa;
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  let agent: AgentProcess;
  const pods: Record<string, V1Pod> = {};

  async function signedFor(pod: string): Promise<ClientCert> {
    const { key, csr } = await newKeyAndCsr();
    const token = await podToken(env, pods[pod] as V1Pod);
    const out = await callSign(
      { target: op.address, ca: env.ca.cert },
      { podName: pod, podNamespace: NS, token, csr },
    );
    return { cert: out.certChain.join('\n'), key };
  }

  const patchCa = (data: Record<string, string>) =>
    env.core.patchNamespacedSecret(
      { namespace: SYSTEM_NS, name: 'tollgate-ca', body: { data } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );

  /** The trust bundle version the operator distributes now. */
  async function operatorTrustVersion(): Promise<string> {
    const text = await (await fetch(`http://127.0.0.1:${op.healthPort}/metrics`)).text();
    return /^tollgate_operator_trust_bundle_info\{version="([^"]*)"\} 1$/m.exec(text)?.[1] ?? '';
  }

  /** Waits until the operator distributes a bundle other than `before` and the agent has it in force. */
  async function rolledOut(before: string): Promise<string> {
    let version = '';
    await eventually(async () => {
      version = await operatorTrustVersion();
      return version !== before && version !== '' && (await agentTrustVersion(agent)) === version;
    }, 10_000);
    return version;
  }

  const checkServer = (_host: string, cert: PeerCertificate) =>
    cert.subjectaltname === `URI:${ORDERS}`
      ? undefined
      : new Error(`unexpected server ${cert.subjectaltname}`);

  /** GET /v1/invoices on a new mTLS connection: the status, 0 when the connection was refused. */
  function get(client: ClientCert): Promise<{ status: number; error?: string }> {
    return new Promise((resolve) => {
      const req = httpsRequest(
        {
          host: '127.0.0.1',
          port: agent.port,
          path: '/v1/invoices',
          ca: oldRoot.cert,
          checkServerIdentity: checkServer,
          ...client,
          agent: false,
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

  /**
   * One mTLS connection kept open: `get()` sends a keep-alive GET on it and
   * resolves with the status once the whole response (chunked or with a
   * length) has arrived.
   */
  async function openConnection(client: ClientCert): Promise<{ get(): Promise<number>; close(): void }> {
    const socket = tlsConnect({
      host: '127.0.0.1',
      port: agent.port,
      ca: oldRoot.cert,
      checkServerIdentity: checkServer,
      ...client,
    });
    await once(socket, 'secureConnect');
    let buffer = '';
    let waiter: (() => void) | null = null;
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      waiter?.();
    });
    const complete = (): number | null => {
      const head = buffer.indexOf('\r\n\r\n');
      if (head < 0) return null;
      const headers = buffer.slice(0, head);
      const body = buffer.slice(head + 4);
      const length = /\r\ncontent-length: *(\d+)/i.exec(headers)?.[1];
      const done = length === undefined ? body.includes('0\r\n\r\n') : body.length >= Number(length);
      return done ? Number(headers.split(' ')[1]) : null;
    };
    return {
      get: () =>
        new Promise((resolve, reject) => {
          buffer = '';
          const timer = setTimeout(() => reject(new Error('no response in time')), 5000);
          waiter = () => {
            const status = complete();
            if (status === null) return;
            clearTimeout(timer);
            waiter = null;
            resolve(status);
          };
          socket.once('close', () => reject(new Error('the connection was closed')));
          socket.write('GET /v1/invoices HTTP/1.1\r\nhost: orders\r\n\r\n');
        }),
      close: () => socket.destroy(),
    };
  }

  before(async () => {
    env = await startOperatorEnv();
    oldRoot = await createWorkloadCa(env);
    newRoot = await createCa({ commonName: 'tollgate-ca-2' });
    await createNamespace(env, NS, 'orders');
    await env.core.createNamespacedServiceAccount({ namespace: NS, body: { metadata: { name: 'billing' } } });
    pods['orders-1'] = await createPod(env, NS, 'orders-1', { app: 'orders' }, { serviceAccount: 'orders' });
    pods['billing-1'] = await createPod(
      env,
      NS,
      'billing-1',
      { app: 'billing' },
      { serviceAccount: 'billing' },
    );
    await createApiPolicy(env, NS, 'orders', {
      selector: { matchLabels: { app: 'orders' } },
      mtls: { mode: 'Strict' },
      routes: [{ name: 'invoices', methods: ['GET'], path: '/v1/invoices', allow: [{ peers: [BILLING] }] }],
    });
    op = await startOperator(env, 'replica-1', { certificateCheckMs: 100 });
    upstream = await startUpstream();
    const launch = await operatorAgentLaunch(env, op.address, pods['orders-1'] as V1Pod, dir);
    agent = await startAgent(
      null,
      upstream.port,
      [...launch.args, '--state-dir', files.state],
      launch.options,
    );
    await untilWorkloadIdentity(agent);
  });

  after(async () => {
    await kill(agent);
    upstream?.server.close();
    await op?.operator.stop();
    await env?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the agent receives the trust bundle on stream start and reports it accepted', async () => {
    const version = await operatorTrustVersion();
    assert.equal(version, trustBundleVersion(oldRoot.cert));
    await eventually(async () => (await agentTrustVersion(agent)) === version);
    assert.match(agent.output(), /"source":"stream".*"msg":"trust bundle in force"/);
    await eventually(async () => {
      const text = await (await fetch(`http://127.0.0.1:${op.healthPort}/metrics`)).text();
      return text.includes(`tollgate_operator_trust_bundle_sidecars{version="${version}"} 1`);
    });
  });

  test('root rotation stage by stage: the new root trusted without a restart, open connections kept', async () => {
    const fromOld = await signedFor('billing-1');
    const fromNew = await issueCertificate(newRoot, { uris: [BILLING], usages: 'client' });
    const open = await openConnection(fromOld);
    try {
      assert.equal(await open.get(), 200);
      const refused = await get(fromNew);
      assert.equal(refused.status, 0, 'a leaf of a root not yet in the bundle is refused');
      const v0 = await agentTrustVersion(agent);

      // Stage 1: ca.crt holds both roots; the old one still signs.
      await patchCa({ 'ca.crt': b64(`${oldRoot.cert}\n${newRoot.cert}`) });
      const v1 = await rolledOut(v0);
      assert.equal(v1, trustBundleVersion(`${oldRoot.cert}\n${newRoot.cert}`));
      assert.equal((await get(fromNew)).status, 200, 'the new root is trusted');
      assert.equal(await open.get(), 200, 'the connection opened before is still served');
      assert.equal((await get(fromOld)).status, 200, 'old leaves keep working on new connections');

      // Stage 2: the new root signs; the bundle (both roots) is unchanged.
      await patchCa({ 'tls.crt': b64(newRoot.cert), 'tls.key': b64(newRoot.key) });
      let renewed: ClientCert | undefined;
      await eventually(async () => {
        renewed = await signedFor('billing-1');
        return signedBy(renewed.cert, newRoot.cert);
      }, 10_000);
      assert.equal((await get(renewed as ClientCert)).status, 200);
      assert.equal(await agentTrustVersion(agent), v1);

      // Stage 3: the old root leaves.
      await patchCa({ 'ca.crt': b64(newRoot.cert) });
      await rolledOut(v1);
      assert.equal((await get(renewed as ClientCert)).status, 200);
      assert.equal(
        (await get(fromOld)).status,
        0,
        'a leaf of the removed root is refused on a new connection',
      );
      assert.equal(
        await open.get(),
        200,
        'and still after the old root left: open connections are never cut',
      );
    } finally {
      open.close();
    }
  });

  test('a damaged ca.crt edit never replaces the good bundle', async () => {
    const good = await agentTrustVersion(agent);
    const garbled = `${newRoot.cert}\n-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n`;
    await patchCa({ 'ca.crt': b64(garbled) });
    await eventually(
      async () => op.log.messages('CA Secret ca.crt damaged, keeping the trust bundle in force').length > 0,
    );
    assert.equal(await operatorTrustVersion(), good);
    assert.equal(await agentTrustVersion(agent), good);
    await patchCa({ 'ca.crt': b64(newRoot.cert) });
  });

  test('a malformed TrustBundle message is rejected; the good bundle stays, also across a restart', async () => {
    const serving = await issueCertificate(env.ca, { dnsNames: ['localhost'], usages: 'server' });
    const good = { version: trustBundleVersion(newRoot.cert), pem: newRoot.cert };
    const fake = await FakeOperator.start({ serving, bundle: bundleOf(''), trustBundle: good });
    const state = join(dir, 'fake-state');
    const launch = await operatorAgentLaunch(env, fake.address, pods['orders-1'] as V1Pod, dir);
    const args = [...launch.args, '--state-dir', state, '--mtls', 'off'];
    const opts = launch.options;
    let second: AgentProcess | undefined;
    try {
      second = await startAgent(null, upstream.port, args, opts);
      const running = second;
      await eventually(async () => (await agentTrustVersion(running)) === good.version);
      const reports = () =>
        fake.reports.filter((r) => r.message.kind === 'trust-bundle').map((r) => JSON.parse(r.message.json));
      for (const bad of [
        { version: trustBundleVersion(''), pem: '' },
        { version: good.version, pem: oldRoot.cert },
        { version: trustBundleVersion('x'), pem: 'x' },
      ])
        fake.pushTrust(bad, { keep: true });
      await eventually(async () => reports().filter((r) => r.result === 'rejected').length === 3);
      assert.equal(await agentTrustVersion(running), good.version);
      assert.equal(
        running
          .output()
          .split('\n')
          .filter((l) => l.includes('trust bundle rejected, keeping the one in force')).length,
        3,
      );
      // Restarted with the operator gone: the saved roots are in force at once.
      await kill(running);
      fake.stop();
      second = await startAgent(null, upstream.port, args, opts);
      const restarted = second;
      await eventually(async () => (await agentTrustVersion(restarted)) === good.version);
      assert.match(restarted.output(), /"msg":"trust bundle restored from the state directory"/);
    } finally {
      await kill(second);
      fake.stop();
    }
  });
});
