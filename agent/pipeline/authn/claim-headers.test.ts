import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { testProvider } from '../../../test/support/jwks-server.ts';
import { claimHeaderValues, identityHeaderNames } from './claim-headers.ts';

const provider = testProvider({
  claimHeaders: [
    { claim: 'sub', header: 'x-user-id' },
    { claim: 'n', header: 'x-n' },
    { claim: 'admin', header: 'x-admin' },
    { claim: 'roles', header: 'x-roles' },
    { claim: 'org.id', header: 'x-org' },
    { claim: 'https://example.com/tenant', header: 'x-tenant' },
    { claim: 'obj', header: 'x-obj' },
    { claim: 'absent', header: 'x-absent' },
  ],
});

describe('claimHeaderValues', () => {
  test('scalars as text, arrays joined, objects and absent claims skipped', () => {
    const r = claimHeaderValues(provider, {
      sub: 'user-1',
      n: 42,
      admin: false,
      roles: ['a', 'b', 3],
      org: { id: 'o-9' },
      'https://example.com/tenant': 't1',
      obj: { a: 1 },
    });
    assert.deepEqual(r, {
      ok: true,
      headers: {
        'x-user-id': 'user-1',
        'x-n': '42',
        'x-admin': 'false',
        'x-roles': 'a,b,3',
        'x-org': 'o-9',
        'x-tenant': 't1',
      },
    });
  });

  test('arrays holding objects, empty arrays and null set no header', () => {
    const r = claimHeaderValues(provider, { roles: [{ a: 1 }], sub: null, n: [] });
    assert.deepEqual(r, { ok: true, headers: {} });
  });

  for (const [name, value] of [
    ['CR LF', 'a\r\nx-admin: true'],
    ['LF', 'a\nb'],
    ['NUL', 'a\u0000'],
    ['ESC', '\u001b[31m'],
    ['DEL', 'a\u007f'],
    ['in an array element', ['ok', 'b\r']],
  ] as const) {
    test(`${name} is bad_claim_value`, () => {
      assert.deepEqual(claimHeaderValues(provider, { sub: value }), { ok: false, reason: 'bad_claim_value' });
    });
  }

  test('tab allowed; non-ASCII sent as UTF-8 bytes', () => {
    const r = claimHeaderValues(provider, { sub: 'a\tb', 'https://example.com/tenant': 'Zoë 名' });
    assert.ok(r.ok);
    assert.equal(r.headers['x-user-id'], 'a\tb');
    const wire = r.headers['x-tenant'] ?? '';
    assert.equal(Buffer.from(wire, 'latin1').toString('utf8'), 'Zoë 名');
    assert.ok(!/[\u0100-\uffff]/.test(wire), 'one byte per char');
  });
});

test('identityHeaderNames: union of all providers, lowercase', () => {
  const a = testProvider({ claimHeaders: [{ claim: 'sub', header: 'X-User-Id' }] });
  const b = testProvider({
    name: 'b',
    claimHeaders: [
      { claim: 'email', header: 'x-email' },
      { claim: 'sub', header: 'x-user-id' },
    ],
  });
  assert.deepEqual([...identityHeaderNames([a, b])].sort(), ['x-email', 'x-user-id']);
});
