/**
 * Protection inside decideRequest, with real IncomingMessage objects (a
 * loopback node:http server runs the pipeline and answers with the outcome)
 * and an injected clock: which outcomes count, 429 with Retry-After before any
 * other answer, the client key (IP, else peer), Audit mode, the security event
 * and metrics, state across bundle reloads.
 */
import assert from 'node:assert/strict';
import { createServer, type OutgoingHttpHeaders, type Server } from 'node:http';
import { after, before, beforeEach, describe, test } from 'node:test';
import { type CryptoKey, exportJWK, generateKeyPair, SignJWT } from 'jose';
import { compilePolicies } from '../../../policy/compile/compile.ts';
import { PolicyEngine } from '../../../policy/engine/engine.ts';
import { RateLimiter } from '../../../policy/ratelimit/rate-limiter.ts';
import type { ApiPolicy, ApiPolicySpec } from '../../../policy/schema/api-policy.ts';
import { PolicyError, rescue } from '../../errors.ts';
import { send } from '../../proxy/test-clients.ts';
import { closeServer, listen } from '../../proxy/test-support.ts';
import { SECURITY_MESSAGES } from '../../telemetry/access-log.ts';
import { type SecurityEvent, securityEvents, subscribeTo } from '../../telemetry/channels.ts';
import { bundleStates } from '../bundle-state.ts';
import { decideRequest, type PipelineEnv } from '../decide-request.ts';
import { protectionEnv } from './protection.ts';

const ISSUER = 'https://login.example.com/';
const T0 = Date.UTC(2026, 6, 1);
const clock = { ms: T0 };
const now = () => clock.ms;

interface Logged {
  fields: Record<string, unknown>;
  msg: string;
}

interface Harness {
  engine: PolicyEngine | null;
  env: PipelineEnv;
  logs: Logged[];
  metrics: { name: string; labels: Record<string, string> }[];
}

const states = bundleStates({ now });

function freshHarness(): Harness {
  const logs: Logged[] = [];
  const metrics: Harness['metrics'] = [];
  const protection = protectionEnv({
    metrics: { inc: (name, labels = {}) => metrics.push({ name, labels }) },
    now,
  });
  return {
    engine: null,
    env: { port: null, limiter: new RateLimiter({ now }), now, state: states, protection },
    logs,
    metrics,
  };
}

let h: Harness = freshHarness();

// Blocks are published as security events; the agent's security log writes them.
const unsubscribe = subscribeTo<SecurityEvent>(securityEvents, (e) => {
  if (e.name === 'client_blocked') h.logs.push({ fields: { ...e.fields }, msg: SECURITY_MESSAGES[e.name] });
});
after(unsubscribe);

interface Outcome {
  kind: 'plan' | 'error';
  status: number;
  code: string;
  headers: Record<string, string>;
  decision?: string;
  findings?: string[];
}

const server: Server = createServer((req, res) => {
  const ip = req.headers['x-test-ip'];
  const peer = req.headers['x-test-peer'];
  const info = {
    req,
    requestId: 'r',
    clientIp: typeof ip === 'string' ? ip : '10.0.0.1',
    proto: 'http' as const,
    peerId: typeof peer === 'string' ? peer : null,
  };
  const answer = (o: Outcome) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(o));
  };
  decideRequest(h.engine, info, h.env).then(
    (plan) =>
      answer({
        kind: 'plan',
        status: 200,
        code: 'OK',
        headers: {},
        decision: plan.decision,
        findings: plan.findings.map((f) => f.code),
      }),
    (e: unknown) => {
      const err = e instanceof PolicyError ? e : new PolicyError('ERR_INTERNAL', String(e));
      answer({ kind: 'error', status: rescue(err, 'r').status, code: err.code, headers: { ...err.headers } });
    },
  );
});
let port = 0;

async function decide(path: string, headers: OutgoingHttpHeaders = {}): Promise<Outcome> {
  const r = await send(port, { path, headers });
  assert.equal(r.status, 200, r.body);
  return JSON.parse(r.body) as Outcome;
}

async function statuses(n: number, path: string, headers: OutgoingHttpHeaders = {}): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push((await decide(path, headers)).status);
  return out;
}

let signingKey: CryptoKey;
let otherKey: CryptoKey;
let jwks = '';

