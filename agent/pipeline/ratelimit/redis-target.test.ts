import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Cluster, Redis } from 'ioredis';
import { createRedisClient, parseRedisTarget, redactRedisUrl } from './redis-client.ts';

describe('parseRedisTarget', () => {
  const cases: [name: string, url: string, expected: unknown][] = [
    ['one server', 'redis://127.0.0.1:6379/0', { kind: 'single', url: 'redis://127.0.0.1:6379/0' }],
    [
      'one server over TLS with auth',
      'rediss://u:p@cache:6380',
      { kind: 'single', url: 'rediss://u:p@cache:6380' },
    ],
    [
      'Sentinel with two sentinels, default port and a master name',
      'redis-sentinel://:s3cret@s1:26380,s2/mymaster',
      {
        kind: 'sentinel',
        nodes: [
          { host: 's1', port: 26380 },
          { host: 's2', port: 26379 },
        ],
        name: 'mymaster',
        auth: { password: 's3cret' },
        tls: false,
      },
    ],
    [
      'Cluster over TLS with a user',
      'redis-cluster://app:pw@10.0.0.1:7000,[::1]:7001?tls=true',
      {
        kind: 'cluster',
        nodes: [
          { host: '10.0.0.1', port: 7000 },
          { host: '::1', port: 7001 },
        ],
        auth: { username: 'app', password: 'pw' },
        tls: true,
      },
    ],
    [
      'Cluster with the default port',
      'redis-cluster://a,b',
      {
        kind: 'cluster',
        nodes: [
          { host: 'a', port: 6379 },
          { host: 'b', port: 6379 },
        ],
        auth: {},
        tls: false,
      },
    ],
    [
      'another scheme',
      'http://cache:6379',
      'expected redis://, rediss:// (TLS), redis-sentinel:// or redis-cluster://',
    ],
    [
      'a Sentinel URL without a master name',
      'redis-sentinel://s1:26379',
      'a Sentinel URL names the master: .../<name>',
    ],
    ['a bad host list', 'redis-cluster://a:99999', 'bad host list (host[:port],host[:port]...)'],
    ['no host', 'redis://', 'no host'],
  ];
  for (const [name, url, expected] of cases) {
    test(name, () => {
      assert.deepEqual(parseRedisTarget(url), expected);
    });
  }

  test('problems never quote the URL (it may carry a password)', () => {
    for (const url of ['redis-cluster://u:topsecret@a:99999', 'redis-sentinel://u:topsecret@s1']) {
      const r = parseRedisTarget(url);
      assert.equal(typeof r, 'string');
      assert.doesNotMatch(String(r), /topsecret/);
    }
  });
});

describe('redactRedisUrl', () => {
  test('hides the password of every form', () => {
    assert.equal(redactRedisUrl('redis://u:pw@h:1/0'), 'redis://u:redacted@h:1/0');
    assert.equal(redactRedisUrl('redis-sentinel://:pw@s1,s2/m'), 'redis-sentinel://:redacted@s1,s2/m');
    assert.equal(redactRedisUrl('redis-cluster://u:pw@a:1,b:2'), 'redis-cluster://u:redacted@a:1,b:2');
    assert.equal(redactRedisUrl('redis-cluster://a:1'), 'redis-cluster://a:1');
  });
});

describe('createRedisClient', () => {
  test('builds a Sentinel client and a Cluster client without connecting', () => {
    const sentinel = createRedisClient('redis-sentinel://s1:26379/mymaster', { timeoutMs: 50 });
    assert.ok(sentinel instanceof Redis);
    assert.ok(!(sentinel instanceof Cluster));
    assert.equal(sentinel.status, 'wait', 'lazy: nothing is contacted before connectWithin');
    sentinel.disconnect();
    const cluster = createRedisClient('redis-cluster://a:7000,b:7001', { timeoutMs: 50 });
    assert.ok(cluster instanceof Cluster);
    assert.equal(cluster.status, 'wait');
    cluster.disconnect();
  });

  test('refuses an invalid URL', () => {
    assert.throws(() => createRedisClient('ftp://x', { timeoutMs: 50 }), /invalid Redis URL/);
  });
});
