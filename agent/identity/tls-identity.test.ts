import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createCa, issueCertificate, type TestCa } from '../../test/support/certs.ts';
import { loadTlsFiles, spiffeIdOf, TlsIdentity, verifyClientChain } from './tls-identity.ts';

describe('spiffeIdOf', () => {
  for (const [san, expected] of [
    ['URI:spiffe://cluster.local/ns/a/sa/b', 'spiffe://cluster.local/ns/a/sa/b'],
    ['DNS:x, URI:spiffe://td/ns/a/sa/b', 'spiffe://td/ns/a/sa/b'],
    ['DNS:x', null],
    [undefined, null],
    ['URI:spiffe://td/a, URI:spiffe://td/b', null],
    ['URI:https://example.com, URI:spiffe://td/a', null],
  ] as const) {
    test(`${san ?? '(none)'} → ${expected}`, () => assert.equal(spiffeIdOf(san), expected));
  }
});

describe('TLS identity files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-tls-id-'));
  const f = (n: string) => join(dir, n);
  let ca: TestCa;
  let other: TestCa;
  before(async () => {
    ca = await createCa({ commonName: 'root' });
    other = await createCa({ commonName: 'other' });
    const leaf = await issueCertificate(ca, { uris: ['spiffe://td/ns/a/sa/b'], usages: 'both' });
    writeFileSync(f('tls.crt'), leaf.cert);
    writeFileSync(f('tls.key'), leaf.key);
    writeFileSync(f('ca.crt'), ca.cert + other.cert);
    const foreignKey = await issueCertificate(other, { uris: ['spiffe://td/x'], usages: 'both' });
    writeFileSync(f('other.key'), foreignKey.key);
    writeFileSync(f('garbage'), 'not pem');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('loads the SPIFFE ID, the expiry and every anchor of the bundle', () => {
    const id = loadTlsFiles({ cert: f('tls.crt'), key: f('tls.key'), trustBundle: f('ca.crt') });
    assert.equal(id.spiffeId, 'spiffe://td/ns/a/sa/b');
    assert.equal(id.anchors.length, 2);
    assert.ok(id.notAfter > new Date());
  });

  test('clear errors: unreadable file, not PEM, a key that is not the certificate’s, an empty bundle', () => {
    const files = { cert: f('tls.crt'), key: f('tls.key'), trustBundle: f('ca.crt') };
    assert.throws(
      () => loadTlsFiles({ ...files, cert: f('missing') }),
      /--tls-cert .*missing: cannot read \(ENOENT\)/,
    );
    assert.throws(() => loadTlsFiles({ ...files, cert: f('garbage') }), /not a PEM certificate/);
    assert.throws(() => loadTlsFiles({ ...files, key: f('other.key') }), /--tls-cert\/--tls-key: .*/);
    assert.throws(() => loadTlsFiles({ ...files, trustBundle: f('garbage') }), /no PEM certificate/);
  });

  test('a bad update keeps the identity in force; a good one replaces it', async () => {
    const errors: string[] = [];
    const identity = new TlsIdentity({
      files: { cert: f('tls.crt'), key: f('tls.key'), trustBundle: f('ca.crt') },
      onReject: (e) => errors.push(e.message),
    });
    const first = identity.current;
    writeFileSync(f('tls.crt'), 'half written');
    identity.check();
    assert.equal(identity.current, first);
    assert.equal(errors.length, 1);
    const next = await issueCertificate(ca, { uris: ['spiffe://td/ns/a/sa/c'], usages: 'both' });
    writeFileSync(f('tls.crt'), next.cert);
    writeFileSync(f('tls.key'), next.key);
    identity.check();
    assert.equal(identity.current.spiffeId, 'spiffe://td/ns/a/sa/c');
    identity.close();
  });

  test('verifyClientChain: anchored, foreign, expired, server-only, through an intermediate', async () => {
    const anchors = [new X509Certificate(ca.cert)];
    const x = async (issuer: TestCa, opts: Parameters<typeof issueCertificate>[1]) =>
      new X509Certificate((await issueCertificate(issuer, opts)).cert);
    assert.equal(
      verifyClientChain(await x(ca, { uris: ['spiffe://td/a'], usages: 'client' }), [], anchors),
      null,
    );
    assert.match(
      verifyClientChain(await x(other, { uris: ['spiffe://td/a'], usages: 'client' }), [], anchors) ?? '',
      /does not chain/,
    );
    const hour = 3_600_000;
    const old = await x(ca, {
      usages: 'client',
      notBefore: new Date(Date.now() - 2 * hour),
      notAfter: new Date(Date.now() - hour),
    });
    assert.match(verifyClientChain(old, [], anchors) ?? '', /expired/);
    assert.match(
      verifyClientChain(await x(ca, { usages: 'server' }), [], anchors) ?? '',
      /not for client authentication/,
    );
    // `other` as an intermediate the client sends is still not anchored: only the bundle anchors.
    const leaf = await x(other, { usages: 'client' });
    assert.match(verifyClientChain(leaf, [new X509Certificate(other.cert)], anchors) ?? '', /does not chain/);
    assert.equal(verifyClientChain(leaf, [], [new X509Certificate(other.cert)]), null);
  });
});