async function token(key: CryptoKey = signingKey): Promise<string> {
  const iat = Math.floor(clock.ms / 1000);
  return new SignJWT({ sub: 'alice' })
    .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
    .setIssuer(ISSUER)
    .setAudience('orders-api')
    .setIssuedAt(iat)
    .setExpirationTime(iat + 600)
    .sign(key);
}

const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

function engineOf(extra: Partial<ApiPolicySpec> = {}, routes: ApiPolicySpec['routes'] = []): PolicyEngine {
  const spec: ApiPolicySpec = {
    jwt: [{ name: 'corp', issuer: ISSUER, jwks, audiences: ['orders-api'], algorithms: ['ES256'] }],
    protection: {
      authFailures: { threshold: 2, window: '1m', block: '10m' },
      unmatched: { threshold: 3, window: '1m', block: '90s' },
    },
    routes: [
      { name: 'health', methods: ['GET'], path: '/healthz', public: true },
      { name: 'me', methods: ['GET'], path: '/v1/me', allow: [{ jwt: 'corp' }] },
      { name: 'admin', methods: ['GET'], path: '/v1/admin', allow: [{ claims: { roles: ['admin'] } }] },
      ...routes,
    ],
    ...extra,
  };
  const policy: ApiPolicy = {
    apiVersion: 'tollgate.dev/v1alpha1',
    kind: 'ApiPolicy',
    metadata: { name: 'orders', namespace: 'shop' },
    spec,
  };
  const r = compilePolicies([policy]);
  assert.deepEqual(
    r.diagnostics.filter((d) => d.severity === 'error'),
    [],
  );
  return PolicyEngine.load(r.bundle);
}

