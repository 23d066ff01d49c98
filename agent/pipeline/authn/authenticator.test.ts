import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { decodeProtectedHeader, type JWTPayload } from 'jose';
import { type JwksServer, startJwksServer } from '../../../test/support/jwks-server.ts';
import { type OidcIssuer, startOidcIssuer } from '../../../test/support/oidc-issuer.ts';
import { type AuthnResult, JwtAuthenticator, type JwtAuthenticatorOptions } from './authenticator.ts';

const bearer = (token: string): IncomingHttpHeaders => ({ authorization: `Bearer ${token}` });
const outcome = (r: AuthnResult) => (r.kind === 'invalid' ? r.reason : r.kind);

/** A real fetch that counts the requests to one URL: the JWKS fetches of an authenticator. */
function countingFetch(url: string) {
  const counter = { jwks: 0 };
  const fetch: typeof globalThis.fetch = (input, init) => {
    if (String(input) === url) counter.jwks++;
    return globalThis.fetch(input, init);
  };
  return { counter, fetch };
}

describe('JwtAuthenticator with a real OpenID Provider', () => {
  let op: OidcIssuer;
  before(async () => {
    op = await startOidcIssuer();
  });
  after(() => op.close());

  const provider = () => ({
    name: 'op',
    issuer: op.issuer,
    jwksUri: op.jwksUri,
    jwks: null,
    audiences: ['urn:orders'],
    algorithms: ['RS256', 'ES256'],
    from: [{ header: 'authorization', prefix: 'Bearer ' }],
    maxLifetimeMs: 3_600_000,
    clockSkewMs: 30_000,
    forwardToken: true,
    claimHeaders: [],
  });

  test('ES256 and RS256 access tokens verify; claims carry sub, iss, aud, scope', async () => {
    const auth = new JwtAuthenticator([provider()]);
    for (const alg of ['ES256', 'RS256'] as const) {
      const token = await op.getToken({ resource: 'urn:orders', scope: 'orders:read', alg });
      assert.equal(decodeProtectedHeader(token).alg, alg);
      const r = await auth.authenticate(bearer(token));
      assert.equal(r.kind, 'valid');
      if (r.kind !== 'valid') return;
      assert.deepEqual(
        [r.provider, r.claims.sub, r.claims.iss, r.claims.aud, r.claims.scope, r.source, r.location],
        ['op', 'tollgate-test', op.issuer, 'urn:orders', 'orders:read', 'header', 'authorization'],
      );
    }
  });

  test('a token for another resource is wrong_audience', async () => {
    const auth = new JwtAuthenticator([provider()]);
    assert.equal(
      outcome(await auth.authenticate(bearer(await op.getToken({ resource: 'urn:billing' })))),
      'wrong_audience',
    );
  });

  test('key rotation: a new kid triggers one refetch after the cooldown, then verifies', async () => {
    const clock = { offset: 0 };
    const { counter, fetch } = countingFetch(op.jwksUri);
    const auth = new JwtAuthenticator([provider()], { fetch, now: () => Date.now() + clock.offset });
    assert.equal(
      (await auth.authenticate(bearer(await op.getToken({ resource: 'urn:orders' })))).kind,
      'valid',
    );
    await op.rotateKeys({ dropOld: true });
    const rotated = await op.getToken({ resource: 'urn:orders' });
    assert.equal(outcome(await auth.authenticate(bearer(rotated))), 'unknown_kid', 'within the cooldown');
    assert.equal(counter.jwks, 1);
    clock.offset += 30_000;
    assert.equal((await auth.authenticate(bearer(rotated))).kind, 'valid');
    assert.equal(counter.jwks, 2);
  });
});

