import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { errors } from 'jose';
import { type JwksServer, startJwksServer } from '../../../test/support/jwks-server.ts';
import { JwksSource, type JwksSourceOptions, JwksUnavailableError } from './jwks-source.ts';

const TOKEN = { payload: '', signature: '' };
const es256 = (kid: string) => ({ alg: 'ES256', kid });

let server: JwksServer;
before(async () => {
  server = await startJwksServer();
});
after(() => server.close());

/** A fresh source over the shared server, on a manual clock; resets the server's switches. */
function setup(options: JwksSourceOptions = {}) {
  server.setDown(false);
  server.setBody(null);
  server.setDelay(0);
  const clock = { t: 1_000_000 };
  const source = new JwksSource({ jwksUri: server.jwksUri }, { now: () => clock.t, ...options });
  return { clock, source, base: server.requests };
}

const noMatchingKey = (e: unknown) => e instanceof errors.JWKSNoMatchingKey;
const unavailable = (code: string) => (e: unknown) => e instanceof JwksUnavailableError && e.code === code;

describe('JwksSource (remote)', () => {
  test('fetches lazily on first use, then serves from cache', async () => {
    const { source, base } = setup();
    assert.equal(server.requests, base);
    await source.getKey(es256(server.currentKid), TOKEN);
    await source.getKey(es256(server.currentKid), TOKEN);
    assert.equal(server.requests - base, 1);
    assert.equal(source.stats().fetches, 1);
    assert.ok(source.stats().lastSuccessAt !== null);
  });

  test('concurrent callers on a cold source share one fetch', async () => {
    const { source, base } = setup();
    await Promise.all(Array.from({ length: 50 }, () => source.getKey(es256(server.currentKid), TOKEN)));
    assert.equal(server.requests - base, 1);
  });

  test('unknown kid refetches once per cooldown', async () => {
    const { source, clock, base } = setup({ cooldownMs: 30_000 });
    const oldKid = server.currentKid;
    await source.getKey(es256(oldKid), TOKEN);
    const newKid = await server.rotate();
    // Within the cooldown after the first fetch: no refetch, the kid stays unknown.
    await assert.rejects(source.getKey(es256(newKid), TOKEN), noMatchingKey);
    assert.equal(server.requests - base, 1);
    clock.t += 30_000;
    await source.getKey(es256(newKid), TOKEN);
    assert.equal(server.requests - base, 2);
    await assert.rejects(source.getKey(es256('nope'), TOKEN), noMatchingKey);
    await assert.rejects(source.getKey(es256('nope'), TOKEN), noMatchingKey);
    assert.equal(server.requests - base, 2);
    await source.getKey(es256(oldKid), TOKEN);
  });

  test('issuer down: last good keys kept, unknown kid still refused, backoff grows', async () => {
    const { source, clock, base } = setup({ cooldownMs: 0 });
    const kid = server.currentKid;
    await source.getKey(es256(kid), TOKEN);
    server.setDown(true);
    await assert.rejects(source.getKey(es256('rotated'), TOKEN), noMatchingKey);
    assert.equal(server.requests - base, 2);
    assert.deepEqual([source.stats().failures, source.stats().lastError], [1, 'ERR_JWKS_HTTP']);
    assert.equal(source.stats().retryAt, clock.t + 1000);
    await source.getKey(es256(kid), TOKEN);
    await assert.rejects(source.getKey(es256('rotated'), TOKEN), noMatchingKey);
    assert.equal(server.requests - base, 2, 'no attempt while backing off');
    clock.t += 1000;
    await assert.rejects(source.getKey(es256('rotated'), TOKEN), noMatchingKey);
    assert.equal(server.requests - base, 3);
    assert.equal(source.stats().retryAt, clock.t + 2000);
    for (let i = 0; i < 10; i++) {
      clock.t += 60_000;
      await source.refresh();
    }
    assert.equal(source.stats().retryAt, clock.t + 60_000, 'capped at 60 s');
    server.setDown(false);
    clock.t += 60_000;
    await source.refresh();
    assert.deepEqual([source.stats().consecutiveFailures, source.stats().lastError], [0, null]);
  });

  test('never fetched and down: jwks unavailable, and the retry waits', async () => {
    const { source, base } = setup();
    server.setDown(true, 'destroy');
    await assert.rejects(source.getKey(es256('any'), TOKEN), unavailable('ERR_JWKS_NETWORK'));
    await assert.rejects(source.getKey(es256('any'), TOKEN), unavailable('ERR_JWKS_NETWORK'));
    assert.equal(server.requests - base, 1);
  });

  const garbage: [string, string, string][] = [
    ['non-JSON', '<html>oops</html>', 'ERR_JWKS_NOT_JSON'],
    ['no keys', '{"keys":[]}', 'ERR_JWKS_NO_KEYS'],
    ['only a symmetric key', '{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"h"}]}', 'ERR_JWKS_NO_KEYS'],
  ];
  for (const [name, body, code] of garbage) {
    test(`garbage (${name}) is a failure that keeps the last good keys`, async () => {
      const { source, clock } = setup({ cooldownMs: 0 });
      const kid = server.currentKid;
      await source.getKey(es256(kid), TOKEN);
      server.setBody(body);
      clock.t += 1;
      await source.refresh();
      assert.equal(source.stats().lastError, code);
      await source.getKey(es256(kid), TOKEN);
    });
  }

  test('a slow JWKS times out', async () => {
    const { source } = setup({ timeoutMs: 50 });
    server.setDelay(250);
    await assert.rejects(source.getKey(es256('any'), TOKEN), unavailable('ERR_JWKS_TIMEOUT'));
    server.setDelay(0);
  });

  test('keys older than maxAge are refreshed in the background on use', async () => {
    const { source, clock, base } = setup({ maxAgeMs: 600_000 });
    const kid = server.currentKid;
    await source.getKey(es256(kid), TOKEN);
    clock.t += 600_000;
    await source.getKey(es256(kid), TOKEN);
    await source.idle();
    assert.equal(server.requests - base, 2);
    await source.getKey(es256(kid), TOKEN);
    assert.equal(server.requests - base, 2);
  });
});

describe('JwksSource (inline)', () => {
  test('a published key WebCrypto cannot import counts as no matching key', async () => {
    const x = Buffer.alloc(32, 1).toString('base64url');
    const source = new JwksSource({ jwks: { keys: [{ kty: 'EC', crv: 'P-256', x, y: x, kid: 'broken' }] } });
    await assert.rejects(source.getKey(es256('broken'), TOKEN), noMatchingKey);
  });

  test('never fetches; unusable keys mean jwks unavailable', async () => {
    let calls = 0;
    const fetch: typeof globalThis.fetch = async () => {
      calls++;
      return new Response('{}');
    };
    const source = new JwksSource({ jwks: { keys: [{ kty: 'oct', k: 'c2VjcmV0' }] } }, { fetch });
    await assert.rejects(source.getKey(es256('x'), TOKEN), unavailable('ERR_JWKS_NO_KEYS'));
    assert.equal(calls, 0);
  });
});
