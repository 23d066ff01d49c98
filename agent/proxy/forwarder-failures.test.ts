/**
 * Upstream failures seen through the proxy (503 / 504 / 502 problem+json, or a
 * cut connection once the response started) and the retry rule: an idempotent
 * request without a body is retried once after the stale keep-alive race;
 * nothing else ever reaches the app twice.
 */
import assert from 'node:assert/strict';
import { createServer as createNetServer, type Socket } from 'node:net';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { bodyOf, openRawClient, rawExchange, send, statusOf } from './test-clients.ts';
import { Fixtures, listen } from './test-support.ts';

const fx = new Fixtures();
after(() => fx.closeAll());

describe('upstream failures', () => {
  test('app down → 503 problem+json', async () => {
    const probe = createNetServer();
    const port = await listen(probe);
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const proxy = await fx.proxy({ upstream: new URL(`http://127.0.0.1:${port}`) });
    const reply = await send(proxy.port, { headers: { 'x-request-id': 'r1' } });
    assert.equal(reply.status, 503);
    assert.equal(reply.headers['content-type'], 'application/problem+json');
    const problem = JSON.parse(reply.body);
    assert.equal(problem.code, 'ERR_UPSTREAM_UNAVAILABLE');
    assert.equal(problem.requestId, 'r1');
    assert.doesNotMatch(reply.body, /127\.0\.0\.1/);
  });

  test('app hangs → 504 after the timeout', async () => {
    const upstream = await fx.upstream(() => {});
    const proxy = await fx.proxy({ upstream: upstream.url, timeoutMs: 200 });
    const started = Date.now();
    const reply = await send(proxy.port, {});
    assert.equal(reply.status, 504);
    assert.equal(JSON.parse(reply.body).code, 'ERR_UPSTREAM_TIMEOUT');
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 190 && elapsed < 800, `504 after ${elapsed} ms`);
  });

  test('a slow upload does not count against the timeout', async () => {
    const upstream = await fx.upstream();
    const proxy = await fx.proxy({ upstream: upstream.url, timeoutMs: 150 });
    const client = await openRawClient(proxy.port);
    client.socket.write('POST /slow-upload HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\n\r\nabc');
    await sleep(400);
    client.socket.write('def');
    const text = await client.waitFor(/"bodyLength":6/);
    assert.equal(statusOf(text), 200);
    client.socket.destroy();
  });

  test('app resets mid-response → the client connection is cut', async () => {
    const upstream = await fx.upstream((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-length': '100' });
      res.write('partial');
      setTimeout(() => res.socket?.destroy(), 50);
    });
    const proxy = await fx.proxy({ upstream: upstream.url });
    const answer = await rawExchange(proxy.port, 'GET / HTTP/1.1\r\nHost: a\r\n\r\n');
    assert.equal(statusOf(answer.text), 200);
    assert.equal(bodyOf(answer.text), 'partial');
    assert.equal(answer.closed, true);
  });

  test('app sends garbage → 502', async () => {
    const raw = createNetServer((socket) => socket.resume().end('NOT HTTP\r\n\r\n'));
    const port = await listen(raw);
    fx.add(() => new Promise((resolve) => raw.close(() => resolve())));
    const proxy = await fx.proxy({ upstream: new URL(`http://127.0.0.1:${port}`) });
    const reply = await send(proxy.port, {});
    assert.equal(reply.status, 502);
    assert.equal(JSON.parse(reply.body).code, 'ERR_UPSTREAM_FAILED');
  });

  test('app drops the connection mid-upload → 503 and the connection closes; the process survives', async () => {
    const upstream = await fx.upstream((req) => {
      req.once('data', () => req.socket.destroy());
    });
    const proxy = await fx.proxy({ upstream: upstream.url });
    const client = await openRawClient(proxy.port);
    client.socket.write('POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 10000000\r\n\r\n');
    client.socket.write(Buffer.alloc(256 * 1024));
    const text = await client.waitFor(/\r\n\r\n\{.*\}$/);
    assert.equal(statusOf(text), 503);
    assert.match(text, /\r\nconnection: close\r\n/i);
    await client.closed;
  });
});

describe('retries', () => {
  /** An app that answers the first request on each connection and drops the connection on the second. */
  async function staleApp() {
    const perSocket = new WeakMap<Socket, number>();
    return fx.upstream((req, res) => {
      const n = (perSocket.get(req.socket) ?? 0) + 1;
      perSocket.set(req.socket, n);
      if (n === 2) {
        req.socket.destroy();
        return;
      }
      req.resume();
      req.on('end', () => res.end('ok'));
    });
  }

  test('GET on a connection the app closed is retried once on a fresh one', async () => {
    const upstream = await staleApp();
    const proxy = await fx.proxy({ upstream: upstream.url });
    assert.equal((await send(proxy.port, {})).status, 200);
    const second = await send(proxy.port, {});
    assert.equal(second.status, 200);
    assert.equal(upstream.seen.length, 3);
  });

  test('POST is never retried: the app sees it once and the client gets 503', async () => {
    const upstream = await staleApp();
    const proxy = await fx.proxy({ upstream: upstream.url });
    assert.equal((await send(proxy.port, {})).status, 200);
    const post = await send(proxy.port, { method: 'POST', body: 'x', headers: { 'content-length': '1' } });
    assert.equal(post.status, 503);
    assert.equal(upstream.seen.filter((s) => s.method === 'POST').length, 1);
  });

  test('a POST the app drops is sent once even on a fresh connection', async () => {
    const upstream = await fx.upstream((req) => req.socket.destroy());
    const proxy = await fx.proxy({ upstream: upstream.url });
    const post = await send(proxy.port, {
      method: 'POST',
      body: '{}',
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(post.status, 503);
    assert.equal(upstream.seen.length, 1);
  });
});
