/**
 * The API inventory of the real agent process: declared route hits and status
 * classes, callers of deprecated routes, undeclared traffic collapsed into
 * templates under `unmatched: Allow` and `unmatched: Deny`, served on
 * `GET /inventory` and read back by `tollgate inventory` (table and --suggest).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parse } from 'yaml';
import type { InventorySnapshot } from '../../agent/inventory/inventory.ts';
import { validatePolicy } from '../../policy/validate/validate-policy.ts';
import { eventually, send, startAgent, startUpstream } from '../support/agent-process.ts';

const root = new URL('../..', import.meta.url).pathname;

function policyYaml(unmatched: 'Allow' | 'Deny'): string {
  return `apiVersion: tollgate.dev/v1alpha1
kind: ApiPolicy
metadata: {name: inventory, namespace: shop}
spec:
  unmatched: ${unmatched}
  routes:
    - name: get-thing
      methods: [GET]
      path: /v1/things/{id}
      public: true
    - name: legacy
      methods: [GET]
      path: /v1/legacy
      public: true
      deprecation: {since: 2019-01-01}
    - name: retired
      methods: [GET]
      path: /v0/**
      public: true
      deprecation: {since: 2019-01-01, sunset: 2020-01-01}
`;
}

async function inventory(admin: number): Promise<InventorySnapshot> {
  const res = await fetch(`http://127.0.0.1:${admin}/inventory`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /application\/json/);
  return (await res.json()) as InventorySnapshot;
}

function tollgate(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(join(root, 'bin/tollgate'), args, { cwd: root }, (error, out, err) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ code, out, err });
    });
  });
}

describe('API inventory (real agent)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-inventory-'));
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  const agents: Awaited<ReturnType<typeof startAgent>>[] = [];

  async function start(unmatched: 'Allow' | 'Deny') {
    const file = join(dir, `${unmatched}.yaml`);
    writeFileSync(file, policyYaml(unmatched));
    const agent = await startAgent(file, upstream.port);
    agents.push(agent);
    return agent;
  }

  before(async () => {
    upstream = await startUpstream();
  });

  after(async () => {
    for (const a of agents) {
      a.proc.kill('SIGTERM');
      await new Promise((r) => a.proc.once('exit', r));
    }
    upstream?.server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('unmatched: Allow — routes, deprecated callers, one template for /v1/orders/123 and /456', async () => {
    const agent = await start('Allow');
    const before = upstream.seen.length;
    for (const path of ['/v1/orders/123', '/v1/orders/456?x=1', '/v1/things/1', '/v1/things/2'])
      assert.equal((await send(agent.port, path)).status, 200, path);
    assert.equal((await send(agent.port, '/v1/legacy')).status, 200);
    assert.equal((await send(agent.port, '/v0/orders')).status, 410);
    assert.equal((await send(agent.port, '/v1/things/1', {}, 'POST')).status, 405);
    assert.equal(upstream.seen.length - before, 5, 'the undeclared requests were forwarded');

    // Requests are recorded when their response closes: poll until all are in.
    let s = await inventory(agent.admin);
    await eventually(async () => {
      s = await inventory(agent.admin);
      return s.totals.declared === 4 && s.totals.undeclared === 2;
    });
    assert.deepEqual(s.undeclared.length, 1);
    assert.equal(s.undeclared[0]?.method, 'GET');
    assert.equal(s.undeclared[0]?.template, '/v1/orders/{orderId}');
    assert.equal(s.undeclared[0]?.count, 2);
    assert.deepEqual(s.undeclared[0]?.statuses, { '2xx': 2 });
    assert.equal(s.totals.overflow, 0);

    const byName = new Map(s.routes.map((r) => [r.name, r]));
    assert.deepEqual(
      [...byName.keys()],
      ['get-thing', 'legacy', 'retired'],
      'a 405 is not a route hit and not undeclared',
    );
    assert.equal(byName.get('get-thing')?.hits, 2);
    assert.deepEqual(byName.get('get-thing')?.statuses, { '2xx': 2 });
    assert.equal(byName.get('get-thing')?.deprecated, false);
    assert.equal(byName.get('get-thing')?.callers, undefined);
    assert.deepEqual(
      byName.get('legacy')?.callers?.map((c) => [c.key, c.count]),
      [['127.0.0.1', 1]],
    );
    assert.deepEqual(byName.get('retired')?.statuses, { '4xx': 1 });
    assert.deepEqual(
      byName.get('retired')?.callers?.map((c) => c.key),
      ['127.0.0.1'],
    );
    assert.ok(Date.parse(s.since) <= Date.parse(s.undeclared[0]?.firstSeen ?? ''));

    const table = await tollgate('inventory', '--admin', `127.0.0.1:${agent.admin}`);
    assert.equal(table.code, 0, table.err);
    assert.match(table.out, /GET\s+\/v1\/orders\/\{orderId\}\s+2\s+2xx:2/);
    assert.match(table.out, /Callers of deprecated route legacy:/);

    const suggest = await tollgate('inventory', '--admin', `127.0.0.1:${agent.admin}`, '--suggest');
    assert.equal(suggest.code, 0, suggest.err);
    assert.match(suggest.out, /NOT a policy/);
    const routes = (parse(suggest.out) as { routes: Record<string, unknown>[] }).routes;
    assert.deepEqual(routes, [
      { name: 'get-v1-orders-order-id', methods: ['GET'], path: '/v1/orders/{orderId}' },
    ]);
    const draft = validatePolicy({
      apiVersion: 'tollgate.dev/v1alpha1',
      kind: 'ApiPolicy',
      metadata: { name: 'draft', namespace: 'shop' },
      spec: { routes: routes.map((r) => ({ ...r, public: true })) },
    });
    assert.ok(draft.policy, JSON.stringify(draft.diagnostics));
  });

  test('unmatched: Deny — the 404s are undeclared traffic too', async () => {
    const agent = await start('Deny');
    const before = upstream.seen.length;
    for (const path of ['/v1/orders/123', '/v1/orders/456'])
      assert.equal((await send(agent.port, path)).status, 404, path);
    assert.equal((await send(agent.port, '/v1/things/9')).status, 200);
    assert.equal(upstream.seen.length - before, 1, 'only the declared request reached the app');
    let s = await inventory(agent.admin);
    await eventually(async () => {
      s = await inventory(agent.admin);
      return s.totals.declared === 1 && s.totals.undeclared === 2;
    });
    assert.deepEqual(
      s.undeclared.map((t) => [t.method, t.template, t.count, t.statuses]),
      [['GET', '/v1/orders/{orderId}', 2, { '4xx': 2 }]],
    );
    const suggest = await tollgate('inventory', '--admin', `127.0.0.1:${agent.admin}`, '--suggest');
    assert.equal(suggest.code, 0, suggest.err);
    assert.match(suggest.out, /path: \/v1\/orders\/\{orderId\}/);
  });

  test('tollgate inventory: exit 1 when the admin endpoint cannot be reached, 2 on bad usage', async () => {
    const down = await tollgate('inventory', '--admin', '127.0.0.1:1');
    assert.equal(down.code, 1);
    assert.match(down.err, /cannot reach the agent's admin endpoint at http:\/\/127\.0\.0\.1:1\/inventory/);
    const bad = await tollgate('inventory', '--admin', 'nope');
    assert.equal(bad.code, 2);
    assert.match(bad.err, /--admin must be HOST:PORT/);
    const help = await tollgate('inventory', '--help');
    assert.equal(help.code, 0);
    assert.match(help.out, /--suggest/);
  });
});
