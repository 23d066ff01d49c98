import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import type { PolicyBundle } from '../../policy/compile/bundle.ts';
import { compilePolicies } from '../../policy/compile/compile.ts';
import { PolicyEngine } from '../../policy/engine/engine.ts';
import type { ApiPolicy } from '../../policy/schema/api-policy.ts';
import { Inventory } from '../inventory/inventory.ts';
import { send } from '../proxy/test-clients.ts';
import { closeServer, listen } from '../proxy/test-support.ts';
import { Metrics } from '../telemetry/metrics.ts';
import { createAdminServer, describeEngine } from './admin-server.ts';

const TOKEN = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl';

function policy(jwks: string): ApiPolicy {
  return {
    apiVersion: 'tollgate.dev/v1alpha1',
    kind: 'ApiPolicy',
    metadata: { name: 'orders', namespace: 'shop' },
    spec: {
      port: 8080,
      mode: 'Audit',
      jwt: [
        {
          name: 'corp',
          issuer: 'https://login.example.com/',
          jwks,
          audiences: ['orders-api'],
          algorithms: ['ES256'],
          claimHeaders: [{ claim: 'sub', header: 'x-user-id' }],
        },
        { name: 'remote', issuer: 'https://idp.example.com/', jwksUri: 'https://idp.example.com/jwks.json' },
      ],
      rateLimits: [{ name: 'per-ip', key: { ip: {} }, limit: 10, period: '1m' }],
      routes: [
        { name: 'health', methods: ['GET'], path: '/healthz', public: true },
        { name: 'get-order', methods: ['GET', 'HEAD'], path: '/v1/orders/{id}', allow: [{ jwt: 'corp' }] },
        { name: 'closed', path: '/v1/closed' },
      ],
    },
  };
}

/** Every key anywhere in a JSON value. */
function keysOf(value: unknown, out = new Set<string>()): Set<string> {
  if (Array.isArray(value)) for (const v of value) keysOf(v, out);
  else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      out.add(k);
      keysOf(v, out);
    }
  }
  return out;
}

