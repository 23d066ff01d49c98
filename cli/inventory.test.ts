import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { Inventory, type InventorySnapshot } from '../agent/inventory/inventory.ts';
import { validatePolicy } from '../policy/validate/validate-policy.ts';
import type { CliIo } from './cli-io.ts';
import { formatInventory, inventoryUrl, runInventory, suggestRoutes } from './inventory.ts';

function snapshot(): InventorySnapshot {
  let t = Date.UTC(2026, 0, 1);
  const inv = new Inventory({ now: () => t++ });
  inv.recordRoute('get-order', 200, '10.0.0.1', false);
  inv.recordRoute('old-orders', 200, '10.0.0.7', true);
  inv.recordUndeclared('GET', '/v1/orders/123', 200);
  inv.recordUndeclared('GET', '/v1/orders/456', 404);
  inv.recordUndeclared('DELETE', '/v1/orders/456', 204);
  inv.recordUndeclared('GET', '/', 200);
  inv.recordUndeclared('OPTIONS', '*', 200);
  inv.recordUndeclared('PROPFIND', '/dav', 207);
  inv.recordUndeclared('GET', '/a*b', 200);
  return inv.snapshot();
}

function io() {
  const out: string[] = [];
  const err: string[] = [];
  const cli: CliIo = {
    out: (l) => out.push(l),
    err: (l) => err.push(l),
    readFile: () => '',
    expand: (p) => [p],
    now: () => 0,
  };
  return { cli, out, err };
}

describe('suggestRoutes', () => {
  test('one route per template, methods merged, names unique DNS labels, and it validates', () => {
    const text = suggestRoutes(snapshot());
    assert.match(text, /NOT a policy/);
    assert.match(text, /add an `allow`/);
    assert.match(text, /# skipped \*:/);
    assert.match(text, /# skipped \/a\*b:/);
    assert.match(text, /# skipped method PROPFIND on \/dav/);
    const routes = (parse(text) as { routes: { name: string; methods: string[]; path: string }[] }).routes;
    assert.deepEqual(routes, [
      { name: 'get-root', methods: ['GET'], path: '/' },
      { name: 'delete-get-v1-orders-order-id', methods: ['DELETE', 'GET'], path: '/v1/orders/{orderId}' },
    ]);
    assert.match(text, /methods: \[ DELETE, GET \]/);
    // Pasted into a minimal policy with an access decision added, it is valid.
    const doc = {
      apiVersion: 'tollgate.dev/v1alpha1',
      kind: 'ApiPolicy',
      metadata: { name: 'draft', namespace: 'shop' },
      spec: { routes: routes.map((r) => ({ ...r, public: true })) },
    };
    const result = validatePolicy(doc);
    assert.deepEqual(
      result.diagnostics.filter((d) => d.severity === 'error'),
      [],
    );
    assert.ok(result.policy);
  });

  test('long and clashing names are cut to 63 characters and made unique', () => {
    let t = 0;
    const inv = new Inventory({ now: () => t++ });
    const long = `/${'segment-'.repeat(10)}`;
    inv.recordUndeclared('GET', `${long}a`, 200);
    inv.recordUndeclared('GET', `${long}b`, 200);
    const routes = (parse(suggestRoutes(inv.snapshot())) as { routes: { name: string }[] }).routes;
    const names = routes.map((r) => r.name);
    assert.equal(new Set(names).size, 2);
    for (const n of names) {
      assert.ok(n.length <= 63, n);
      assert.match(n, /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
    }
  });

  test('no undeclared traffic: an empty block', () => {
    const inv = new Inventory({ now: () => 0 });
    assert.match(suggestRoutes(inv.snapshot()), /^routes: \[\]$/m);
  });
});

describe('formatInventory', () => {
  test('declared routes, deprecated callers and undeclared templates', () => {
    const text = formatInventory(snapshot());
    assert.match(text, /get-order\s+1\s+2xx:1/);
    assert.match(text, /old-orders \(deprecated\)/);
    assert.match(text, /Callers of deprecated route old-orders:\n\s+CALLER.*\n\s+10\.0\.0\.7\s+1/);
    assert.match(text, /GET\s+\/v1\/orders\/\{orderId\}\s+2\s+2xx:1 4xx:1/);
  });
});

describe('runInventory', () => {
  test('--admin must be HOST:PORT', () => {
    assert.equal(inventoryUrl('127.0.0.1:15020'), 'http://127.0.0.1:15020/inventory');
    assert.equal(inventoryUrl('[::1]:9'), 'http://[::1]:9/inventory');
    for (const bad of ['localhost', ':80', 'h:0', 'h:70000', 'http://h:1'])
      assert.throws(() => inventoryUrl(bad));
  });

  test('--suggest with --json and stray arguments are usage errors', async () => {
    await assert.rejects(runInventory(['--suggest', '--json'], io().cli), /cannot be combined/);
    await assert.rejects(runInventory(['extra'], io().cli), /unexpected argument/);
  });

  test('an unreachable admin endpoint exits 1 with a clear message', async () => {
    const { cli, err } = io();
    const refused: typeof fetch = () =>
      Promise.reject(new TypeError('fetch failed', { cause: { code: 'ECONNREFUSED' } }));
    assert.equal(await runInventory(['--admin', '127.0.0.1:1'], cli, refused), 1);
    assert.match(
      err.join('\n'),
      /cannot reach the agent's admin endpoint at http:\/\/127\.0\.0\.1:1\/inventory: ECONNREFUSED/,
    );
  });

  test('a non-inventory answer exits 1', async () => {
    const { cli, err } = io();
    const notFound: typeof fetch = () => Promise.resolve(new Response('not found', { status: 404 }));
    assert.equal(await runInventory([], cli, notFound), 1);
    assert.match(err.join('\n'), /answered 404/);
    const other: typeof fetch = () => Promise.resolve(Response.json({ hello: 1 }));
    assert.equal(await runInventory([], cli, other), 1);
  });

  test('prints the table, the JSON or the suggestion', async () => {
    const s = snapshot();
    const ok: typeof fetch = () => Promise.resolve(Response.json(s));
    const table = io();
    assert.equal(await runInventory(['--admin', 'localhost:15020'], table.cli, ok), 0);
    assert.match(table.out.join('\n'), /Undeclared traffic: 7 requests/);
    const json = io();
    assert.equal(await runInventory(['--json'], json.cli, ok), 0);
    assert.deepEqual(JSON.parse(json.out.join('\n')), s);
    const suggest = io();
    assert.equal(await runInventory(['--suggest'], suggest.cli, ok), 0);
    assert.match(suggest.out.join('\n'), /path: \/v1\/orders\/\{orderId\}/);
  });
});
