import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { DEFAULT_RESOURCE, type OidcIssuer, startOidcIssuer, TEST_CLIENT } from './oidc-issuer.ts';

let op: OidcIssuer;
before(async () => {
  op = await startOidcIssuer();
});
after(() => op.close());

test('issues JWT access tokens signed with a key its JWKS publishes', async () => {
  const body = (await (await fetch(op.jwksUri)).json()) as {
    keys: { kid: string; kty: string; d?: string }[];
  };
  assert.deepEqual(body.keys.map((k) => k.kty).sort(), ['EC', 'RSA']);
  assert.ok(
    body.keys.every((k) => k.d === undefined),
    'public keys only',
  );
  for (const alg of ['ES256', 'RS256'] as const) {
    const token = await op.getToken({ alg, scope: 'orders:write' });
    const header = decodeProtectedHeader(token);
    assert.equal(header.alg, alg);
    assert.ok(body.keys.some((k) => k.kid === header.kid));
    const claims = decodeJwt(token);
    assert.deepEqual(
      [claims.iss, claims.aud, claims.sub, claims.scope],
      [op.issuer, DEFAULT_RESOURCE, TEST_CLIENT.id, 'orders:write'],
    );
  }
});

test('rotateKeys signs with new kids, keeping or dropping the old ones', async () => {
  const before = decodeProtectedHeader(await op.getToken()).kid;
  await op.rotateKeys();
  const after = decodeProtectedHeader(await op.getToken()).kid;
  assert.notEqual(after, before);
  assert.equal(op.kids.length, 4);
  await op.rotateKeys({ dropOld: true });
  assert.equal(op.kids.length, 2);
  assert.ok(!op.kids.includes(after ?? ''));
});
