/**
 * IdentityService.Sign on a real operator (in-process, on the Kubernetes API
 * test server, its CA in Secret tollgate-ca as cert-manager keeps it): a pod's
 * token gets a certificate for its own service account, whatever the CSR
 * asks for; another pod's token, an expired one and a bad CSR are refused.
 */
import 'reflect-metadata';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { status } from '@grpc/grpc-js';
import type { V1Pod } from '@kubernetes/client-node';
import { callSign, newKeyAndCsr } from '../../agent/identity/sign-client.ts';
import { verifyClientChain } from '../../agent/identity/tls-identity.ts';
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

describe('operator IdentityService.Sign', () => {
  let env: OperatorEnv;
  let op: StartedOperator;
  let workloadCa: { cert: string; key: string };
  const pods: Record<string, V1Pod> = {};

  const sign = async (pod: string, token: string, csr?: string) =>
    callSign(
      { target: op.address, ca: env.ca.cert },
      { podName: pod, podNamespace: NS, token, csr: csr ?? (await newKeyAndCsr()).csr },
    );

  before(async () => {
    env = await startOperatorEnv();
    workloadCa = await createWorkloadCa(env, 'mesh.example');
    await createNamespace(env, NS, 'orders');
    await env.core.createNamespacedServiceAccount({ namespace: NS, body: { metadata: { name: 'web' } } });
    pods.orders = await createPod(env, NS, 'orders-1', { app: 'orders' }, { serviceAccount: 'orders' });
    pods.web = await createPod(env, NS, 'web-1', { app: 'web' }, { serviceAccount: 'web' });
    op = await startOperator(env, 'replica-1', { trustDomain: 'mesh.example', workloadCertTtlMs: 30_000 });
  });

  after(async () => {
    await op?.operator.stop();
    await env?.close();
  });

  test("a pod's token gets its service account's SPIFFE ID, signed by the CA, for the TTL", async () => {
    const before = Date.now();
    const out = await sign('orders-1', await podToken(env, pods.orders as V1Pod));
    assert.equal(out.certChain.length, 1);
    assert.equal(out.trustBundle, workloadCa.cert);
    const leaf = new X509Certificate(out.certChain[0] as string);
    assert.equal(leaf.subjectAltName, 'URI:spiffe://mesh.example/ns/shop/sa/orders');
    assert.equal(verifyClientChain(leaf, [], [new X509Certificate(workloadCa.cert)]), null);
    const lifetime = leaf.validToDate.getTime() - before;
    assert.ok(lifetime > 25_000 && lifetime <= 31_000, `lifetime ${lifetime}`);
    assert.ok(op.log.entries.some((e) => e.msg === 'workload certificate signed'));
  });

  test("another pod's token is refused (PERMISSION_DENIED)", async () => {
    await assert.rejects(sign('orders-1', await podToken(env, pods.web as V1Pod)), {
      code: status.PERMISSION_DENIED,
    });
  });

  test('an expired token is refused (UNAUTHENTICATED)', async () => {
    const stale = await podToken(env, pods.orders as V1Pod, { expirationSeconds: -120 });
    await assert.rejects(sign('orders-1', stale), { code: status.UNAUTHENTICATED });
  });

  test('no token (UNAUTHENTICATED), a bad CSR (INVALID_ARGUMENT)', async () => {
    await assert.rejects(sign('orders-1', ''), { code: status.UNAUTHENTICATED });
    const token = await podToken(env, pods.orders as V1Pod);
    await assert.rejects(sign('orders-1', token, 'not a csr'), { code: status.INVALID_ARGUMENT });
  });
});