describe('admin server', () => {
  let server: Server;
  let port: number;
  let engine: PolicyEngine | null = null;
  let publicJwk: JWK;
  let privateJwk: JWK;
  const metrics = new Metrics();

  before(async () => {
    const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
    publicJwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
    privateJwk = await exportJWK(privateKey);
    metrics.inc('tollgate_requests_total', { route: 'health', decision: 'allow', code: 'OK' }, 3, 'Requests');
    server = createAdminServer({ engine: () => engine, metrics });
    port = await listen(server);
  });
  after(() => closeServer(server));

  function load(): PolicyEngine {
    const r = compilePolicies([policy(JSON.stringify({ keys: [publicJwk] }))]);
    assert.deepEqual(
      r.diagnostics.filter((d) => d.severity === 'error'),
      [],
    );
    return PolicyEngine.load(r.bundle);
  }

  test('/healthz is 200 with or without a policy', async () => {
    engine = null;
    const r = await send(port, { path: '/healthz' });
    assert.deepEqual([r.status, r.body, r.headers['cache-control']], [200, 'ok\n', 'no-store']);
  });

  test('/readyz is 503 before a policy is loaded, then 200', async () => {
    engine = null;
    const before = await send(port, { path: '/readyz' });
    assert.deepEqual([before.status, before.body], [503, 'no policy loaded\n']);
    engine = load();
    const ready = await send(port, { path: '/readyz?verbose=1' });
    assert.deepEqual([ready.status, ready.body], [200, 'ready\n']);
  });

  test('/metrics is Prometheus text', async () => {
    const r = await send(port, { path: '/metrics' });
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
    assert.equal(r.body, metrics.render());
    assert.match(r.body, /^# TYPE tollgate_requests_total counter$/m);
    assert.match(r.body, /^tollgate_requests_total\{route="health",decision="allow",code="OK"\} 3$/m);
  });

  test('/config before a policy: loaded false', async () => {
    engine = null;
    const r = await send(port, { path: '/config' });
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'application/json');
    assert.deepEqual(JSON.parse(r.body), { loaded: false });
  });

  test('/config shows version, policies, routes and providers', async () => {
    engine = load();
    const r = await send(port, { path: '/config' });
    assert.equal(r.status, 200);
    const body = JSON.parse(r.body) as {
      loaded: boolean;
      version: string;
      policies: {
        name: string;
        port: number | null;
        mode: string;
        providers: { name: string; inlineKeys: number; jwksUri: string | null; issuer: string }[];
        routes: { name: string; methods: string[]; path: string; access: string }[];
        rateLimits: { name: string; key: string; limit: number; periodMs: number }[];
      }[];
    };
    assert.equal(body.loaded, true);
    assert.equal(body.version, engine.bundle.version);
    assert.match(body.version, /^sha256:[0-9a-f]{64}$/);
    const [p] = body.policies;
    assert.ok(p);
    assert.deepEqual([p.name, p.port, p.mode], ['shop/orders', 8080, 'Audit']);
    assert.deepEqual(
      p.providers.map((x) => [x.name, x.issuer, x.jwksUri, x.inlineKeys]),
      [
        ['corp', 'https://login.example.com/', null, 1],
        ['remote', 'https://idp.example.com/', 'https://idp.example.com/jwks.json', 0],
      ],
    );
    assert.deepEqual(
      p.routes.map((x) => [x.name, x.path, x.access]),
      [
        ['health', '/healthz', 'public'],
        ['get-order', '/v1/orders/{id}', 'rules'],
        ['closed', '/v1/closed', 'deny'],
      ],
    );
    assert.deepEqual(p.routes[1]?.methods, ['GET', 'HEAD']);
    assert.ok(!p.routes[2]?.methods.includes('TRACE'), 'default methods leave TRACE out');
    assert.deepEqual(p.rateLimits, [{ name: 'per-ip', key: 'ip', limit: 10, periodMs: 60_000 }]);
  });

  test('/config never shows key material', async () => {
    engine = load();
    const r = await send(port, { path: '/config' });
    const keys = keysOf(JSON.parse(r.body));
    for (const k of ['n', 'e', 'x', 'y', 'd', 'crv', 'kty', 'keys', 'jwks']) assert.ok(!keys.has(k), k);
    for (const k of ['x', 'y'] as const) {
      const v = publicJwk[k];
      assert.ok(v && !r.body.includes(v), `public ${k} value`);
    }
  });

  test('describeEngine leaves out private key material even in a bundle that carries it', () => {
    // A bundle from the network is untrusted: it may hold what validation would have refused.
    const bundle = structuredClone(load().bundle) as PolicyBundle;
    const provider = bundle.policies[0]?.jwt[0];
    assert.ok(provider);
    provider.jwks = { keys: [{ ...privateJwk, kid: 'k1' }] };
    const text = JSON.stringify(describeEngine(PolicyEngine.load(bundle)));
    assert.ok(privateJwk.d && !text.includes(privateJwk.d));
    assert.ok(!keysOf(JSON.parse(text)).has('d'));
  });

  test('/config never shows a token, even in the request', async () => {
    engine = load();
    const r = await send(port, {
      path: `/config?token=${TOKEN}`,
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    assert.equal(r.status, 200);
    assert.ok(!r.body.includes(TOKEN));
    assert.ok(!r.body.includes('eyJ'));
  });

  const notFound = ['/', '/nope', '/healthz/', '/HEALTHZ', '/config/x', '/metrics.json'];
  for (const path of notFound) {
    test(`${path} → 404`, async () => {
      const r = await send(port, { path });
      assert.deepEqual([r.status, r.body], [404, 'not found\n']);
    });
  }

  for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
    test(`${method} /healthz → 405`, async () => {
      const r = await send(port, { method, path: '/healthz', ...(method === 'POST' ? { body: '{}' } : {}) });
      assert.equal(r.status, 405);
    });
  }

  test('a 405 names the allowed methods (RFC 9110 §15.5.6)', async () => {
    const r = await send(port, { method: 'POST', path: '/healthz' });
    assert.equal(r.headers.allow, 'GET, HEAD');
  });

  for (const path of ['/healthz', '/readyz', '/metrics', '/config']) {
    test(`HEAD ${path}: the GET status and headers, no body`, async () => {
      engine = load();
      const get = await send(port, { path });
      const head = await send(port, { method: 'HEAD', path });
      assert.equal(head.status, get.status);
      assert.equal(head.headers['content-type'], get.headers['content-type']);
      assert.equal(head.body, '');
    });
  }
});

describe('admin server /inventory', () => {
  test('serves the inventory snapshot as JSON; 404 when the server has none', async () => {
    const inventory = new Inventory({ now: () => Date.UTC(2026, 0, 1) });
    inventory.recordUndeclared('GET', '/v1/orders/123', 200);
    const withInventory = createAdminServer({
      engine: () => null,
      metrics: new Metrics(),
      inventory: () => inventory.snapshot(),
    });
    const without = createAdminServer({ engine: () => null, metrics: new Metrics() });
    try {
      const r = await send(await listen(withInventory), { path: '/inventory' });
      assert.equal(r.status, 200);
      assert.equal(r.headers['content-type'], 'application/json');
      assert.deepEqual(JSON.parse(r.body), inventory.snapshot());
      assert.equal((await send(await listen(without), { path: '/inventory' })).status, 404);
    } finally {
      await closeServer(withInventory);
      await closeServer(without);
    }
  });
});
