import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compilePeerPattern, parsePeer } from './peer.ts';

describe('parsePeer', () => {
  const cases: [id: string, expected: ReturnType<typeof parsePeer>][] = [
    [
      'spiffe://cluster.local/ns/shop/sa/billing',
      { id: 'spiffe://cluster.local/ns/shop/sa/billing', namespace: 'shop', serviceAccount: 'billing' },
    ],
    ['spiffe://example.org', { id: 'spiffe://example.org', namespace: '', serviceAccount: '' }],
    [
      'spiffe://example.org/workload/x',
      { id: 'spiffe://example.org/workload/x', namespace: '', serviceAccount: '' },
    ],
    [
      'spiffe://cluster.local/ns/shop/sa/billing/extra',
      { id: 'spiffe://cluster.local/ns/shop/sa/billing/extra', namespace: '', serviceAccount: '' },
    ],
    [
      'spiffe://cluster.local/ns//sa/x',
      { id: 'spiffe://cluster.local/ns//sa/x', namespace: '', serviceAccount: '' },
    ],
    ['https://cluster.local/ns/shop/sa/billing', null],
    ['spiffe://', null],
    ['spiffe:///ns/a/sa/b', null],
    ['', null],
  ];
  for (const [id, expected] of cases) {
    it(JSON.stringify(id), () => {
      assert.deepEqual(parsePeer(id), expected);
    });
  }
});

describe('compilePeerPattern', () => {
  const billing = 'spiffe://cluster.local/ns/shop/sa/billing';
  const cases: [pattern: string, id: string, expected: boolean][] = [
    ['*', billing, true],
    ['*', 'spiffe://other.domain/anything', true],
    [billing, billing, true],
    [billing, 'spiffe://cluster.local/ns/shop/sa/billing2', false],
    [billing, 'spiffe://cluster.local/ns/shop/sa/billing/x', false],
    [billing, 'SPIFFE://cluster.local/ns/shop/sa/billing', false],
    ['spiffe://cluster.local/ns/shop/sa/*', billing, true],
    ['spiffe://cluster.local/ns/shop/sa/*', 'spiffe://cluster.local/ns/shop/sa/', false],
    ['spiffe://cluster.local/ns/shop/sa/*', 'spiffe://cluster.local/ns/shop/sa/a/b', false],
    ['spiffe://cluster.local/ns/shop/sa/*', 'spiffe://cluster.local/ns/cart/sa/billing', false],
    ['spiffe://cluster.local/ns/*/sa/billing', billing, true],
    ['spiffe://cluster.local/ns/*/sa/billing', 'spiffe://cluster.local/ns/cart/sa/billing', true],
    ['spiffe://cluster.local/ns/*/sa/billing', 'spiffe://cluster.local/ns/cart/sa/gateway', false],
    ['spiffe://cluster.local/ns/*/sa/*', billing, true],
    ['spiffe://cluster.local/ns/*/sa/*', 'spiffe://cluster.local/ns/shop', false],
    ['spiffe://*/ns/shop/sa/billing', 'spiffe://other.mesh/ns/shop/sa/billing', true],
    ['spiffe://*/ns/shop/sa/billing', 'spiffe://other.mesh/ns/cart/sa/billing', false],
    ['spiffe://cluster.local/*', 'spiffe://cluster.local/ns', true],
    ['spiffe://cluster.local/*', billing, false],
  ];
  for (const [pattern, id, expected] of cases) {
    it(`${pattern} ~ ${id} → ${expected}`, () => {
      assert.equal(compilePeerPattern(pattern)(id), expected);
    });
  }
});
