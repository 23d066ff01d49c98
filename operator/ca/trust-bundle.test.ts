import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { trustBundleVersion } from '../../proto/policy-service.ts';
import { createCa, issueCertificate, type TestCa } from '../../test/support/certs.ts';
import { buildTrustBundle, pemBlocks } from './trust-bundle.ts';

describe('buildTrustBundle', () => {
  let oldRoot: TestCa;
  let newRoot: TestCa;
  let leaf: string;
  before(async () => {
    oldRoot = await createCa({ commonName: 'tollgate-ca-1' });
    newRoot = await createCa({ commonName: 'tollgate-ca-2' });
    leaf = (await issueCertificate(oldRoot, { dnsNames: ['x'], usages: 'server' })).cert;
  });

  const roots = (pem: string) => pemBlocks(pem).length;

  test('table: what ca.crt holds and what the bundle becomes', () => {
    const cases: Array<[string, string | undefined, string, number, RegExp | null]> = [
      ['ca.crt absent: the signing CA', undefined, oldRoot.cert, 1, null],
      ['ca.crt is the signing CA', oldRoot.cert, oldRoot.cert, 1, null],
      ['old and new roots (stage 1)', `${oldRoot.cert}\n${newRoot.cert}`, oldRoot.cert, 2, null],
      [
        'old and new roots, signing with the new one (stage 2)',
        `${oldRoot.cert}${newRoot.cert}`,
        newRoot.cert,
        2,
        null,
      ],
      ['a duplicate is dropped', `${oldRoot.cert}${oldRoot.cert}`, oldRoot.cert, 1, null],
      ['ca.crt without the signing CA: added', newRoot.cert, oldRoot.cert, 2, /does not hold the signing CA/],
      ['a leaf in ca.crt is left out', `${leaf}${oldRoot.cert}`, oldRoot.cert, 1, /not a CA/],
      [
        'an unreadable block is left out',
        `-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n${oldRoot.cert}`,
        oldRoot.cert,
        1,
        /unreadable/,
      ],
    ];
    for (const [name, caCrt, signing, count, problem] of cases) {
      const { bundle, problems } = buildTrustBundle(caCrt, signing);
      assert.equal(roots(bundle.pem), count, name);
      assert.equal(bundle.version, trustBundleVersion(bundle.pem), name);
      if (problem) assert.match(problems.join('; '), problem, name);
      else assert.deepEqual(problems, [], name);
    }
  });

  test('the version changes with the roots and only with them', () => {
    const one = buildTrustBundle(oldRoot.cert, oldRoot.cert).bundle;
    const again = buildTrustBundle(`\n${oldRoot.cert}\n\n`, oldRoot.cert).bundle;
    const two = buildTrustBundle(`${oldRoot.cert}${newRoot.cert}`, oldRoot.cert).bundle;
    assert.equal(one.version, again.version, 'whitespace around blocks does not matter');
    assert.notEqual(one.version, two.version);
    assert.match(two.version, /^sha256:[0-9a-f]{64}$/);
  });
});
