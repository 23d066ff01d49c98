import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { classifySegment, collapsePath } from './templates.ts';

describe('classifySegment', () => {
  const cases: [segment: string, kind: ReturnType<typeof classifySegment>][] = [
    ['123', 'numeric'],
    ['0', 'numeric'],
    ['0b6b3c9e-7d1f-4c4e-9c55-2f0e6d1a7b33', 'uuid'],
    ['0B6B3C9E-7D1F-4C4E-9C55-2F0E6D1A7B33', 'uuid'],
    ['5f3a9c0b', 'hex'],
    ['507f1f77bcf86cd799439011', 'hex'],
    ['tok_8fJ2kQ9xLm3Np7Rs4Tv', 'token'],
    ['AbCdEfGhIjKlMnOpQrS1', 'token'],
    // kept literal
    ['v1', null],
    ['orders', null],
    ['me', null],
    ['oauth2', null],
    ['deadbeef', null], // all-letter hex: a word
    ['5f3a9c0', null], // 7 hex digits: too short
    ['ORD-12345', null], // short code
    ['an-ordinary-long-path-segment', null], // long but no digit
    ['abc.def.123456789012345678', null], // dots are not token characters
    ['', null],
  ];
  for (const [segment, kind] of cases) {
    test(`${JSON.stringify(segment)} → ${kind ?? 'literal'}`, () =>
      assert.equal(classifySegment(segment), kind));
  }
});

describe('collapsePath', () => {
  const cases: [path: string, template: string][] = [
    ['/v1/orders/123', '/v1/orders/{orderId}'],
    ['/v1/orders/456', '/v1/orders/{orderId}'],
    ['/v1/orders/0b6b3c9e-7d1f-4c4e-9c55-2f0e6d1a7b33', '/v1/orders/{orderId}'],
    ['/v1/users/42/orders/7', '/v1/users/{userId}/orders/{orderId}'],
    ['/v1/categories/9', '/v1/categories/{categoryId}'],
    ['/v1/user-profiles/9', '/v1/user-profiles/{userProfileId}'],
    ['/v1/address/9', '/v1/address/{addressId}'],
    ['/v1/orders/7/42', '/v1/orders/{orderId}/{id}'],
    ['/42/43', '/{id}/{id2}'],
    ['/v2/5f3a9c0b', '/v2/{id}'],
    ['/files/tok_8fJ2kQ9xLm3Np7Rs4Tv/download', '/files/{fileId}/download'],
    ['/v1/orders/', '/v1/orders/'],
    ['/v1/orders/123/', '/v1/orders/{orderId}/'],
    ['/', '/'],
    ['/healthz', '/healthz'],
    ['*', '*'],
  ];
  for (const [path, template] of cases) {
    test(`${path} → ${template}`, () => assert.equal(collapsePath(path), template));
  }
});
