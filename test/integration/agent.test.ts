/**
 * The real `tollgate agent` process in standalone mode, in front of a real echo
 * upstream that records what reaches it, with tokens from a real JWKS server.
 * Every status of the contract's table, what the app receives, JWKS outages and
 * policy edits.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { eventually, type Reply, send, startAgent, startUpstream } from '../support/agent-process.ts';
import { type JwksServer, startJwksServer } from '../support/jwks-server.ts';

function policyYaml(jwks: JwksServer, extra: { mode?: string; healthPublic?: boolean } = {}): string {
  return `apiVersion: tollgate.dev/v1alpha1
kind: ApiPolicy
metadata: {name: orders, namespace: shop}
spec:
  mode: ${extra.mode ?? 'Enforce'}
  jwt:
    - name: corp
      issuer: ${jwks.issuer}
      jwksUri: ${jwks.jwksUri}
      audiences: [orders-api]
      claimHeaders:
        - {claim: sub, header: x-user-id}
  rateLimits:
    - {name: per-ip, key: {ip: {}}, limit: 3, period: 1m}
  defaults:
    allow:
      - {jwt: corp}
  routes:
    - name: get-order
      methods: [GET, HEAD]
      path: /v1/users/{userId}/orders/{orderId}
      allow:
        - {jwt: corp, when: params.userId == claims.sub}
    - name: slow
      methods: [GET]
      path: /v1/slow
      public: true
      timeout: 500ms
    - name: limited
      methods: [GET]
      path: /v1/limited
      public: true
      rateLimit: per-ip
    - name: retired
      methods: [GET]
      path: /v0/**
      public: true
      deprecation: {since: 2019-01-01, sunset: 2020-01-01}
    - name: health
      methods: [GET]
      path: /healthz
      public: ${extra.healthPublic ?? true}
`;
}

describe('tollgate agent (standalone)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-agent-'));
  const policyFile = join(dir, 'policy.yaml');
  let jwks: JwksServer;
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  let agent: Awaited<ReturnType<typeof startAgent>>;
  let alice: string;
  let bob: string;

  before(async () => {
    jwks = await startJwksServer({ alg: 'ES256' });
    upstream = await startUpstream();
    writeFileSync(policyFile, policyYaml(jwks));
    agent = await startAgent(policyFile, upstream.port);
    const claims = { iss: jwks.issuer, aud: 'orders-api', exp: Math.floor(Date.now() / 1000) + 600 };
    alice = await jwks.sign({ ...claims, sub: 'alice' });
    bob = await jwks.sign({ ...claims, sub: 'bob' });
  });

  after(async () => {
    agent?.proc.kill('SIGTERM');
    await new Promise((r) => agent?.proc.once('exit', r));
    upstream?.server.close();
    await jwks?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
  const problem = (r: Reply) => JSON.parse(r.body) as { status: number; code: string; requestId: string };

  test('allowed: the app receives the normalized path, verified identity and proxy headers', async () => {
    const before = upstream.seen.length;
    const r = await send(agent.port, '//v1/users/./x/../alice/orders/7?x=1', {
      ...bearer(alice),
      'x-user-id': 'mallory',
      'x-forwarded-for': '6.6.6.6',
      'x-request-id': 'req-123',
    });
    assert.equal(r.status, 200, r.body);
    assert.equal(r.headers['x-request-id'], 'req-123');
    const seen = upstream.seen.slice(before);
    assert.equal(seen.length, 1);
    assert.equal(seen[0]?.url, '/v1/users/alice/orders/7?x=1');
    assert.equal(seen[0]?.headers['x-user-id'], 'alice');
    assert.equal(seen[0]?.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(seen[0]?.headers['x-request-id'], 'req-123');
    assert.equal(seen[0]?.headers.authorization, `Bearer ${alice}`);
  });

  const denials: [
    name: string,
    path: string,
    headers: () => Record<string, string>,
    status: number,
    code: string,
  ][] = [
    ['no token', '/v1/users/alice/orders/7', () => ({}), 401, 'ERR_AUTHN_REQUIRED'],
    [
      'a forged token on a public route',
      '/healthz',
      () => bearer(`${alice.slice(0, -4)}AAAA`),
      401,
      'ERR_AUTHN_INVALID_TOKEN',
    ],
    ['another user (BOLA)', '/v1/users/alice/orders/7', () => bearer(bob), 403, 'ERR_AUTHZ_DENIED'],
    ['an undeclared path', '/v1/admin', () => bearer(alice), 404, 'ERR_ROUTE_NOT_FOUND'],
    ['an encoded slash', '/v1/users/alice%2Fbob/orders/7', () => bearer(alice), 400, 'ERR_PATH_INVALID'],
    ['a path above root', '/v1/../../etc/passwd', () => ({}), 400, 'ERR_PATH_INVALID'],
    ['a sunset route', '/v0/orders', () => ({}), 410, 'ERR_ROUTE_SUNSET'],
  ];
  for (const [name, path, headers, status, code] of denials) {
    test(`denied (${status}): ${name}, and the app never sees it`, async () => {
      const before = upstream.seen.length;
      const r = await send(agent.port, path, headers());
      assert.equal(r.status, status, r.body);
      assert.equal(r.headers['content-type'], 'application/problem+json');
      const p = problem(r);
      assert.equal(p.code, code);
      assert.equal(p.requestId, r.headers['x-request-id']);
      assert.ok(!r.body.includes(alice.slice(20, 60)), 'never echoes the token');
      assert.equal(upstream.seen.length, before);
    });
  }

  test('401 carries WWW-Authenticate', async () => {
    assert.equal((await send(agent.port, '/v1/users/alice/orders/7')).headers['www-authenticate'], 'Bearer');
    const bad = await send(agent.port, '/healthz', bearer('not.a.jwt'));
    assert.equal(bad.headers['www-authenticate'], 'Bearer error="invalid_token"');
  });

  test('405 lists the declared methods in Allow', async () => {
    const r = await send(agent.port, '/v1/users/alice/orders/7', bearer(alice), 'DELETE');
    assert.equal(r.status, 405);
    assert.equal(r.headers.allow, 'GET, HEAD');
  });

  test('429 after the limit, with RateLimit headers and Retry-After', async () => {
    const replies: Reply[] = [];
    for (let i = 0; i < 4; i++) replies.push(await send(agent.port, '/v1/limited'));
    assert.deepEqual(
      replies.map((r) => r.status),
      [200, 200, 200, 429],
    );
    assert.equal(replies[0]?.headers['ratelimit-limit'], '3');
    assert.equal(replies[0]?.headers['ratelimit-remaining'], '2');
    assert.equal(replies[0]?.headers['x-ratelimit-limit'], '3');
    const refused = replies[3];
    assert.ok(refused);
    assert.equal(problem(refused).code, 'ERR_RATE_LIMITED');
    assert.ok(Number(refused.headers['retry-after']) >= 1);
    assert.equal(refused.headers['ratelimit-remaining'], '0');
  });

  test('504 when the app does not answer within the route timeout', async () => {
    const r = await send(agent.port, '/v1/slow');
    assert.equal(r.status, 504);
    assert.equal(problem(r).code, 'ERR_UPSTREAM_TIMEOUT');
  });

  test('admin: readyz, config without keys, metrics', async () => {
    assert.equal((await send(agent.admin, '/readyz')).status, 200);
    const config = JSON.parse((await send(agent.admin, '/config')).body) as { version: string };
    assert.match(config.version, /^sha256:[0-9a-f]{64}$/);
    const metrics = (await send(agent.admin, '/metrics')).body;
    assert.match(metrics, /tollgate_requests_total\{[^}]*route="get-order"[^}]*\} \d+/);
    assert.match(metrics, /tollgate_requests_total\{[^}]*code="ERR_AUTHZ_DENIED"[^}]*\} \d+/);
  });

  test('JWKS down: known keys still verify, a new kid is refused', async () => {
    jwks.setDown(true);
    try {
      const r = await send(agent.port, '/v1/users/alice/orders/8', bearer(alice));
      assert.equal(r.status, 200);
      const kid = await jwks.rotate();
      const claims = {
        iss: jwks.issuer,
        aud: 'orders-api',
        sub: 'alice',
        exp: Math.floor(Date.now() / 1000) + 600,
      };
      const fresh = await jwks.sign(claims, { kid });
      const refused = await send(agent.port, '/v1/users/alice/orders/8', bearer(fresh));
      assert.equal(refused.status, 401);
      assert.equal(problem(refused).code, 'ERR_AUTHN_INVALID_TOKEN');
    } finally {
      jwks.setDown(false);
    }
  });

  test('a bad policy edit keeps the old policy; a good one takes over', async () => {
    writeFileSync(policyFile, policyYaml(jwks).replace('mode: Enforce', 'mode: Enforcing'));
    await new Promise((r) => setTimeout(r, 600));
    assert.equal((await send(agent.port, '/v1/users/alice/orders/7', bearer(bob))).status, 403);
    assert.equal((await send(agent.admin, '/readyz')).status, 200);
    writeFileSync(policyFile, policyYaml(jwks, { healthPublic: false }));
    await eventually(async () => (await send(agent.port, '/healthz')).status === 401);
    writeFileSync(policyFile, policyYaml(jwks, { mode: 'Audit' }));
    await eventually(
      async () => (await send(agent.port, '/v1/users/alice/orders/7', bearer(bob))).status === 200,
    );
  });
});
