import 'reflect-metadata';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createCa } from '../../operator/ca/certificates.ts';
import { WorkloadSigner } from '../../operator/ca/workload-signer.ts';
import type { SignRequest, SignResponse } from '../../proto/identity-service.ts';
import { trustBundleVersion } from '../../proto/policy-service.ts';
import { RecordingLogger } from '../../test/support/recording-logger.ts';
import { OperatorIdentity } from './operator-identity.ts';
import type { LoadedIdentity } from './tls-identity.ts';
import { TrustStore } from './trust-store.ts';

async function until(check: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) assert.fail('condition not reached in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('OperatorIdentity', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-op-id-'));
  const tokenFile = join(dir, 'token');
  let signer: WorkloadSigner;
  let caPem: string;
  const requests: SignRequest[] = [];

  before(async () => {
    writeFileSync(tokenFile, 'the-token\n');
    const ca = await createCa({ commonName: 'tollgate-ca', now: Date.now(), trustDomain: 'cluster.local' });
    caPem = ca.cert;
    signer = new WorkloadSigner({
      trustDomain: 'cluster.local',
      ttlMs: 2000,
      ca: () => ({ ...ca, trustBundle: ca.cert }),
    });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const identity = (
    sign: (r: SignRequest) => Promise<SignResponse>,
    log = new RecordingLogger(),
    trust?: TrustStore,
  ) =>
    new OperatorIdentity({
      ...(trust ? { trust } : {}),
      target: 'operator:15010',
      caFile: join(dir, 'unused'),
      tokenFile,
      podName: 'orders-1',
      podNamespace: 'shop',
      logger: log,
      backoff: { minMs: 10, maxMs: 40 },
      sign,
      random: () => 0.5,
    });

  const signWith = async (r: SignRequest): Promise<SignResponse> => {
    requests.push(r);
    return signer.sign(r.csr, { namespace: r.podNamespace, serviceAccount: 'orders' });
  };

  test('none before the first certificate; then the signed one, renewed with a new key at half-life', async () => {
    const log = new RecordingLogger();
    const id = identity(signWith, log);
    assert.equal(id.current, null);
    id.start();
    assert.ok(log.entries.some((e) => e.msg.startsWith('no workload certificate yet')));
    await until(() => id.current !== null);
    const first = id.current as LoadedIdentity | null;
    assert.equal(first?.spiffeId, 'spiffe://cluster.local/ns/shop/sa/orders');
    assert.equal(first?.anchors[0]?.fingerprint256, new X509Certificate(caPem).fingerprint256);
    assert.equal(requests.at(-1)?.token, 'the-token');
    await until(() => id.current !== first, 4000);
    id.close();
    const csrs = new Set(requests.slice(-2).map((r) => r.csr));
    assert.equal(csrs.size, 2, 'a fresh key and CSR per renewal');
    assert.ok(log.entries.filter((e) => e.msg === 'workload certificate issued').length >= 2);
  });

  test('failures are retried with backoff; the identity in force stays until a new one arrives', async () => {
    const log = new RecordingLogger();
    let fail = 2;
    const id = identity(async (r) => {
      if (fail-- > 0) throw Object.assign(new Error('down'), { code: 14, details: 'operator down' });
      return signWith(r);
    }, log);
    id.start();
    await until(() => id.current !== null);
    assert.equal(log.entries.filter((e) => e.msg === 'workload certificate not issued, retrying').length, 2);
    const inForce = id.current;
    fail = 1_000_000;
    // Renewal (about 1 s) fails from now on: the certificate in force stays.
    await until(
      () => log.entries.filter((e) => e.msg === 'workload certificate not issued, retrying').length > 3,
      4000,
    );
    assert.equal(id.current, inForce);
    id.close();
  });

  test('the trust store: the stream bundle wins over the Sign response; a new one swaps the roots, same certificate', async () => {
    const other = (await createCa({ commonName: 'tollgate-ca-2', now: Date.now() })).cert;
    const trust = new TrustStore();
    const both = `${caPem}\n${other}`;
    trust.offerStream({ version: trustBundleVersion(both), pem: both });
    const id = identity(signWith, new RecordingLogger(), trust);
    id.start();
    await until(() => id.current !== null);
    const first = id.current as LoadedIdentity | null;
    assert.equal(first?.anchors.length, 2, 'the stream bundle, not the Sign response one');
    trust.offerStream({ version: trustBundleVersion(other), pem: other });
    const after = id.current as LoadedIdentity | null;
    assert.notEqual(after, first, 'a new context for new connections');
    assert.deepEqual(
      after?.anchors.map((a) => a.subject),
      [new X509Certificate(other).subject],
    );
    assert.equal(after?.notAfter.getTime(), first?.notAfter.getTime(), 'the same certificate');
    id.close();
  });
});
