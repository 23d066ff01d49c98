import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { claimMatches, claimValue, tokenScopes } from './claims.ts';

const claims = {
  sub: 'alice',
  'https://x.io/roles': ['admin', 'ops'],
  'https://x.io': { roles: ['nested'] },
  org: { id: 'o-1', tier: 3, owner: { name: 'bob' }, tags: ['a'] },
  'org.id': 'verbatim wins',
  admin: true,
  level: 7,
  list: [{ id: 1 }],
  nothing: null,
};

describe('claimValue', () => {
  const cases: [path: string, value: unknown][] = [
    ['sub', 'alice'],
    ['https://x.io/roles', ['admin', 'ops']],
    ['org.id', 'verbatim wins'],
    ['org.tier', 3],
    ['org.owner.name', 'bob'],
    ['org.tags', ['a']],
    ['admin', true],
    ['nothing', null],
    ['missing', undefined],
    ['org.missing', undefined],
    ['sub.length', undefined],
    ['list.0.id', undefined],
    ['nothing.x', undefined],
    ['org.owner.name.first', undefined],
    ['constructor', undefined],
    ['org.toString', undefined],
    ['', undefined],
  ];
  for (const [path, value] of cases) {
    it(`${JSON.stringify(path)} → ${JSON.stringify(value)}`, () => {
      assert.deepEqual(claimValue(claims, path), value);
    });
  }

  it('walks a dotted path when no verbatim key exists', () => {
    assert.deepEqual(claimValue({ 'https://x': { io: 1 } }, 'https://x.io'), 1);
  });
});

describe('claimMatches', () => {
  const cases: [name: string, value: unknown, accepted: string[], expected: boolean][] = [
    ['equal string', 'admin', ['admin'], true],
    ['one of several', 'ops', ['admin', 'ops'], true],
    ['different string', 'user', ['admin'], false],
    ['case-sensitive', 'Admin', ['admin'], false],
    ['array contains', ['user', 'admin'], ['admin'], true],
    ['array does not contain', ['user', 'guest'], ['admin'], false],
    ['empty array', [], ['admin'], false],
    ['nested array contains', [['admin']], ['admin'], true],
    ['number as text', 42, ['42'], true],
    ['number as other text', 42, ['42.0'], false],
    ['float as text', 1.5, ['1.5'], true],
    ['boolean as text', true, ['true'], true],
    ['false as text', false, ['true'], false],
    ['numbers in an array', [1, 2], ['2'], true],
    ['object never matches', { id: 'admin' }, ['admin', '[object Object]'], false],
    ['null never matches', null, ['null', ''], false],
    ['missing never matches', undefined, ['undefined', ''], false],
    ['empty string matches an empty value', '', [''], true],
  ];
  for (const [name, value, accepted, expected] of cases) {
    it(`${name} → ${expected}`, () => {
      assert.equal(claimMatches(value, accepted), expected);
    });
  }
});

describe('tokenScopes', () => {
  const cases: [name: string, claims: Record<string, unknown>, scopes: string[]][] = [
    ['none', {}, []],
    ['scope string', { scope: 'orders:read orders:write' }, ['orders:read', 'orders:write']],
    ['scope with extra spaces', { scope: ' a  b ' }, ['a', 'b']],
    ['scp array', { scp: ['a', 'b'] }, ['a', 'b']],
    ['scp string', { scp: 'a b' }, ['a', 'b']],
    ['scp array ignores non-strings and empties', { scp: ['a', 1, null, '', 'b'] }, ['a', 'b']],
    ['both, merged', { scope: 'a b', scp: ['b', 'c'] }, ['a', 'b', 'c']],
    ['scope array also read', { scope: ['x'] }, ['x']],
    ['other types ignored', { scope: 5, scp: { a: 1 } }, []],
    ['scopes are case-sensitive', { scope: 'Read read' }, ['Read', 'read']],
  ];
  for (const [name, value, scopes] of cases) {
    it(name, () => {
      assert.deepEqual([...tokenScopes(value)].sort(), [...scopes].sort());
    });
  }
});
