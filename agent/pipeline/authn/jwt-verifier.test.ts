import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CompactSign, exportJWK, generateKeyPair, type JWTPayload, SignJWT, UnsecuredJWT } from 'jose';
import type { CompiledJwtProvider } from '../../../policy/compile/bundle.ts';
import { testProvider } from '../../../test/support/jwks-server.ts';
import { JwksSource } from './jwks-source.ts';
import { isAcceptableAlg, JwtVerifier, reasonFor } from './jwt-verifier.ts';

const NOW = 1_800_000_000_000;
const SEC = NOW / 1000;
const es = await generateKeyPair('ES256');
const es2 = await generateKeyPair('ES256');
const es3 = await generateKeyPair('ES256');
const stranger = await generateKeyPair('ES256');
const rs = await generateKeyPair('RS256');
const jwks = {
  keys: [
    { ...(await exportJWK(es.publicKey)), kid: 'es', alg: 'ES256' },
    { ...(await exportJWK(rs.publicKey)), kid: 'rs' },
    // Two keys without kid: a kid-less token must be tried against each.
    { ...(await exportJWK(es2.publicKey)) },
    { ...(await exportJWK(es3.publicKey)) },
    { kty: 'oct', k: Buffer.from('s3cret-s3cret-s3cret-s3cret-s3cret').toString('base64url'), kid: 'hs' },
  ],
};

/** Standard claims with overrides; an override of `undefined` removes the claim. */
const claims = (over: Record<string, unknown> = {}): JWTPayload =>
  Object.fromEntries(
    Object.entries({
      iss: 'https://issuer.test',
      aud: 'orders-api',
      sub: 'user-1',
      iat: SEC - 10,
      exp: SEC + 300,
      ...over,
    }).filter(([, v]) => v !== undefined),
  );
const sign = (
  c: JWTPayload,
  header: { alg: string; kid?: string } = { alg: 'ES256', kid: 'es' },
  key = es.privateKey,
) => new SignJWT(c).setProtectedHeader(header).sign(key);

function verifier(over: Partial<CompiledJwtProvider> = {}, now = NOW) {
  const provider = testProvider({ jwks, ...over });
  return new JwtVerifier(provider, new JwksSource({ jwks }), { now: () => now });
}

async function reason(token: string, over: Partial<CompiledJwtProvider> = {}, now = NOW) {
  const r = await verifier(over, now).verify(token);
  return r.ok ? 'ok' : r.reason;
}