describe('JwtAuthenticator with a JWKS server', () => {
  let jwks: JwksServer;
  before(async () => {
    jwks = await startJwksServer();
  });
  after(() => jwks.close());

  function setup(options: JwtAuthenticatorOptions = {}) {
    jwks.setDown(false);
    const clock = { t: Date.now() };
    const auth = new JwtAuthenticator([jwks.provider()], { now: () => clock.t, ...options });
    const claims = (over: JWTPayload = {}): JWTPayload => ({
      iss: jwks.issuer,
      aud: 'orders-api',
      sub: 'user-1',
      iat: Math.floor(clock.t / 1000),
      exp: Math.floor(clock.t / 1000) + 300,
      ...over,
    });
    return { auth, clock, claims, base: jwks.requests };
  }

  test('50 concurrent verifications on a cold cache: exactly one JWKS fetch', async () => {
    const { auth, claims, base } = setup();
    const tokens = await Promise.all(
      Array.from({ length: 50 }, (_, i) => jwks.sign(claims({ jti: `t${i}` }))),
    );
    const results = await Promise.all(tokens.map((t) => auth.authenticate(bearer(t))));
    assert.ok(results.every((r) => r.kind === 'valid'));
    assert.equal(jwks.requests - base, 1);
    assert.equal(auth.stats().verifications, 50);
  });

  test('a cached token needs no signature work: it survives its key being withdrawn', async () => {
    const { auth, clock, claims } = setup({ jwksMaxAgeMs: 60_000 });
    const oldKid = jwks.currentKid;
    const token = await jwks.sign(claims({ exp: Math.floor(clock.t / 1000) + 3600 }));
    assert.equal((await auth.authenticate(bearer(token))).kind, 'valid');
    await jwks.rotate({ dropOld: true });
    clock.t += 60_000;
    // A probe under the old kid makes the stale key set refresh in the background;
    // once it has, the old kid is gone: a full verification of `token` would fail.
    const probe = await jwks.sign(claims({ jti: 'probe' }), { kid: oldKid });
    await auth.authenticate(bearer(probe));
    await auth.idle();
    assert.equal(outcome(await auth.authenticate(bearer(probe))), 'unknown_kid');
    const before = auth.stats().verifications;
    const again = await auth.authenticate(bearer(token));
    assert.equal(again.kind, 'valid');
    assert.equal(auth.stats().verifications, before, 'served from the cache');
    assert.equal(auth.stats().cacheHits, 1);
  });

  test('a cached token is not served after its exp', async () => {
    const { auth, clock, claims } = setup();
    const token = await jwks.sign(claims({ exp: Math.floor(clock.t / 1000) + 60 }));
    assert.equal((await auth.authenticate(bearer(token))).kind, 'valid');
    clock.t += 61_000;
    assert.equal(outcome(await auth.authenticate(bearer(token))), 'expired');
    assert.equal(auth.stats().cacheHits, 0);
  });

  test('JWKS down: known kids verify, unknown kid is unknown_kid; never fetched is jwks_unavailable', async () => {
    const { auth, clock, claims } = setup();
    assert.equal((await auth.authenticate(bearer(await jwks.sign(claims({ jti: 'a' }))))).kind, 'valid');
    jwks.setDown(true);
    clock.t += 30_000;
    assert.equal((await auth.authenticate(bearer(await jwks.sign(claims({ jti: 'b' }))))).kind, 'valid');
    const unknown = await jwks.sign(claims(), { kid: 'rotated-away' });
    assert.equal(outcome(await auth.authenticate(bearer(unknown))), 'unknown_kid');
    assert.equal(auth.stats().jwks.corp?.lastError, 'ERR_JWKS_HTTP');
    const cold = new JwtAuthenticator([jwks.provider()]);
    assert.equal(outcome(await cold.authenticate(bearer(unknown))), 'jwks_unavailable');
  });

  test('cookie and custom-header sources', async () => {
    const { claims } = setup();
    const provider = jwks.provider({ from: [{ cookie: 'session' }, { header: 'x-api-token', prefix: '' }] });
    const auth = new JwtAuthenticator([provider]);
    const token = await jwks.sign(claims());
    const viaCookie = await auth.authenticate({ cookie: `theme=dark; session="${token}"; lang=en` });
    assert.deepEqual(viaCookie.kind === 'valid' && [viaCookie.source, viaCookie.location], [
      'cookie',
      'session',
    ]);
    const viaHeader = await auth.authenticate({ 'x-api-token': token });
    assert.deepEqual(viaHeader.kind === 'valid' && [viaHeader.source, viaHeader.location], [
      'header',
      'x-api-token',
    ]);
    assert.equal((await auth.authenticate(bearer(token))).kind, 'none', 'authorization is not a source here');
  });

  test('two providers on one header: chosen by the token iss', async () => {
    const { claims } = setup();
    const a = jwks.provider({ name: 'a', issuer: 'https://a.test' });
    const b = jwks.provider({ name: 'b', issuer: 'https://b.test' });
    const auth = new JwtAuthenticator([a, b]);
    const r = await auth.authenticate(bearer(await jwks.sign(claims({ iss: 'https://b.test' }))));
    assert.equal(r.kind === 'valid' && r.provider, 'b');
    const other = await auth.authenticate(bearer(await jwks.sign(claims({ iss: 'https://c.test' }))));
    assert.deepEqual(other, { kind: 'invalid', provider: null, reason: 'wrong_issuer' });
    assert.deepEqual(await auth.authenticate(bearer('garbage')), {
      kind: 'invalid',
      provider: null,
      reason: 'malformed',
    });
  });

  test('a failing token is never skipped for another one', async () => {
    const { claims } = setup();
    const provider = jwks.provider({
      from: [{ header: 'authorization', prefix: 'Bearer ' }, { cookie: 'session' }],
    });
    const auth = new JwtAuthenticator([provider]);
    const good = await jwks.sign(claims());
    const expired = await jwks.sign(claims({ exp: 1 }));
    const r = await auth.authenticate({ authorization: `Bearer ${expired}`, cookie: `session=${good}` });
    assert.deepEqual(r, { kind: 'invalid', provider: 'corp', reason: 'expired' });
  });

  test('no token, empty token, repeated header', async () => {
    const { auth } = setup();
    assert.deepEqual(await auth.authenticate({ authorization: 'Basic dXNlcjpwdw==' }), { kind: 'none' });
    assert.equal(outcome(await auth.authenticate({ authorization: 'Bearer' })), 'malformed');
    const repeated = { authorization: ['Bearer a', 'Bearer b'] } as unknown as IncomingHttpHeaders;
    assert.deepEqual(await auth.authenticate(repeated), {
      kind: 'invalid',
      provider: 'corp',
      reason: 'malformed',
    });
  });
});

test('inline JWKS: warmUp fetches nothing, tokens verify offline', async () => {
  const jwks = await startJwksServer();
  try {
    const keys = (await (await fetch(jwks.jwksUri)).json()) as { keys: Record<string, unknown>[] };
    let calls = 0;
    const refusingFetch: typeof globalThis.fetch = async () => {
      calls++;
      return new Response('{}', { status: 500 });
    };
    const auth = new JwtAuthenticator([jwks.provider({ jwksUri: null, jwks: keys })], {
      fetch: refusingFetch,
    });
    await auth.warmUp();
    const now = Math.floor(Date.now() / 1000);
    const token = await jwks.sign({ iss: jwks.issuer, aud: 'orders-api', sub: 'u', exp: now + 60 });
    assert.equal((await auth.authenticate(bearer(token))).kind, 'valid');
    assert.equal(calls, 0);
  } finally {
    await jwks.close();
  }
});
