import 'reflect-metadata';
import assert from 'node:assert/strict';
import { generateKeyPairSync, webcrypto, X509Certificate } from 'node:crypto';
import { describe, test } from 'node:test';
import {
  Pkcs10CertificateRequest,
  Pkcs10CertificateRequestGenerator,
  SubjectAlternativeNameExtension,
} from '@peculiar/x509';
import { verifyClientChain } from '../../agent/identity/tls-identity.ts';
import { createCa } from './certificates.ts';
import { type SigningCa, WorkloadSignError, WorkloadSigner, workloadId } from './workload-signer.ts';

const NOW = Date.parse('2026-01-01T00:00:00Z');
const subject = { namespace: 'shop', serviceAccount: 'orders' };

async function csrFor(
  alg: webcrypto.EcKeyGenParams | webcrypto.RsaHashedKeyGenParams,
  names: { uri?: string; dns?: string } = {},
): Promise<string> {
  const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const csr = await Pkcs10CertificateRequestGenerator.create(
    {
      name: 'CN=admin',
      keys,
      signingAlgorithm: alg.name === 'ECDSA' ? { name: 'ECDSA', hash: 'SHA-256' } : alg,
      extensions: [
        new SubjectAlternativeNameExtension([
          ...(names.uri ? [{ type: 'url' as const, value: names.uri }] : []),
          ...(names.dns ? [{ type: 'dns' as const, value: names.dns }] : []),
        ]),
      ],
    },
    webcrypto,
  );
  return csr.toString('pem');
}

const P256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;

describe('WorkloadSigner', async () => {
  const ca = await createCa({ commonName: 'tollgate-ca', now: NOW, trustDomain: 'cluster.local' });
  const signingCa: SigningCa = { ...ca, trustBundle: ca.cert };
  const signer = new WorkloadSigner({ trustDomain: 'cluster.local', ca: () => signingCa, now: () => NOW });

  test('the only name is the SPIFFE ID of the authenticated pod, whatever the CSR asks for', async () => {
    const csr = await csrFor(P256, { uri: 'spiffe://cluster.local/ns/kube-system/sa/admin', dns: 'evil' });
    const out = await signer.sign(csr, subject);
    assert.equal(out.spiffeId, 'spiffe://cluster.local/ns/shop/sa/orders');
    assert.equal(out.certChain.length, 1);
    const leaf = new X509Certificate(out.certChain[0] as string);
    assert.equal(leaf.subjectAltName, 'URI:spiffe://cluster.local/ns/shop/sa/orders');
    assert.doesNotMatch(leaf.subject ?? '', /admin/);
    assert.equal(leaf.ca, false);
    assert.deepEqual(leaf.keyUsage?.sort(), ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
    assert.equal(out.trustBundle, ca.cert);
    assert.equal(workloadId('td.example', subject), 'spiffe://td.example/ns/shop/sa/orders');
  });

  test('the leaf chains to the CA, lives for the TTL and is backdated a minute', async () => {
    const short = new WorkloadSigner({
      trustDomain: 'cluster.local',
      ttlMs: 30_000,
      ca: () => signingCa,
      now: () => NOW,
    });
    const out = await short.sign(await csrFor(P256), subject);
    const leaf = new X509Certificate(out.certChain[0] as string);
    assert.equal(leaf.validToDate.getTime(), NOW + 30_000);
    assert.equal(leaf.validFromDate.getTime(), NOW - 60_000);
    assert.equal(out.notAfter.getTime(), NOW + 30_000);
    assert.equal(verifyClientChain(leaf, [], [new X509Certificate(ca.cert)], new Date(NOW)), null);
    assert.equal(new WorkloadSigner({ trustDomain: 't', ca: () => signingCa }).ttlMs, 86_400_000);
  });

  test('a tls.crt holding the CA and more certificates: the first one signs; the bundle is the Secret roots', async () => {
    const root = await createCa({ commonName: 'root', now: NOW });
    const intermediate = await createCa({ commonName: 'intermediate', now: NOW });
    // As cert-manager writes an intermediate's tls.crt: the CA first, then what it chains to.
    const chained: SigningCa = {
      cert: `${intermediate.cert}\n${root.cert}`,
      key: intermediate.key,
      trustBundle: root.cert,
    };
    const out = await new WorkloadSigner({
      trustDomain: 'cluster.local',
      ca: () => chained,
      now: () => NOW,
    }).sign(await csrFor(P256), subject);
    const leaf = new X509Certificate(out.certChain[0] as string);
    assert.ok(leaf.checkIssued(new X509Certificate(intermediate.cert)));
    assert.equal(out.trustBundle, root.cert);
  });

  test('RSA 2048 is accepted', async () => {
    const rsa = {
      name: 'RSASSA-PKCS1-v1_5',
      modulusLength: 2048,
      publicExponent: new Uint8Array([1, 0, 1]),
      hash: 'SHA-256',
    };
    const out = await signer.sign(await csrFor(rsa), subject);
    assert.equal(new X509Certificate(out.certChain[0] as string).publicKey.asymmetricKeyType, 'rsa');
  });

  const refused: [string, () => Promise<string>, RegExp][] = [
    ['not PEM', async () => 'hello', /not a PEM PKCS#10/],
    ['P-384', async () => csrFor({ name: 'ECDSA', namedCurve: 'P-384' }), /P-384|secp384r1/],
    [
      'RSA 1024',
      async () =>
        csrFor({
          name: 'RSASSA-PKCS1-v1_5',
          modulusLength: 1024,
          publicExponent: new Uint8Array([1, 0, 1]),
          hash: 'SHA-256',
        }),
      /below 2048/,
    ],
    [
      'Ed25519',
      async () => {
        const { privateKey, publicKey } = generateKeyPairSync('ed25519');
        const keys = {
          privateKey: await webcrypto.subtle.importKey(
            'pkcs8',
            privateKey.export({ type: 'pkcs8', format: 'der' }),
            'Ed25519',
            true,
            ['sign'],
          ),
          publicKey: await webcrypto.subtle.importKey(
            'spki',
            publicKey.export({ type: 'spki', format: 'der' }),
            'Ed25519',
            true,
            ['verify'],
          ),
        };
        return (
          await Pkcs10CertificateRequestGenerator.create(
            { name: 'CN=x', keys, signingAlgorithm: { name: 'Ed25519' } },
            webcrypto,
          )
        ).toString('pem');
      },
      /not accepted/,
    ],
    [
      'a signature that does not verify',
      async () => {
        const good = new Pkcs10CertificateRequest(await csrFor(P256));
        // The last byte of the DER is the signature's: flip it (the encoding stays valid).
        const raw = new Uint8Array(good.rawData);
        raw[raw.length - 1] = (raw[raw.length - 1] ?? 0) ^ 0x01;
        return new Pkcs10CertificateRequest(raw).toString('pem');
      },
      /does not verify/,
    ],
  ];
  for (const [name, make, message] of refused) {
    test(`refuses a CSR: ${name}`, async () => {
      const csr = await make();
      await assert.rejects(signer.sign(csr, subject), (e: unknown) => {
        assert.ok(e instanceof WorkloadSignError);
        assert.equal(e.code, 'ERR_SIGN_CSR_INVALID');
        assert.match(e.message, message);
        return true;
      });
    });
  }

  test('no CA yet: ERR_SIGN_NO_CA', async () => {
    const none = new WorkloadSigner({ trustDomain: 'cluster.local', ca: () => null });
    await assert.rejects(none.sign(await csrFor(P256), subject), { code: 'ERR_SIGN_NO_CA' });
  });
});