describe('JwtVerifier', () => {
  test('a valid token yields its claims', async () => {
    const r = await verifier().verify(await sign(claims()));
    assert.ok(r.ok);
    assert.equal(r.claims.sub, 'user-1');
  });

  test('RS256 token with a kid-less JWK alg', async () => {
    assert.equal(await reason(await sign(claims(), { alg: 'RS256', kid: 'rs' }, rs.privateKey)), 'ok');
  });

  test('alg none and HS256 are refused before any key lookup', async () => {
    let lookups = 0;
    const keys = {
      getKey: async () => {
        lookups++;
        throw new Error('must not be called');
      },
    };
    const v = new JwtVerifier(testProvider({ algorithms: ['HS256', 'none', 'ES256'] }), keys, {
      now: () => NOW,
    });
    const none = new UnsecuredJWT(claims()).encode();
    const secret = new TextEncoder().encode('s3cret-s3cret-s3cret-s3cret-s3cret');
    const hs = await new SignJWT(claims()).setProtectedHeader({ alg: 'HS256', kid: 'hs' }).sign(secret);
    assert.deepEqual(await v.verify(none), { ok: false, reason: 'unsupported_alg' });
    assert.deepEqual(await v.verify(hs), { ok: false, reason: 'unsupported_alg' });
    assert.equal(lookups, 0);
    // Even with the symmetric key published in the JWKS.
    assert.equal(await reason(hs, { algorithms: ['HS256', 'ES256'] }), 'unsupported_alg');
    assert.equal(isAcceptableAlg('hs512'), false);
  });

  test('an alg outside the provider list is refused', async () => {
    assert.equal(await reason(await sign(claims()), { algorithms: ['RS256'] }), 'unsupported_alg');
  });

  const table: [string, () => Promise<string>, Partial<CompiledJwtProvider>, string][] = [
    ['wrong iss', () => sign(claims({ iss: 'https://evil.test' })), {}, 'wrong_issuer'],
    ['missing iss', () => sign(claims({ iss: undefined })), {}, 'missing_claim'],
    ['wrong aud', () => sign(claims({ aud: 'other' })), {}, 'wrong_audience'],
    ['aud array with one match', () => sign(claims({ aud: ['x', 'orders-api'] })), {}, 'ok'],
    ['any aud when audiences is null', () => sign(claims({ aud: 'other' })), { audiences: null }, 'ok'],
    ['expired', () => sign(claims({ exp: SEC - 1 })), {}, 'expired'],
    ['expired within clock skew', () => sign(claims({ exp: SEC - 20 })), { clockSkewMs: 30_000 }, 'ok'],
    ['expired beyond clock skew', () => sign(claims({ exp: SEC - 40 })), { clockSkewMs: 30_000 }, 'expired'],
    ['nbf in the future', () => sign(claims({ nbf: SEC + 60 })), {}, 'not_yet_valid'],
    ['nbf within clock skew', () => sign(claims({ nbf: SEC + 20 })), { clockSkewMs: 30_000 }, 'ok'],
    [
      'lifetime above max',
      () => sign(claims({ iat: SEC, exp: SEC + 7201 })),
      { maxLifetimeMs: 7_200_000 },
      'lifetime_exceeded',
    ],
    [
      'lifetime at max',
      () => sign(claims({ iat: SEC, exp: SEC + 7200 })),
      { maxLifetimeMs: 7_200_000 },
      'ok',
    ],
    [
      'no exp with maxLifetime',
      () => sign(claims({ exp: undefined })),
      { maxLifetimeMs: 3_600_000 },
      'missing_claim',
    ],
    [
      'no iat with maxLifetime',
      () => sign(claims({ iat: undefined })),
      { maxLifetimeMs: 3_600_000 },
      'missing_claim',
    ],
    [
      'string iat with maxLifetime',
      () => sign(claims({ iat: 'x' })),
      { maxLifetimeMs: 3_600_000 },
      'malformed',
    ],
    ['no exp without maxLifetime', () => sign(claims({ exp: undefined })), {}, 'ok'],
    ['string exp', () => sign(claims({ exp: 'soon' })), {}, 'malformed'],
    ['unknown kid', () => sign(claims(), { alg: 'ES256', kid: 'nope' }), {}, 'unknown_kid'],
    ['kid-less token, second kid-less key', () => sign(claims(), { alg: 'ES256' }, es3.privateKey), {}, 'ok'],
    [
      'kid-less token, no key fits',
      () => sign(claims(), { alg: 'ES256' }, stranger.privateKey),
      {},
      'bad_signature',
    ],
  ];
  for (const [name, make, over, expected] of table) {
    test(name, async () => assert.equal(await reason(await make(), over), expected));
  }

  test('bad signature: payload swapped', async () => {
    const [h, , s] = (await sign(claims())).split('.');
    const forged = Buffer.from(JSON.stringify(claims({ sub: 'admin' }))).toString('base64url');
    assert.equal(await reason(`${h}.${forged}.${s}`), 'bad_signature');
  });

  const b64 = (o: unknown) =>
    Buffer.from(typeof o === 'string' ? o : JSON.stringify(o)).toString('base64url');
  for (const [name, token] of [
    ['one segment', 'abc'],
    ['two segments', 'a.b'],
    ['header not JSON', `${b64('{nope')}.${b64({})}.sig`],
    ['header without alg', `${b64({ kid: 'es' })}.${b64({})}.sig`],
    ['signature not base64url-decodable', `${b64({ alg: 'ES256', kid: 'es' })}.${b64({})}.c2ln=`],
    ['spaces', 'a b.c.d'],
  ] as const) {
    test(`malformed: ${name}`, async () => assert.equal(await reason(token), 'malformed'));
  }

  test('malformed: a signed payload that is not a JSON object', async () => {
    const token = await new CompactSign(new TextEncoder().encode('[1,2]'))
      .setProtectedHeader({ alg: 'ES256', kid: 'es' })
      .sign(es.privateKey);
    assert.equal(await reason(token), 'malformed');
  });

  test('no usable keys: jwks_unavailable', async () => {
    const v = new JwtVerifier(testProvider(), new JwksSource({ jwks: { keys: [] } }), { now: () => NOW });
    assert.deepEqual(await v.verify(await sign(claims())), { ok: false, reason: 'jwks_unavailable' });
  });

  test('a failure that is not about the token rejects (the caller fails closed)', async () => {
    const keys = {
      getKey: async (): Promise<never> => {
        throw new TypeError('bug');
      },
    };
    const v = new JwtVerifier(testProvider(), keys, { now: () => NOW });
    await assert.rejects(v.verify(await sign(claims())), TypeError);
    assert.equal(reasonFor(new Error('x')), undefined);
  });
});
