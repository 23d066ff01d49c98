import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, test } from 'node:test';
import { exportJWK, generateKeyPair } from 'jose';
import { JwksUnavailableError, parseJwks, publicSigningKey, usableKeys } from './jwks-keys.ts';

const ec = await generateKeyPair('ES256', { extractable: true });
const ecPublic = { ...(await exportJWK(ec.publicKey)), kid: 'ec' };
const ecPrivate = { ...(await exportJWK(ec.privateKey)), kid: 'ec-private' };
// jose refuses to make a weak key, so node:crypto does.
const weakRsa = {
  ...generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'jwk' }),
  kid: 'weak',
};
const ed = await generateKeyPair('EdDSA');
const okp = { ...(await exportJWK(ed.publicKey)), kid: 'ed' };

describe('publicSigningKey', () => {
  const cases: [string, unknown, boolean][] = [
    ['EC public key', ecPublic, true],
    ['OKP public key', okp, true],
    ['EC key with private part d', ecPrivate, false],
    ['oct (symmetric) key', { kty: 'oct', k: 'c2VjcmV0', kid: 'hmac' }, false],
    ['RSA under 2048 bits', weakRsa, false],
    ['encryption key', { ...ecPublic, use: 'enc' }, false],
    ['numeric kid', { ...ecPublic, kid: 7 }, false],
    ['EC without y', { ...ecPublic, y: undefined }, false],
    ['not an object', 'key', false],
    ['array', [ecPublic], false],
    ['unknown kty', { kty: 'AKP', pub: 'x' }, false],
  ];
  for (const [name, input, usable] of cases) {
    test(name, () => assert.equal(publicSigningKey(input) !== undefined, usable));
  }

  test('keeps only public members', () => {
    const out = publicSigningKey({ ...ecPublic, alg: 'ES256', use: 'sig', x5c: ['MII...'], extra: 1 });
    assert.deepEqual(Object.keys(out ?? {}).sort(), ['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y']);
  });
});

describe('parseJwks / usableKeys', () => {
  test('non-JSON is ERR_JWKS_NOT_JSON', () => {
    assert.throws(
      () => parseJwks('<html>'),
      (e) => e instanceof JwksUnavailableError && e.code === 'ERR_JWKS_NOT_JSON',
    );
  });
  for (const body of ['null', '[]', '{"keys":{}}', '{}']) {
    test(`${body} is ERR_JWKS_NO_KEYS`, () => {
      assert.throws(
        () => parseJwks(body),
        (e) => e instanceof JwksUnavailableError && e.code === 'ERR_JWKS_NO_KEYS',
      );
    });
  }
  test('filters a mixed set in order', () => {
    const keys = usableKeys(
      parseJwks(JSON.stringify({ keys: [{ kty: 'oct', k: 'AA' }, ecPublic, ecPrivate, okp] })),
    );
    assert.deepEqual(
      keys.map((k) => k.kid),
      ['ec', 'ed'],
    );
  });
});
