/**
 * Forwarding end to end: client → inbound server → Forwarder → recording
 * upstream, all on loopback. Header rewriting, streaming both ways,
 * 100-continue and client aborts (failures and retries: forwarder-failures.test.ts).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { PolicyError } from '../errors.ts';
import { openRawClient, type Reply, rawExchange, send, statusOf } from './test-clients.ts';
import { Fixtures } from './test-support.ts';

const fx = new Fixtures();
after(() => fx.closeAll());

describe('headers', () => {
  test('hop-by-hop, Connection-named and client forwarding headers never reach the app', async () => {
    const upstream = await fx.upstream();
    const proxy = await fx.proxy({ upstream: upstream.url });
    const reply = await send(proxy.port, {
      path: '/orders?id=7',
      headers: {
        host: 'api.example',
        connection: 'keep-alive, x-internal',
        'keep-alive': 'timeout=9',
        te: 'trailers',
        'x-internal': 'secret',
        'proxy-authorization': 'Basic eA==',
        'x-forwarded-for': '6.6.6.6',
        'x-forwarded-proto': 'https',
        'x-forwarded-host': 'evil.example',
        forwarded: 'for=6.6.6.6',
        accept: 'application/json',
      },
    });
    assert.equal(reply.status, 200);
    assert.equal(reply.headers['x-upstream'], 'yes');
    const seen = upstream.seen[0];
    assert.ok(seen);
    assert.equal(seen.url, '/orders?id=7');
    assert.equal(seen.headers.host, 'api.example');
    assert.equal(seen.headers.accept, 'application/json');
    for (const name of ['keep-alive', 'te', 'x-internal', 'proxy-authorization'])
      assert.equal(seen.headers[name], undefined, name);
    assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(seen.headers['x-forwarded-proto'], 'http');
    assert.equal(seen.headers['x-forwarded-host'], 'api.example');
    assert.equal(seen.headers.forwarded, 'for=127.0.0.1;proto=http;host=api.example');
  });

  test('request id: a valid client id is passed on, anything else is replaced', async () => {
    const upstream = await fx.upstream();
    const proxy = await fx.proxy({ upstream: upstream.url });
    await send(proxy.port, { headers: { 'x-request-id': 'trace-42:a.b_c' } });
    await send(proxy.port, { headers: { 'x-request-id': 'has space' } });
    await send(proxy.port, {});
    assert.equal(upstream.seen[0]?.headers['x-request-id'], 'trace-42:a.b_c');
    assert.match(String(upstream.seen[1]?.headers['x-request-id']), /^[0-9a-f-]{36}$/);
    assert.match(String(upstream.seen[2]?.headers['x-request-id']), /^[0-9a-f-]{36}$/);
    assert.notEqual(upstream.seen[1]?.headers['x-request-id'], upstream.seen[2]?.headers['x-request-id']);
  });

  test('identity headers are removed, then set by the agent', async () => {
    const upstream = await fx.upstream();
    const proxy = await fx.proxy({
      upstream: upstream.url,
      remove: ['x-user', 'x-roles'],
      set: { 'x-user': 'alice' },
    });
    await send(proxy.port, { headers: { 'x-user': 'mallory', 'x-roles': 'admin' } });
    assert.equal(upstream.seen[0]?.headers['x-user'], 'alice');
    assert.equal(upstream.seen[0]?.headers['x-roles'], undefined);
  });

  test('response: hop-by-hop headers and trailers are dropped, onResponse adds headers', async () => {
    const upstream = await fx.upstream((req, res) => {
      req.resume();
      res.writeHead(200, {
        'content-type': 'text/plain',
        trailer: 'x-checksum',
        'x-hop': '1',
        connection: 'x-hop',
      });
      res.addTrailers({ 'x-checksum': 'abc' });
      res.end('body');
    });
    const hooked: Array<{ status: number; contentType: unknown }> = [];
    const onResponse = (status: number, headers: Record<string, unknown>) => {
      hooked.push({ status, contentType: headers['content-type'] });
      return { deprecation: 'true' };
    };
    const proxy = await fx.proxy({ upstream: upstream.url, onResponse });
    const answer = await rawExchange(proxy.port, 'GET / HTTP/1.1\r\nHost: a\r\n\r\n', 300);
    assert.equal(statusOf(answer.text), 200);
    assert.doesNotMatch(answer.text, /x-checksum|x-hop|trailer:/i);
    assert.match(answer.text, /\r\ndeprecation: true\r\n/i);
    assert.deepEqual(hooked, [{ status: 200, contentType: 'text/plain' }]);
    assert.match(answer.text, /\r\n\r\n4\r\nbody\r\n0\r\n\r\n$/);
  });
});

describe('streaming', () => {
  test('a chunked multi-MB upload streams: the app sees data before the client finished', async () => {
    const upstream = await fx.upstream();
    const proxy = await fx.proxy({ upstream: upstream.url });
    const part = randomBytes(1024 * 1024);
    const rest = randomBytes(4 * 1024 * 1024);
    const expected = createHash('sha256').update(part).update(rest).digest('hex');
    const reply = new Promise<Reply>((resolve, reject) => {
      const req = httpRequest(
        { host: '127.0.0.1', port: proxy.port, method: 'POST', path: '/upload', agent: false },
        (res) => {
          let body = '';
          res.on('data', (c: Buffer) => {
            body += c.toString();
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        },
      );
      req.on('error', reject);
      req.write(part);
      const waitForApp = async () => {
        for (let i = 0; i < 200 && (upstream.seen[0]?.body.length ?? 0) === 0; i += 1) await sleep(10);
        assert.ok(
          (upstream.seen[0]?.body.length ?? 0) > 0,
          'the app received data while the client was still sending',
        );
        assert.equal(upstream.seen[0]?.headers['transfer-encoding'], 'chunked');
        req.end(rest);
      };
      waitForApp().catch(reject);
    });
    const result = await reply;
    assert.equal(result.status, 200);
    assert.equal(JSON.parse(result.body).bodyLength, part.length + rest.length);
    assert.equal(
      createHash('sha256')
        .update(upstream.seen[0]?.body ?? Buffer.alloc(0))
        .digest('hex'),
      expected,
    );
  });

  test('the response streams: the client reads the first chunk before the app finished', async () => {
    let finish = () => {};
    const released = new Promise<void>((resolve) => {
      finish = resolve;
    });
    const upstream = await fx.upstream((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('first;');
      void released.then(() => res.end('second'));
    });
    const proxy = await fx.proxy({ upstream: upstream.url });
    const client = await openRawClient(proxy.port);
    client.socket.write('GET /stream HTTP/1.1\r\nHost: a\r\n\r\n');
    await client.waitFor(/first;/);
    assert.doesNotMatch(client.text(), /second/);
    finish();
    await client.waitFor(/second\r\n0\r\n\r\n$/);
    client.socket.destroy();
  });
});

describe('client side', () => {
  test('Expect: 100-continue: 100 only once allowed; the app gets the body and no Expect', async () => {
    const upstream = await fx.upstream();
    const proxy = await fx.proxy({ upstream: upstream.url });
    const client = await openRawClient(proxy.port);
    client.socket.write('PUT /doc HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n');
    await client.waitFor(/^HTTP\/1\.1 100 Continue\r\n\r\n$/);
    client.socket.write('hello');
    await client.waitFor(/"bodyLength":5/);
    assert.equal(upstream.seen[0]?.headers.expect, undefined);
    assert.equal(upstream.seen[0]?.body.toString(), 'hello');
    client.socket.destroy();
  });

  test('Expect: 100-continue denied: final status, no 100, closed, the app never asked', async () => {
    const upstream = await fx.upstream();
    const deny = () =>
      new PolicyError('ERR_AUTHN_REQUIRED', 'a token is required', { 'www-authenticate': 'Bearer' });
    const proxy = await fx.proxy({ upstream: upstream.url, deny });
    const answer = await rawExchange(
      proxy.port,
      'PUT /doc HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n',
    );
    assert.equal(statusOf(answer.text), 401);
    assert.doesNotMatch(answer.text, /100 Continue/);
    assert.equal(answer.closed, true);
    assert.equal(upstream.seen.length, 0);
  });

  test('the client going away mid-upload aborts the upstream request', async () => {
    let upstreamClosed = false;
    const upstream = await fx.upstream((req) => {
      req.socket.on('close', () => {
        upstreamClosed = true;
      });
    });
    const proxy = await fx.proxy({ upstream: upstream.url });
    const client = await openRawClient(proxy.port);
    client.socket.write('POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\n');
    client.socket.write(Buffer.alloc(64 * 1024));
    while ((upstream.seen[0]?.body.length ?? 0) === 0) await sleep(5);
    client.socket.destroy();
    for (let i = 0; i < 100 && !upstreamClosed; i += 1) await sleep(10);
    assert.equal(upstreamClosed, true);
  });

  test('the client going away aborts the upstream request', async () => {
    let upstreamClosed = false;
    const upstream = await fx.upstream((req) => {
      req.socket.on('close', () => {
        upstreamClosed = true;
      });
    });
    const proxy = await fx.proxy({ upstream: upstream.url, timeoutMs: 5_000 });
    const client = await openRawClient(proxy.port);
    client.socket.write('GET /slow HTTP/1.1\r\nHost: a\r\n\r\n');
    while (upstream.seen.length === 0) await sleep(5);
    client.socket.destroy();
    for (let i = 0; i < 100 && !upstreamClosed; i += 1) await sleep(10);
    assert.equal(upstreamClosed, true);
  });
});
