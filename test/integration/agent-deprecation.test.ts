/**
 * Deprecation and sunset through the real Agent (in-process, real HTTP on
 * loopback) with an injected clock: the RFC 9745/8594 headers before the
 * sunset, 410 after it — no sleeping, no dates relative to the machine's clock.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Agent, type Logger } from '../../agent/agent.ts';
import { send, startUpstream } from '../support/agent-process.ts';

const SINCE = Date.UTC(2026, 5, 1);
const SUNSET = Date.UTC(2027, 0, 1);

const POLICY = `apiVersion: tollgate.dev/v1alpha1
kind: ApiPolicy
metadata: {name: lifecycle}
spec:
  routes:
    - name: legacy
      methods: [GET]
      path: /v0/orders/**
      public: true
      deprecation:
        since: 2026-06-01
        sunset: 2027-01-01
        link: https://docs.example.com/migrate-v1
    - name: current
      methods: [GET]
      path: /v1/orders/**
      public: true
`;

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} };

describe('deprecation and sunset (clock injected)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-lifecycle-'));
  const clock = { now: Date.UTC(2026, 10, 22) };
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  let agent: Agent;
  let port: number;

  before(async () => {
    writeFileSync(join(dir, 'policy.yaml'), POLICY);
    upstream = await startUpstream();
    agent = new Agent(
      {
        policyPath: join(dir, 'policy.yaml'),
        upstream: new URL(`http://127.0.0.1:${upstream.port}`),
        listen: { host: '127.0.0.1', port: 0 },
        admin: { host: '127.0.0.1', port: 0 },
        labels: null,
        logLevel: 'warn',
      },
      { logger: quiet, now: () => clock.now },
    );
    port = (await agent.start()).listen.port;
  });

  after(async () => {
    await agent?.stop(1000);
    upstream?.server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('before the sunset: served, with Deprecation, Sunset and Link', async () => {
    const r = await send(port, '/v0/orders/7');
    assert.equal(r.status, 200);
    assert.equal(r.headers.deprecation, `@${SINCE / 1000}`);
    assert.equal(r.headers.sunset, 'Fri, 01 Jan 2027 00:00:00 GMT');
    assert.equal(r.headers.link, '<https://docs.example.com/migrate-v1>; rel="deprecation"');
  });

  test('a route that is not deprecated carries none of them', async () => {
    const r = await send(port, '/v1/orders/7');
    assert.equal(r.status, 200);
    assert.equal(r.headers.deprecation, undefined);
    assert.equal(r.headers.sunset, undefined);
  });

  test('at the sunset instant it is still served; after it, 410 and the app never sees it', async () => {
    clock.now = SUNSET;
    assert.equal((await send(port, '/v0/orders/7')).status, 200);
    clock.now = SUNSET + 1;
    const seen = upstream.seen.length;
    const r = await send(port, '/v0/orders/7');
    assert.equal(r.status, 410);
    assert.equal((JSON.parse(r.body) as { code: string }).code, 'ERR_ROUTE_SUNSET');
    assert.equal(r.headers.sunset, 'Fri, 01 Jan 2027 00:00:00 GMT');
    assert.equal(upstream.seen.length, seen);
    assert.equal((await send(port, '/v1/orders/7')).status, 200);
  });

  test('the inventory lists the callers of the deprecated route', async () => {
    // The inventory records a request when its response has closed.
    await new Promise((r) => setTimeout(r, 50));
    const legacy = agent.inventory.snapshot().routes.find((r) => r.name === 'legacy');
    assert.ok(legacy, 'the legacy route is in the inventory');
    assert.equal(legacy.deprecated, true);
    assert.deepEqual(
      legacy.callers?.map((c) => [c.key, c.count]),
      [['127.0.0.1', 3]],
    );
    assert.deepEqual(legacy.statuses, { '2xx': 2, '4xx': 1 });
  });
});
