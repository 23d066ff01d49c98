import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { trustBundleVersion } from '../../proto/policy-service.ts';
import { createCa, issueCertificate } from '../../test/support/certs.ts';
import { checkTrustBundle, type TrustAnchors, TrustStore } from './trust-store.ts';

let OLD = '';
let NEW = '';
let LEAF = '';
before(async () => {
  OLD = (await createCa({ commonName: 'root-1' })).cert;
  const fresh = await createCa({ commonName: 'root-2' });
  NEW = fresh.cert;
  LEAF = (await issueCertificate(fresh, { dnsNames: ['x'], usages: 'server' })).cert;
});

const stream = (pem: string, version = trustBundleVersion(pem)) => ({ version, pem });

describe('checkTrustBundle', () => {
  test('table', () => {
    const cases: Array<[string, () => { pem: string; version?: string }, RegExp | number]> = [
      ['one root', () => ({ pem: OLD }), 1],
      ['old and new roots', () => ({ pem: `${OLD}\n${NEW}\n` }), 2],
      ['with its version', () => stream(OLD), 1],
      ['empty', () => ({ pem: '' }), /holds no PEM certificate/],
      ['text without a certificate', () => ({ pem: 'hello' }), /holds no PEM certificate/],
      ['another version', () => stream(OLD, trustBundleVersion(NEW)), /^version mismatch/],
      [
        'an unreadable block beside a good one',
        () => ({ pem: `${OLD}\n-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n` }),
        /certificate 2 of the trust bundle is unreadable/,
      ],
      ['a leaf', () => ({ pem: `${OLD}${LEAF}` }), /certificate 2 of the trust bundle is not a CA/],
      ['too large', () => ({ pem: `${OLD}${' '.repeat(300_000)}` }), /is over/],
    ];
    for (const [name, bundle, expected] of cases) {
      const r = checkTrustBundle(bundle(), 'stream');
      if (typeof expected === 'number') assert.equal(r.ok && r.anchors.anchors.length, expected, name);
      else assert.match(r.ok ? 'ok' : r.error, expected, name);
    }
  });
});

describe('TrustStore', () => {
  test('a malformed bundle never replaces a good one', () => {
    const store = new TrustStore();
    const seen: TrustAnchors[] = [];
    store.onChange((t) => seen.push(t));
    assert.deepEqual(store.offerStream(stream(OLD)), { ok: true, changed: true });
    for (const bad of [stream(''), stream('junk'), stream(OLD, 'sha256:00'), stream(`${OLD}${LEAF}`)])
      assert.equal(store.offerStream(bad).ok, false);
    assert.equal(store.offerSign('junk').ok, true, 'ignored while the stream holds');
    assert.equal(store.current?.pem, OLD);
    assert.equal(seen.length, 1);
  });

  test('precedence: the open stream over Sign responses; the latest otherwise; the state dir only when empty', () => {
    const store = new TrustStore();
    const sources: string[] = [];
    store.onChange((t) => sources.push(`${t.source}:${t.anchors.length}`));
    assert.deepEqual(store.restore(OLD), { ok: true, changed: true });
    assert.deepEqual(
      store.restore(`${OLD}${NEW}`),
      { ok: true, changed: false },
      'not over a bundle in force',
    );
    assert.deepEqual(store.offerSign(`${OLD}${NEW}`), { ok: true, changed: true }, 'fresher than the disk');
    assert.deepEqual(store.offerStream(stream(NEW)), { ok: true, changed: true });
    assert.deepEqual(store.offerSign(`${OLD}${NEW}`), { ok: true, changed: false }, 'the open stream holds');
    assert.equal(store.current?.pem, NEW);
    store.streamEnded();
    assert.deepEqual(
      store.offerSign(`${OLD}${NEW}`),
      { ok: true, changed: true },
      'stream gone: the latest wins',
    );
    assert.deepEqual(store.offerStream(stream(`${OLD}${NEW}`)), { ok: true, changed: false }, 'same version');
    assert.equal(store.current?.source, 'stream');
    assert.deepEqual(sources, ['state:1', 'sign:2', 'stream:1', 'sign:2']);
  });
});
