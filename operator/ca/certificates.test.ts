import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { describe, test } from 'node:test';
import {
  createCa,
  inspectCertificate,
  issueServingCertificate,
  keyMatches,
  signedBy,
  trustDomainId,
} from './certificates.ts';
import { webhookCaBundlePatch } from './webhook-ca-bundle.ts';

const NOW = Date.parse('2026-01-01T00:00:00Z');

describe('operator certificates', () => {
  test('a P-256 CA and a serving certificate it signs, for the given names and times', async () => {
    const ca = await createCa({ commonName: 'tollgate-ca', now: NOW });
    const serving = await issueServingCertificate(ca, {
      dnsNames: ['a.svc', 'a'],
      now: NOW,
      lifetimeMs: 1000_000,
    });
    const caInfo = inspectCertificate(ca.cert);
    const info = inspectCertificate(serving.cert);
    assert.equal(caInfo?.isCa, true);
    assert.equal(info?.isCa, false);
    assert.deepEqual(info?.dnsNames, ['a.svc', 'a']);
    assert.equal(info?.notBefore, NOW - 60_000);
    assert.equal(info?.notAfter, NOW + 1000_000);
    assert.equal(new X509Certificate(serving.cert).publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    assert.ok(new X509Certificate(serving.cert).checkHost('a.svc'));
    assert.ok(signedBy(serving.cert, ca.cert));
    assert.ok(keyMatches(serving));
    assert.ok(!keyMatches({ cert: serving.cert, key: ca.key }));
    const other = await createCa({ commonName: 'tollgate-ca', now: NOW });
    assert.ok(!signedBy(serving.cert, other.cert), 'same name, other key');
  });

  test('a CA for a trust domain has its SPIFFE ID as URI SAN', async () => {
    const ca = await createCa({ commonName: 'tollgate-ca', now: NOW, trustDomain: 'prod.example.com' });
    assert.deepEqual(inspectCertificate(ca.cert)?.uris, ['spiffe://prod.example.com']);
    assert.equal(new X509Certificate(ca.cert).subjectAltName, 'URI:spiffe://prod.example.com');
    assert.equal(trustDomainId('cluster.local'), 'spiffe://cluster.local');
    assert.deepEqual(inspectCertificate((await createCa({ commonName: 'x', now: NOW })).cert)?.uris, []);
  });

  test('unreadable input is null or false, never a throw', () => {
    assert.equal(inspectCertificate('nope'), null);
    assert.equal(keyMatches({ cert: 'x', key: 'y' }), false);
    assert.equal(signedBy('x', 'y'), false);
  });
});

describe('webhookCaBundlePatch', () => {
  test('adds the bundle to every webhook that lacks it or has another', () => {
    const configuration = {
      webhooks: [
        { clientConfig: { caBundle: 'OLD' } },
        { clientConfig: { caBundle: 'NEW' } },
        { clientConfig: {} },
        {},
      ],
    };
    assert.deepEqual(webhookCaBundlePatch(configuration, 'NEW'), [
      { op: 'add', path: '/webhooks/0/clientConfig/caBundle', value: 'NEW' },
      { op: 'add', path: '/webhooks/2/clientConfig/caBundle', value: 'NEW' },
      { op: 'add', path: '/webhooks/3/clientConfig', value: { caBundle: 'NEW' } },
    ]);
    assert.deepEqual(webhookCaBundlePatch({}, 'NEW'), []);
  });
});
