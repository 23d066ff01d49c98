import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { testProvider } from '../../../test/support/jwks-server.ts';
import { afterPrefix, cookieValues, findToken, stripToken, tokenPlaces } from './token-locator.ts';

describe('afterPrefix', () => {
  const cases: [string, string, string | undefined][] = [
    ['Bearer abc', 'Bearer ', 'abc'],
    ['bearer abc', 'Bearer ', 'abc'],
    ['BEARER   abc  ', 'Bearer ', 'abc'],
    ['Bearer\tabc', 'Bearer ', 'abc'],
    ['Bearer', 'Bearer ', ''],
    ['Bearer   ', 'Bearer ', ''],
    ['Bearerabc', 'Bearer ', undefined],
    ['Basic dXNlcg==', 'Bearer ', undefined],
    ['abc', '', 'abc'],
    ['Token=abc', 'Token=', 'abc'],
  ];
  for (const [value, prefix, expected] of cases) {
    test(`${JSON.stringify(value)} with ${JSON.stringify(prefix)}`, () =>
      assert.equal(afterPrefix(value, prefix), expected));
  }
});

test('cookieValues: spaces, quotes, several cookies', () => {
  assert.deepEqual(cookieValues('a=1; session="t.o.k" ;b=2', 'session'), ['t.o.k']);
  assert.deepEqual(cookieValues(' session = tok ', 'session'), ['tok']);
  assert.deepEqual(cookieValues(['a=1', 'session=x; session=y'], 'session'), ['x', 'y']);
  assert.deepEqual(cookieValues('sessionx=1; xsession=2; flag', 'session'), []);
  assert.deepEqual(cookieValues(undefined, 'session'), []);
});

describe('findToken', () => {
  const bearer = testProvider({ name: 'bearer' });
  const cookie = testProvider({ name: 'cookie', from: [{ cookie: 'session' }] });
  const custom = testProvider({ name: 'custom', from: [{ header: 'X-Api-Token', prefix: '' }] });
  const places = tokenPlaces([cookie, bearer, custom]);

  test('places in provider order, header names lowercased', () => {
    assert.deepEqual(
      places.map((p) => `${p.source}:${p.name}`),
      ['cookie:session', 'header:authorization', 'header:x-api-token'],
    );
  });

  test('none, token, malformed', () => {
    assert.equal(findToken({}, places), undefined);
    assert.equal(findToken({ authorization: 'Basic abc' }, places), undefined);
    const found = findToken({ authorization: 'Bearer t1', 'x-api-token': 't2' }, places);
    assert.equal(found?.kind === 'token' && `${found.token}@${found.place.name}`, 't1@authorization');
    assert.equal(findToken({ authorization: 'Bearer ' }, places)?.kind, 'malformed');
    assert.equal(findToken({ cookie: 'session=' }, places)?.kind, 'malformed');
  });

  test('first place in provider order wins', () => {
    const found = findToken({ authorization: 'Bearer t1', cookie: 'a=b; session=t3' }, places);
    assert.equal(found?.kind === 'token' && found.token, 't3');
  });

  test('repeated header values or conflicting cookies are malformed', () => {
    assert.equal(findToken({ 'x-api-token': ['a', 'b'] }, places)?.kind, 'malformed');
    assert.equal(findToken({ 'x-api-token': ['a', 'a'] }, places)?.kind, 'token');
    assert.equal(findToken({ cookie: 'session=a; session=b' }, places)?.kind, 'malformed');
    assert.equal(findToken({ cookie: 'session=a; session="a"' }, places)?.kind, 'token');
  });

  test('longest prefix wins on a shared header', () => {
    const any = testProvider({ name: 'any', from: [{ header: 'authorization', prefix: '' }] });
    const found = findToken({ authorization: 'bearer t1' }, tokenPlaces([any, bearer]));
    assert.deepEqual(found?.kind === 'token' && [found.token, found.providers.map((p) => p.name)], [
      't1',
      ['bearer'],
    ]);
  });
});

describe('stripToken', () => {
  test('removes the carrying header', () => {
    const headers = { authorization: 'Bearer x', accept: '*/*' };
    stripToken(headers, { source: 'header', location: 'authorization' });
    assert.deepEqual(headers, { accept: '*/*' });
  });

  test('removes only the token cookie, every copy', () => {
    const headers: Record<string, string | string[] | undefined> = {
      cookie: 'a=1; session=x; flag; session=y;b="2"',
    };
    stripToken(headers, { source: 'cookie', location: 'session' });
    assert.equal(headers.cookie, 'a=1; flag; b="2"');
  });

  test('drops the Cookie header when nothing is left', () => {
    const headers: Record<string, string | string[] | undefined> = { cookie: ' session=x ' };
    stripToken(headers, { source: 'cookie', location: 'session' });
    assert.equal('cookie' in headers, false);
  });
});