before(async () => {
  const pair = await generateKeyPair('ES256');
  signingKey = pair.privateKey;
  otherKey = (await generateKeyPair('ES256')).privateKey;
  jwks = JSON.stringify({ keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256' }] });
  port = await listen(server);
});

after(() => closeServer(server));

beforeEach(() => {
  clock.ms = T0;
  h = freshHarness();
  h.engine = engineOf();
});

describe('decideRequest: protection', () => {
  test('unmatched (Deny): threshold 404s, then 429 from that IP on declared routes until the block lifts', async () => {
    assert.deepEqual(await statuses(3, '/wp-admin.php'), [404, 404, 404]);
    // Contract order: route/method answers before the protection block, so an undeclared path stays 404.
    assert.equal((await decide('/.env')).code, 'ERR_ROUTE_NOT_FOUND');
    const blocked = await decide('/healthz');
    assert.equal(blocked.code, 'ERR_PROTECTION_BLOCKED');
    assert.equal(blocked.status, 429);
    assert.equal(blocked.headers['retry-after'], '90');
    // A declared route and a valid token do not help.
    clock.ms += 30_000;
    const healthz = await decide('/healthz', bearer(await token()));
    assert.equal(healthz.code, 'ERR_PROTECTION_BLOCKED');
    assert.equal(healthz.headers['retry-after'], '60');
    // Another client is not affected.
    assert.equal((await decide('/healthz', { 'x-test-ip': '10.0.0.2' })).status, 200);
    // Released after 90 s.
    clock.ms = T0 + 90_000;
    assert.equal((await decide('/healthz')).status, 200);
    assert.equal((await decide('/nope')).status, 404);

    assert.deepEqual(h.logs, [
      {
        msg: 'client blocked',
        fields: {
          key: '10.0.0.1',
          reason: 'unmatched',
          until: new Date(T0 + 90_000).toISOString(),
          policy: 'shop/orders',
          mode: 'Enforce',
        },
      },
    ]);
    assert.deepEqual(h.metrics, [
      { name: 'tollgate_protection_blocks_total', labels: { reason: 'unmatched' } },
      { name: 'tollgate_protection_refused_total', labels: { reason: 'unmatched' } },
      { name: 'tollgate_protection_refused_total', labels: { reason: 'unmatched' } },
    ]);
  });

  test('unmatched (Allow): undeclared requests are forwarded, and counted', async () => {
    h.engine = engineOf({ unmatched: 'Allow' });
    for (let i = 0; i < 3; i++) assert.equal((await decide('/undeclared')).decision, 'undeclared');
    assert.equal((await decide('/undeclared')).code, 'ERR_PROTECTION_BLOCKED');
  });

  test('a 405 on a declared path is not an unmatched request', async () => {
    h.engine = engineOf({}, [{ name: 'things', methods: ['PUT'], path: '/v1/things', public: true }]);
    for (let i = 0; i < 10; i++) assert.equal((await decide('/v1/things')).status, 405);
  });

  test('every 401 is an auth failure (invalid token, missing token); the one over threshold is 429', async () => {
    const bad = bearer(await token(otherKey));
    const invalid = await decide('/v1/me', bad);
    assert.equal(invalid.code, 'ERR_AUTHN_INVALID_TOKEN');
    // A missing token where one could allow the request counts too.
    assert.equal((await decide('/v1/me')).code, 'ERR_AUTHN_REQUIRED');
    // An invalid token also on a public route.
    const third = await decide('/healthz', bad);
    assert.equal(third.code, 'ERR_PROTECTION_BLOCKED');
    assert.equal(third.headers['retry-after'], '600');
    // Now even a valid token from that client is refused.
    assert.equal((await decide('/v1/me', bearer(await token()))).code, 'ERR_PROTECTION_BLOCKED');
    assert.equal(h.logs[0]?.fields.reason, 'authFailures');
    // Nothing in the security event comes from the request headers (no token).
    assert.equal(JSON.stringify(h.logs).includes('Bearer'), false);
  });

  test('a 403 is not an auth failure', async () => {
    const valid = bearer(await token());
    for (let i = 0; i < 5; i++) assert.equal((await decide('/v1/admin', valid)).code, 'ERR_AUTHZ_DENIED');
    assert.equal((await decide('/v1/me', valid)).status, 200);
  });

  test('events older than the window are forgotten', async () => {
    const bad = bearer(await token(otherKey));
    assert.deepEqual(await statuses(2, '/v1/me', bad), [401, 401]);
    clock.ms += 60_000;
    assert.deepEqual(await statuses(2, '/v1/me', bad), [401, 401]);
    assert.equal((await decide('/v1/me', bad)).status, 429);
  });

  test('the mTLS peer identity is the key when present', async () => {
    const bad = bearer(await token(otherKey));
    const a = { ...bad, 'x-test-peer': 'spiffe://cluster.local/ns/shop/sa/a' };
    const b = { ...bad, 'x-test-peer': 'spiffe://cluster.local/ns/shop/sa/b' };
    assert.deepEqual(await statuses(3, '/v1/me', a), [401, 401, 429]);
    // Same IP, another peer: its own count.
    assert.deepEqual(await statuses(2, '/v1/me', b), [401, 401]);
    assert.equal(h.logs[0]?.fields.key, 'spiffe://cluster.local/ns/shop/sa/a');
  });

  test('Audit mode records the block and the would-be refusals; nothing is refused', async () => {
    h.engine = engineOf({ mode: 'Audit' });
    const bad = bearer(await token(otherKey));
    const first = await decide('/v1/me', bad);
    assert.equal(first.kind, 'plan');
    // Invalid token and token required: one request, one event.
    assert.deepEqual(first.findings, ['ERR_AUTHN_INVALID_TOKEN', 'ERR_AUTHN_REQUIRED']);
    await decide('/v1/me', bad);
    const third = await decide('/v1/me', bad);
    assert.deepEqual(third.findings, [
      'ERR_PROTECTION_BLOCKED',
      'ERR_AUTHN_INVALID_TOKEN',
      'ERR_AUTHN_REQUIRED',
    ]);
    const later = await decide('/healthz');
    assert.equal(later.decision, 'audit-deny');
    assert.deepEqual(later.findings, ['ERR_PROTECTION_BLOCKED']);
    assert.equal(h.logs.length, 1);
    assert.equal(h.logs[0]?.fields.mode, 'Audit');
    assert.deepEqual(
      h.metrics.map((m) => m.name),
      ['tollgate_protection_blocks_total'],
    );
  });

  test('a reload that leaves protection unchanged keeps the block; a changed protection lifts it', async () => {
    assert.deepEqual(await statuses(4, '/scan'), [404, 404, 404, 404]);
    h.engine = engineOf({}, [{ name: 'new-route', methods: ['GET'], path: '/v1/new', public: true }]);
    assert.equal((await decide('/v1/new')).status, 429);
    h.engine = engineOf({
      protection: { unmatched: { threshold: 5, window: '1m', block: '90s' } },
    });
    assert.equal((await decide('/healthz')).status, 200);
  });

  test('a policy without protection never counts', async () => {
    h.engine = engineOf({ protection: {} });
    assert.deepEqual(await statuses(10, '/scan'), Array(10).fill(404));
    assert.deepEqual(h.logs, []);
  });
});
