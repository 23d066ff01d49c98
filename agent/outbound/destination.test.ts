import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PolicyError } from '../errors.ts';
import { canonicalAddress, destinationOf, isOwnListener } from './destination.ts';

describe('destinationOf', () => {
  const good: { target: string; host?: string; want: [string, number, string, string] }[] = [
    {
      target: '/v1/orders?x=1',
      host: 'orders:8080',
      want: ['orders', 8080, 'http://orders:8080', '/v1/orders?x=1'],
    },
    {
      target: '/',
      host: 'Orders.Shop.svc.cluster.local',
      want: ['orders.shop.svc.cluster.local', 80, 'http://orders.shop.svc.cluster.local:80', '/'],
    },
    { target: '/a', host: '10.0.0.7:9000', want: ['10.0.0.7', 9000, 'http://10.0.0.7:9000', '/a'] },
    {
      target: '/a',
      host: '[2001:db8::1]:8080',
      want: ['2001:db8::1', 8080, 'http://[2001:db8::1]:8080', '/a'],
    },
    { target: '/a', host: '[::1]', want: ['::1', 80, 'http://[::1]:80', '/a'] },
    { target: '/a', host: ' my_host:81 ', want: ['my_host', 81, 'http://my_host:81', '/a'] },
    {
      target: 'http://api.example:8081/x?y',
      host: 'ignored:1',
      want: ['api.example', 8081, 'http://api.example:8081', '/x?y'],
    },
    { target: 'HTTP://api.example', want: ['api.example', 80, 'http://api.example:80', '/'] },
    { target: 'http://api.example?q=1', want: ['api.example', 80, 'http://api.example:80', '/?q=1'] },
  ];
  for (const c of good) {
    test(`${c.target} Host ${c.host ?? '(none)'}`, () => {
      const d = destinationOf(c.target, c.host);
      assert.deepEqual([d.host, d.port, d.origin, d.path], c.want);
    });
  }

  test('authority as logged', () => {
    assert.equal(destinationOf('/', '[::1]:8080').authority, '[::1]:8080');
    assert.equal(destinationOf('/', 'a:1').authority, 'a:1');
  });

  const bad: { target: string; host?: string; why: RegExp }[] = [
    { target: '/x', why: /Host header is required/ },
    { target: '/x', host: '', why: /Host header is required/ },
    { target: '/x', host: 'a:0', why: /invalid port/ },
    { target: '/x', host: 'a:65536', why: /invalid port/ },
    { target: '/x', host: 'a:b', why: /does not name a destination/ },
    { target: '/x', host: 'a b', why: /does not name a destination/ },
    { target: '/x', host: 'user@a', why: /does not name a destination/ },
    { target: '/x', host: '[zz::1]:80', why: /does not name a destination|invalid IPv6/ },
    { target: '/x', host: '[1::2::3]:80', why: /invalid IPv6/ },
    { target: '/x', host: 'a..b', why: /invalid name/ },
    { target: '/x', host: '-a', why: /does not name a destination/ },
    { target: 'https://api.example/x', why: /only http:\/\// },
    { target: 'http://u:p@api.example/x', why: /credentials/ },
    { target: '*', host: 'a', why: /must be a path/ },
    { target: 'x', host: 'a', why: /must be a path/ },
  ];
  for (const c of bad) {
    test(`refuses ${c.target} Host ${JSON.stringify(c.host)}`, () => {
      assert.throws(
        () => destinationOf(c.target, c.host),
        (e: unknown) =>
          e instanceof PolicyError && e.code === 'ERR_OUTBOUND_DESTINATION' && c.why.test(e.detail),
      );
    });
  }
});

describe('isOwnListener', () => {
  const local = ['127.0.0.1', '10.1.0.5', 'fe80::1', '::1'];
  const cases: [string, boolean][] = [
    ['127.0.0.1:15001', true],
    ['127.8.0.1:15001', true],
    ['localhost:15001', true],
    ['api.localhost:15001', true],
    ['0.0.0.0:15001', true],
    ['[::]:15001', true],
    ['[::1]:15001', true],
    ['[::ffff:10.1.0.5]:15001', true],
    ['10.1.0.5:15001', true],
    ['10.1.0.6:15001', false],
    ['10.1.0.5:8080', false],
    ['127.0.0.1:8080', false],
    ['orders:15001', false],
  ];
  for (const [host, want] of cases) {
    test(`${host}: ${want}`, () => {
      assert.equal(isOwnListener(destinationOf('/', host), 15001, local), want);
    });
  }
});

describe('canonicalAddress', () => {
  test('IPv4-mapped IPv6 reads as IPv4; IPv6 compressed; names lowercased', () => {
    assert.equal(canonicalAddress('::ffff:10.0.0.1'), '10.0.0.1');
    assert.equal(canonicalAddress('2001:DB8:0:0:0:0:0:1'), '2001:db8::1');
    assert.equal(canonicalAddress('Pod-A'), 'pod-a');
  });
});
