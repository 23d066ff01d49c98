/**
 * CertificateManager against the Kubernetes API test server through
 * client-node: the CA and serving Secrets made on an empty cluster, caBundle
 * patched into every webhook, a second replica reusing both, racing replicas,
 * renewal at 2/3 of the lifetime (injected clock) picked up by the other
 * replica, repair of a foreign or broken certificate, and read-only mode.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import {
  AdmissionregistrationV1Api,
  CoreV1Api,
  type KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  type V1MutatingWebhookConfiguration,
  type V1Secret,
} from '@kubernetes/client-node';
import { trustBundleVersion } from '../../proto/policy-service.ts';
import { kubeConfigFor } from '../../test/kube/client.ts';
import { KubeTestServer } from '../../test/kube/server.ts';
import { createCa as createTestCa, issueCertificate } from '../../test/support/certs.ts';
import { RecordingLogger } from '../../test/support/recording-logger.ts';
import { CertificateManager, type CertificateManagerOptions } from './certificate-manager.ts';
import { createCa, inspectCertificate, signedBy } from './certificates.ts';
import { pemBlocks } from './trust-bundle.ts';

const NS = 'tollgate-system';
const DAY = 86_400_000;
const NAMES = [
  'tollgate-operator',
  'tollgate-operator.tollgate-system',
  'tollgate-operator.tollgate-system.svc',
  'tollgate-operator.tollgate-system.svc.cluster.local',
];

let kube: KubeTestServer;
let kc: KubeConfig;
let core: CoreV1Api;
let admission: AdmissionregistrationV1Api;
const managers: CertificateManager[] = [];

const text = (s: V1Secret, key: string) => Buffer.from(s.data?.[key] ?? '', 'base64').toString();
const secret = (name: string) => core.readNamespacedSecret({ namespace: NS, name });

function manager(over: Partial<CertificateManagerOptions> = {}): CertificateManager {
  const m = new CertificateManager({
    kubeConfig: kc,
    namespace: NS,
    servingSecret: 'tollgate-operator-tls',
    manage: true,
    checkIntervalMs: 3_600_000,
    ...over,
  });
  managers.push(m);
  return m;
}

const webhook = (name: string, path: string) => ({
  name,
  admissionReviewVersions: ['v1'],
  sideEffects: 'None',
  clientConfig: { service: { name: 'tollgate-operator', namespace: NS, path, port: 9443 } },
});

async function installWebhookConfigurations(): Promise<void> {
  await admission.createMutatingWebhookConfiguration({
    body: {
      metadata: { name: 'tollgate-sidecar-injector' },
      webhooks: [webhook('inject.tollgate.dev', '/inject'), webhook('inject-ns.tollgate.dev', '/inject')],
    },
  });
  await admission.createValidatingWebhookConfiguration({
    body: {
      metadata: { name: 'tollgate-policy-validator' },
      webhooks: [{ ...webhook('validate.tollgate.dev', '/validate'), failurePolicy: 'Fail' }],
    },
  });
}

async function reset(): Promise<void> {
  for (const m of managers.splice(0)) m.stop();
  for (const name of ['tollgate-ca', 'tollgate-operator-tls'])
    await core.deleteNamespacedSecret({ namespace: NS, name }).catch(() => undefined);
}

before(async () => {
  kube = await KubeTestServer.start();
  kc = kubeConfigFor(kube.url);
  core = kc.makeApiClient(CoreV1Api);
  admission = kc.makeApiClient(AdmissionregistrationV1Api);
  await core.createNamespace({ body: { metadata: { name: NS } } });
  await installWebhookConfigurations();
});

after(async () => {
  await reset();
  await kube.close();
});

describe('CertificateManager (managed)', () => {
  beforeEach(reset);

  test('on an empty cluster: creates the CA and serving Secrets and patches every caBundle', async () => {
    const roots: (string | null)[] = [];
    const m = manager({ onRoot: (r) => roots.push(r) });
    const identity = await m.start();
    const caSecret = await secret('tollgate-ca');
    const serving = await secret('tollgate-operator-tls');
    assert.equal(caSecret.type, 'kubernetes.io/tls');
    assert.equal(serving.type, 'kubernetes.io/tls');
    const ca = text(caSecret, 'tls.crt');
    assert.equal(text(caSecret, 'ca.crt'), ca);
    assert.equal(text(serving, 'ca.crt'), ca);
    assert.deepEqual(identity.current, { cert: text(serving, 'tls.crt'), key: text(serving, 'tls.key') });
    assert.deepEqual(roots, [ca]);
    assert.deepEqual(
      m.signingCa,
      {
        cert: ca,
        key: text(caSecret, 'tls.key'),
        trustBundle: ca,
      },
      'the CA it made signs workload certificates',
    );

    const caInfo = inspectCertificate(ca);
    const info = inspectCertificate(identity.current.cert);
    assert.ok(caInfo?.isCa);
    assert.ok(Math.abs((caInfo?.notAfter ?? 0) - Date.now() - 3650 * DAY) < DAY);
    assert.ok(Math.abs((info?.notAfter ?? 0) - Date.now() - 365 * DAY) < DAY);
    assert.deepEqual(info?.dnsNames, NAMES);
    assert.deepEqual(caInfo?.uris, ['spiffe://cluster.local'], 'the SPIFFE ID of the default trust domain');
    assert.deepEqual(info?.uris, []);
    assert.ok(signedBy(identity.current.cert, ca));

    const bundle = Buffer.from(ca).toString('base64');
    const mutating = await admission.readMutatingWebhookConfiguration({ name: 'tollgate-sidecar-injector' });
    const validating = await admission.readValidatingWebhookConfiguration({
      name: 'tollgate-policy-validator',
    });
    assert.deepEqual(
      [...(mutating.webhooks ?? []), ...(validating.webhooks ?? [])].map((w) => w.clientConfig.caBundle),
      [bundle, bundle, bundle],
    );
    assert.equal(validating.webhooks?.[0]?.failurePolicy, 'Fail', 'the rest of the webhook is kept');
  });

  test('root rotation, stage by stage: ca.crt old+new, then signing with the new root, then new only', async () => {
    const bundles: (string | null)[] = [];
    const roots: (string | null)[] = [];
    const log = new RecordingLogger();
    const m = manager({
      log,
      onTrustBundle: (b) => bundles.push(b?.pem ?? null),
      onRoot: (r) => roots.push(r),
    });
    const identity = await m.start();
    const caSecret = await secret('tollgate-ca');
    const old = { cert: text(caSecret, 'tls.crt'), key: text(caSecret, 'tls.key') };
    assert.deepEqual(bundles, [old.cert]);
    assert.equal(m.trustBundle?.version, trustBundleVersion(old.cert));
    const fresh = await createCa({
      commonName: 'tollgate-ca-2',
      now: Date.now(),
      trustDomain: 'cluster.local',
    });
    const b64 = (t: string) => Buffer.from(t).toString('base64');
    const patch = (data: Record<string, string>) =>
      core.patchNamespacedSecret(
        { namespace: NS, name: 'tollgate-ca', body: { data } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
    const caBundles = async () =>
      (
        (await admission.readMutatingWebhookConfiguration({ name: 'tollgate-sidecar-injector' })).webhooks ??
        []
      ).map((w) => Buffer.from(w.clientConfig.caBundle ?? '', 'base64').toString());

    // Stage 1: both roots trusted; the old one still signs.
    await patch({ 'ca.crt': b64(`${old.cert}\n${fresh.cert}`) });
    await m.check();
    const both = bundles.at(-1) ?? '';
    assert.equal(pemBlocks(both).length, 2);
    assert.equal(m.signingCa?.cert, old.cert);
    assert.equal(m.signingCa?.trustBundle, both);
    assert.equal(roots.at(-1), both, 'agents get both roots to verify the operator with');
    assert.deepEqual(await caBundles(), [both, both], 'the webhooks trust both roots');
    const servingBefore = identity.current.cert;
    await m.check();
    assert.equal(bundles.length, 2, 'an unchanged ca.crt is no change');

    // Stage 2: the new root signs; the serving certificate is reissued by it.
    await patch({ 'tls.crt': b64(fresh.cert), 'tls.key': b64(fresh.key) });
    await m.check();
    assert.equal(m.signingCa?.cert, fresh.cert);
    assert.equal(m.trustBundle?.pem, both, 'still both roots');
    assert.equal(bundles.length, 2);
    assert.notEqual(identity.current.cert, servingBefore);
    assert.ok(signedBy(identity.current.cert, fresh.cert), 'the serving certificate comes from the new root');

    // Stage 3: the old root leaves.
    await patch({ 'ca.crt': b64(fresh.cert) });
    await m.check();
    assert.equal(bundles.at(-1), fresh.cert);
    assert.equal(roots.at(-1), fresh.cert);
    assert.deepEqual(await caBundles(), [fresh.cert, fresh.cert]);

    // A bad edit (a certificate cut short or garbled) keeps the bundle in force.
    const garbled = `${fresh.cert}\n-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n`;
    for (const broken of [garbled, `${fresh.cert}\n${old.cert.slice(0, 200)}`]) {
      await patch({ 'ca.crt': b64(`${old.cert}\n${broken}`) });
      await m.check();
      assert.equal(m.trustBundle?.pem, fresh.cert);
    }
    assert.equal(log.messages('CA Secret ca.crt damaged, keeping the trust bundle in force').length, 2);

    // A ca.crt that forgets the signing root never leaves the workloads without it.
    await patch({ 'ca.crt': b64(old.cert) });
    await m.check();
    assert.equal(pemBlocks(m.trustBundle?.pem ?? '').length, 2);
    assert.equal(log.messages('CA Secret ca.crt problems').length, 1);
  });

  test('automatic staged rotation by the leader: before expiry, or when asked for', async () => {
    const t0 = Date.now();
    let now = t0;
    const timing = { rotateBeforeMs: 365 * DAY, rotationPropagationMs: 600_000, workloadTtlMs: DAY };
    const log = new RecordingLogger();
    const leader = manager({ now: () => now, log, ...timing });
    const follower = manager({ now: () => now, ...timing });
    const identity = await leader.start();
    await follower.start();
    leader.setLeader(true);
    const old = leader.signingCa?.cert ?? '';
    const roots = () => pemBlocks(leader.trustBundle?.pem ?? '').length;
    const stage = async () =>
      (await secret('tollgate-ca')).metadata?.annotations?.['tollgate.dev/ca-rotation'];

    now = t0 + 3000 * DAY;
    await leader.check();
    assert.equal(await stage(), undefined, 'years before expiry: nothing');

    now = t0 + 3300 * DAY;
    await follower.check();
    assert.equal(await stage(), undefined, 'only the leader rotates');
    await leader.check();
    assert.equal(await stage(), 'trust-both');
    assert.equal(roots(), 2, 'stage 1: both roots trusted');
    assert.equal(leader.signingCa?.cert, old, 'the old root still signs');
    await follower.check();
    assert.equal(follower.trustBundle?.version, leader.trustBundle?.version, 'the other replica follows');

    now += 300_000;
    await leader.check();
    assert.equal(await stage(), 'trust-both', 'still propagating');
    now += 300_000;
    await leader.check();
    assert.equal(await stage(), 'signing-new');
    const fresh = leader.signingCa?.cert ?? '';
    assert.notEqual(fresh, old, 'stage 2: the new root signs');
    assert.equal(roots(), 2);
    assert.ok(signedBy(identity.current.cert, fresh), 'the serving certificate comes from the new root');
    assert.equal(text(await secret('tollgate-ca'), 'next.crt'), '', 'the pending root moved to tls.crt');

    now += DAY;
    await leader.check();
    assert.equal(await stage(), 'signing-new', 'old leaves may still be alive');
    now += 600_000;
    await leader.check();
    assert.equal(await stage(), undefined);
    assert.equal(leader.trustBundle?.pem, fresh, 'stage 3: the new root alone');
    assert.deepEqual(
      log.entries.filter((e) => e.msg.startsWith('CA rotation')).map((e) => e.msg),
      ['CA rotation: new root trusted', 'CA rotation: new root signs', 'CA rotation: old root removed'],
    );

    // Asked for with the annotation, whatever the CA's age.
    await core.patchNamespacedSecret(
      {
        namespace: NS,
        name: 'tollgate-ca',
        body: { metadata: { annotations: { 'tollgate.dev/rotate-ca': 'now' } } },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    await leader.check();
    assert.equal(await stage(), 'trust-both');
    assert.equal((await secret('tollgate-ca')).metadata?.annotations?.['tollgate.dev/rotate-ca'], undefined);
    assert.equal(roots(), 2);
  });

  test('a second replica reuses the CA and the serving certificate', async () => {
    const first = await manager().start();
    const rv = (await secret('tollgate-operator-tls')).metadata?.resourceVersion;
    const second = await manager().start();
    assert.deepEqual(second.current, first.current);
    assert.equal((await secret('tollgate-operator-tls')).metadata?.resourceVersion, rv);
  });

  test('two replicas starting together end with one CA and one serving certificate', async () => {
    const [a, b] = await Promise.all([manager().start(), manager().start()]);
    assert.deepEqual(a.current, b.current);
    assert.ok(signedBy(a.current.cert, text(await secret('tollgate-ca'), 'tls.crt')));
  });

  test('renewal at 2/3 of the lifetime; the other replica reloads it at its next check', async () => {
    const log = new RecordingLogger();
    const early = await manager({ log }).start();
    const original = early.current;
    let now = Date.now() + 200 * DAY;
    const later = manager({ now: () => now });
    const identity = await later.start();
    assert.deepEqual(identity.current, original, 'not yet due at 200 of 365 days');

    now = Date.now() + 250 * DAY;
    const seen: string[] = [];
    identity.onChange((p) => seen.push(p.cert));
    await later.check();
    assert.equal(seen.length, 1);
    const renewed = inspectCertificate(identity.current.cert);
    assert.ok(Math.abs((renewed?.notBefore ?? 0) - now) < 2 * 60_000);
    assert.deepEqual(renewed?.dnsNames, NAMES);
    assert.equal(text(await secret('tollgate-operator-tls'), 'tls.crt'), identity.current.cert);

    await managers[0]?.check();
    assert.deepEqual(early.current, identity.current);
    assert.equal(log.messages('serving certificate reloaded').length, 1);
  });

  test('a serving Secret from another CA, or with a foreign key, is reissued', async () => {
    const foreign = await createTestCa({ commonName: 'someone else' });
    const pair = await issueCertificate(foreign, { dnsNames: NAMES, usages: 'server' });
    await core.createNamespacedSecret({
      namespace: NS,
      body: {
        metadata: { name: 'tollgate-operator-tls' },
        type: 'kubernetes.io/tls',
        data: {
          'tls.crt': Buffer.from(pair.cert).toString('base64'),
          'tls.key': Buffer.from(pair.key).toString('base64'),
        },
      },
    });
    const identity = await manager().start();
    assert.notEqual(identity.current.cert, pair.cert);
    assert.ok(signedBy(identity.current.cert, text(await secret('tollgate-ca'), 'tls.crt')));
  });

  test('a CA Secret that holds no CA stops the start with a clear message', async () => {
    const leaf = await issueCertificate(await createTestCa({ commonName: 'x' }), {
      dnsNames: ['a'],
      usages: 'server',
    });
    await core.createNamespacedSecret({
      namespace: NS,
      body: {
        metadata: { name: 'tollgate-ca' },
        data: {
          'tls.crt': Buffer.from(leaf.cert).toString('base64'),
          'tls.key': Buffer.from(leaf.key).toString('base64'),
        },
      },
    });
    await assert.rejects(
      manager().start(),
      /tollgate-system\/tollgate-ca: tls\.crt is not a CA certificate; delete it/,
    );
  });

  test('the CA carries the trust domain; a CA of another one is kept, with a warning', async () => {
    const log = new RecordingLogger();
    await manager({ trustDomain: 'prod.example.com' }).start();
    const ca = text(await secret('tollgate-ca'), 'tls.crt');
    assert.deepEqual(inspectCertificate(ca)?.uris, ['spiffe://prod.example.com']);
    const other = manager({ trustDomain: 'staging.example.com', log });
    await other.start();
    await other.check();
    assert.equal(other.root, ca, 'kept: workload certificates it signed stay trusted');
    const warned = log.messages('CA has another trust domain; delete the Secret to have a new CA made');
    assert.equal(warned.length, 1, 'once');
    assert.deepEqual(warned[0]?.fields, {
      secret: 'tollgate-ca',
      trustDomain: 'staging.example.com',
      uris: ['spiffe://prod.example.com'],
    });
  });

  test('a webhook configuration created later, or reset by an upgrade, gets the caBundle at the next check', async () => {
    const m = manager();
    await m.start();
    const name = 'tollgate-sidecar-injector';
    const current = await admission.readMutatingWebhookConfiguration({ name });
    const reset: V1MutatingWebhookConfiguration = {
      ...current,
      webhooks: (current.webhooks ?? []).map((w) => ({
        ...w,
        clientConfig: { ...w.clientConfig, caBundle: '' },
      })),
    };
    await admission.replaceMutatingWebhookConfiguration({ name, body: reset });
    await m.check();
    const fixed = await admission.readMutatingWebhookConfiguration({ name });
    assert.ok(
      fixed.webhooks?.every((w) => w.clientConfig.caBundle === Buffer.from(m.root ?? '').toString('base64')),
    );
  });
});

describe('CertificateManager (cert-manager provides the Secret)', () => {
  beforeEach(reset);

  test('reads the serving Secret and its ca.crt, creates nothing, patches nothing', async () => {
    await assert.rejects(manager({ manage: false }).start(), /has no tls\.crt and tls\.key/);
    const issuer = await createTestCa({ commonName: 'cert-manager issuer' });
    const pair = await issueCertificate(issuer, { dnsNames: NAMES, usages: 'server' });
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    await core.createNamespacedSecret({
      namespace: NS,
      body: {
        metadata: { name: 'tollgate-operator-tls' },
        type: 'kubernetes.io/tls',
        data: { 'tls.crt': b64(pair.cert), 'tls.key': b64(pair.key), 'ca.crt': b64(issuer.cert) },
      },
    });
    const m = manager({ manage: false });
    const identity = await m.start();
    assert.equal(identity.current.cert, pair.cert);
    assert.equal(m.root, issuer.cert);
    await assert.rejects(secret('tollgate-ca'), /404|not found/i);
    assert.equal(m.signingCa, null, 'no CA Secret: nothing signs workload certificates');
  });

  test("cert-manager's CA Secret tollgate-ca signs workload certificates, read again at each check", async () => {
    const issuer = await createTestCa({ commonName: 'cert-manager issuer' });
    const pair = await issueCertificate(issuer, { dnsNames: NAMES, usages: 'server' });
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    const tls = (name: string, data: Record<string, string>) =>
      core.createNamespacedSecret({
        namespace: NS,
        body: { metadata: { name }, type: 'kubernetes.io/tls', data },
      });
    await tls('tollgate-operator-tls', { 'tls.crt': b64(pair.cert), 'tls.key': b64(pair.key) });
    const m = manager({ manage: false });
    await m.start();
    assert.equal(m.signingCa, null);
    // A leaf is no CA: not used.
    await tls('tollgate-ca', { 'tls.crt': b64(pair.cert), 'tls.key': b64(pair.key) });
    await m.check();
    assert.equal(m.signingCa, null);
    await core.deleteNamespacedSecret({ namespace: NS, name: 'tollgate-ca' });
    await tls('tollgate-ca', {
      'tls.crt': b64(issuer.cert),
      'tls.key': b64(issuer.key),
      'ca.crt': b64(issuer.cert),
    });
    await m.check();
    assert.deepEqual(m.signingCa, { cert: issuer.cert, key: issuer.key, trustBundle: issuer.cert });
  });
});
