import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Inventory, statusClass } from './inventory.ts';

function clock(start = Date.UTC(2026, 0, 1)) {
  let t = start;
  return {
    now: () => t,
    advance: (ms: number) => {
      t += ms;
    },
  };
}

describe('statusClass', () => {
  test('classes, and 0 (no response) is aborted', () => {
    assert.deepEqual([101, 200, 204, 304, 404, 429, 503, 0].map(statusClass), [
      '1xx',
      '2xx',
      '2xx',
      '3xx',
      '4xx',
      '4xx',
      '5xx',
      'aborted',
    ]);
  });
});

describe('Inventory', () => {
  test('declared routes: hits, last seen and status classes', () => {
    const c = clock();
    const inv = new Inventory({ now: c.now });
    inv.recordRoute('get-order', 200, '10.0.0.1', false);
    c.advance(1000);
    inv.recordRoute('get-order', 403, '10.0.0.1', false);
    inv.recordRoute('create-order', 201, null, false);
    const s = inv.snapshot();
    assert.equal(s.since, '2026-01-01T00:00:00.000Z');
    assert.deepEqual(s.totals, { declared: 3, undeclared: 0, overflow: 0 });
    assert.deepEqual(
      s.routes.map((r) => r.name),
      ['create-order', 'get-order'],
    );
    assert.deepEqual(s.routes[1], {
      name: 'get-order',
      hits: 2,
      lastSeen: '2026-01-01T00:00:01.000Z',
      statuses: { '2xx': 1, '4xx': 1 },
      deprecated: false,
    });
  });

  test('deprecated routes list their callers, most recent first, bounded by LRU', () => {
    const c = clock();
    const inv = new Inventory({ now: c.now, maxCallers: 2 });
    inv.recordRoute('old', 200, '10.0.0.1', true);
    c.advance(1);
    inv.recordRoute('old', 200, 'spiffe://cluster.local/ns/shop/sa/billing', true);
    c.advance(1);
    inv.recordRoute('old', 200, '10.0.0.1', true); // touched: now the most recent
    c.advance(1);
    inv.recordRoute('old', 410, '10.0.0.3', true); // evicts the billing peer (least recent)
    inv.recordRoute('old', 200, null, true); // no key: counted, no caller
    const [old] = inv.snapshot().routes;
    assert.equal(old?.hits, 5);
    assert.deepEqual(old?.statuses, { '2xx': 4, '4xx': 1 });
    assert.deepEqual(old?.callers, [
      { key: '10.0.0.3', count: 1, lastSeen: '2026-01-01T00:00:00.003Z' },
      { key: '10.0.0.1', count: 2, lastSeen: '2026-01-01T00:00:00.002Z' },
    ]);
    assert.equal(old?.callersEvicted, 1);
  });

  test('undeclared paths collapse into templates keyed by method, with first/last seen', () => {
    const c = clock();
    const inv = new Inventory({ now: c.now });
    inv.recordUndeclared('GET', '/v1/orders/123', 200);
    c.advance(5000);
    inv.recordUndeclared('GET', '/v1/orders/456', 404);
    inv.recordUndeclared('DELETE', '/v1/orders/456', 404);
    const s = inv.snapshot();
    assert.deepEqual(s.totals, { declared: 0, undeclared: 3, overflow: 0 });
    assert.deepEqual(s.undeclared, [
      {
        method: 'GET',
        template: '/v1/orders/{orderId}',
        count: 2,
        statuses: { '2xx': 1, '4xx': 1 },
        firstSeen: '2026-01-01T00:00:00.000Z',
        lastSeen: '2026-01-01T00:00:05.000Z',
      },
      {
        method: 'DELETE',
        template: '/v1/orders/{orderId}',
        count: 1,
        statuses: { '4xx': 1 },
        firstSeen: '2026-01-01T00:00:05.000Z',
        lastSeen: '2026-01-01T00:00:05.000Z',
      },
    ]);
  });

  test('beyond the template limit new templates are counted as overflow; known ones keep counting', () => {
    const inv = new Inventory({ now: clock().now, maxTemplates: 2, maxTemplateLength: 40 });
    inv.recordUndeclared('GET', '/a', 200);
    inv.recordUndeclared('GET', '/b', 200);
    inv.recordUndeclared('GET', '/c', 200);
    inv.recordUndeclared('GET', '/a/1', 200); // /a/{aId}: a new template
    inv.recordUndeclared('GET', '/a', 200);
    inv.recordUndeclared('GET', `/${'x'.repeat(50)}`, 200); // too long
    const s = inv.snapshot();
    assert.deepEqual(s.totals, { declared: 0, undeclared: 6, overflow: 3 });
    assert.deepEqual(
      s.undeclared.map((t) => [t.template, t.count]),
      [
        ['/a', 2],
        ['/b', 1],
      ],
    );
    assert.deepEqual(s.limits, { templates: 2, callersPerRoute: 100, templateLength: 40 });
  });

  test('a flood of numeric ids stays one template', () => {
    const inv = new Inventory({ now: clock().now, maxTemplates: 10 });
    for (let i = 0; i < 5000; i++) inv.recordUndeclared('GET', `/v1/items/${i}`, 200);
    const s = inv.snapshot();
    assert.equal(s.undeclared.length, 1);
    assert.equal(s.undeclared[0]?.count, 5000);
    assert.equal(s.totals.overflow, 0);
  });
});
