/**
 * Abuse protection against the real `tollgate agent` process: a client (by
 * source address: the whole 127/8 is loopback, so each test binds its own)
 * blocked after repeated auth failures or scanning of undeclared paths gets
 * 429 with Retry-After for everything, the app sees none of it, other clients
 * are untouched, the block lifts by itself, and the block is logged and counted.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Reply, send, startAgent, startUpstream } from '../support/agent-process.ts';
import { type JwksServer, startJwksServer } from '../support/jwks-server.ts';

function policyYaml(jwks: JwksServer): string {
  return `apiVersion: tollgate.dev/v1alpha1
kind: ApiPolicy
metadata: {name: orders, namespace: shop}
spec:
  jwt:
    - name: corp
      issuer: ${jwks.issuer}
      jwksUri: ${jwks.jwksUri}
      audiences: [orders-api]
  protection:
    authFailures: {threshold: 3, window: 1m, block: 1s}
    unmatched: {threshold: 3, window: 1m, block: 1s}
  routes:
    - name: me
      methods: [GET]
      path: /v1/me
      allow:
        - {jwt: corp}
    - name: health
      methods: [GET]
      path: /healthz
      public: true
`;
}

/** One request from the given loopback source address. */
function sendFrom(
  localAddress: string,
  port: number,
  path: string,
  headers: Record<string, string> = {},
): Promise<Reply> {
  return send(port, path, headers, 'GET', localAddress);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('tollgate agent: abuse protection', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-protection-'));
  let jwks: JwksServer;
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  let agent: Awaited<ReturnType<typeof startAgent>>;
  let stdout = '';
  let good = '';
  let forged = '';

  before(async () => {
    jwks = await startJwksServer({ alg: 'ES256' });
    upstream = await startUpstream();
    const file = join(dir, 'policy.yaml');
    writeFileSync(file, policyYaml(jwks));
    agent = await startAgent(file, upstream.port);
    agent.proc.stdout?.on('data', (chunk: string) => {
      stdout += chunk;
    });
    const claims = { iss: jwks.issuer, aud: 'orders-api', exp: Math.floor(Date.now() / 1000) + 600 };
    good = await jwks.sign({ ...claims, sub: 'alice' });
    forged = `${good.slice(0, -4)}AAAA`;
  });

  after(async () => {
    agent?.proc.kill('SIGTERM');
    await new Promise((r) => agent?.proc.once('exit', r));
    upstream?.server.close();
    await jwks?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
  const code = (r: Reply) => (JSON.parse(r.body) as { code: string }).code;

  test('repeated auth failures block the client: 429 with Retry-After, the app never sees it', async () => {
    const client = '127.0.0.2';
    const seenBefore = upstream.seen.length;
    for (let i = 0; i < 3; i++) {
      const r = await sendFrom(client, agent.port, '/v1/me', bearer(forged));
      assert.equal(r.status, 401, r.body);
    }
    const blocked = await sendFrom(client, agent.port, '/v1/me', bearer(forged));
    assert.equal(blocked.status, 429, blocked.body);
    assert.equal(code(blocked), 'ERR_PROTECTION_BLOCKED');
    assert.equal(blocked.headers['retry-after'], '1');
    assert.equal(blocked.headers['content-type'], 'application/problem+json');
    // Even a valid token from that client is refused while blocked.
    const valid = await sendFrom(client, agent.port, '/v1/me', bearer(good));
    assert.equal(valid.status, 429);
    // Another client is not blocked.
    const other = await sendFrom('127.0.0.3', agent.port, '/v1/me', bearer(good));
    assert.equal(other.status, 200, other.body);
    await sleep(50);
    assert.deepEqual(
      upstream.seen.slice(seenBefore).map((s) => s.url),
      ['/v1/me'],
    );

    // The security event: logged once, with the key and reason, never the token.
    const events = stdout
      .split('\n')
      .filter((l) => l.includes('client blocked'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(events.length, 1);
    assert.equal(events[0]?.key, client);
    assert.equal(events[0]?.reason, 'authFailures');
    assert.equal(events[0]?.policy, 'shop/orders');
    assert.equal(events[0]?.level, 40);
    assert.equal(stdout.includes(forged), false);
    assert.equal(stdout.includes(good), false);

    const metrics = await fetch(`http://127.0.0.1:${agent.admin}/metrics`).then((r) => r.text());
    assert.match(metrics, /tollgate_protection_blocks_total\{reason="authFailures"\} 1\b/);
    assert.match(metrics, /tollgate_protection_refused_total\{reason="authFailures"\} 2\b/);

    // The block lifts by itself after `block` (1s).
    await sleep(1100);
    const released = await sendFrom(client, agent.port, '/v1/me', bearer(good));
    assert.equal(released.status, 200, released.body);
  });

  test('scanning undeclared paths blocks the client', async () => {
    const client = '127.0.0.4';
    for (const path of ['/.env', '/wp-login.php', '/admin']) {
      const r = await sendFrom(client, agent.port, path);
      assert.equal(r.status, 404, r.body);
    }
    // Contract order (route/method before the protection block): the 4th undeclared path is still a 404,
    // and it starts the block.
    assert.equal((await sendFrom(client, agent.port, '/.git/config')).status, 404);
    const blocked = await sendFrom(client, agent.port, '/healthz');
    assert.equal(blocked.status, 429);
    assert.equal(code(blocked), 'ERR_PROTECTION_BLOCKED');
    assert.equal((await sendFrom('127.0.0.5', agent.port, '/healthz')).status, 200);
    await sleep(1100);
    assert.equal((await sendFrom(client, agent.port, '/healthz')).status, 200);
  });
});
