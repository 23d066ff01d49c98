/**
 * Upgrades through the proxy with a raw WebSocket-style handshake (no ws
 * library): the 101 round trip and byte echo, a refused upgrade relayed as a
 * plain response, an unreachable app, and drain cutting a live tunnel.
 */
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import type { Duplex } from 'node:stream';
import { after, describe, test } from 'node:test';
import { drainServer } from './inbound-server.ts';
import { bodyOf, openRawClient, rawExchange, statusOf } from './test-clients.ts';
import { Fixtures } from './test-support.ts';

const fx = new Fixtures();
after(() => fx.closeAll());

const handshake = [
  'GET /chat?room=1 HTTP/1.1',
  'Host: chat.example',
  'Connection: Upgrade',
  'Upgrade: websocket',
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
  'Sec-WebSocket-Version: 13',
  'X-Forwarded-For: 6.6.6.6',
  '',
  '',
].join('\r\n');

/** An app that accepts upgrades and echoes every byte back. */
async function echoApp() {
  const upstream = await fx.upstream();
  const upgrades: Array<{ url: string; headers: IncomingHttpHeaders; socket: Duplex }> = [];
  upstream.server.on('upgrade', (req, socket: Duplex, head: Buffer) => {
    upgrades.push({ url: req.url ?? '', headers: req.headers, socket });
    socket.write(
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n',
    );
    if (head.length > 0) socket.write(head);
    socket.pipe(socket);
    socket.on('error', () => socket.destroy());
  });
  return { upstream, upgrades };
}

describe('forwardUpgrade', () => {
  test('101 round trip: handshake relayed, early bytes and later bytes echoed both ways', async () => {
    const { upstream, upgrades } = await echoApp();
    const proxy = await fx.proxy({ upstream: upstream.url });
    const client = await openRawClient(proxy.port);
    client.socket.write(`${handshake}early;`);
    const head = await client.waitFor(/\r\n\r\nearly;$/);
    assert.match(head, /^HTTP\/1\.1 101 Switching Protocols\r\n/);
    assert.match(head, /\r\nupgrade: websocket\r\n/i);
    assert.match(head, /\r\nconnection: upgrade\r\n/i);
    assert.match(head, /\r\nsec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=\r\n/i);
    client.socket.write('ping');
    await client.waitFor(/early;ping$/);
    const seen = upgrades[0];
    assert.ok(seen);
    assert.equal(seen.url, '/chat?room=1');
    assert.equal(seen.headers.upgrade, 'websocket');
    assert.equal(seen.headers['sec-websocket-key'], 'dGhlIHNhbXBsZSBub25jZQ==');
    assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(seen.headers.host, 'chat.example');
    const upstreamClosed = new Promise<void>((resolve) => seen.socket.once('close', () => resolve()));
    client.socket.destroy();
    await upstreamClosed;
  });

  test('a refused upgrade is relayed as a plain response, then closed', async () => {
    const upstream = await fx.upstream((req, res) => {
      req.resume();
      res.writeHead(403, { 'content-type': 'text/plain', 'content-length': '4' }).end('nope');
    });
    const proxy = await fx.proxy({ upstream: upstream.url });
    const answer = await rawExchange(proxy.port, handshake);
    assert.equal(statusOf(answer.text), 403);
    assert.equal(bodyOf(answer.text), 'nope');
    assert.match(answer.text, /\r\nconnection: close\r\n/i);
    assert.equal(answer.closed, true);
  });

  test('app down → 503 problem+json on the socket', async () => {
    const upstream = await fx.upstream();
    await upstream.close();
    const proxy = await fx.proxy({ upstream: upstream.url });
    const answer = await rawExchange(proxy.port, handshake);
    assert.equal(statusOf(answer.text), 503);
    assert.equal(JSON.parse(bodyOf(answer.text)).code, 'ERR_UPSTREAM_UNAVAILABLE');
    assert.equal(answer.closed, true);
  });

  test('drainServer cuts a live tunnel at its timeout', async () => {
    const { upstream } = await echoApp();
    const proxy = await fx.proxy({ upstream: upstream.url });
    const client = await openRawClient(proxy.port);
    client.socket.write(handshake);
    await client.waitFor(/101 Switching Protocols[\s\S]*\r\n\r\n$/);
    await drainServer(proxy.server, { timeoutMs: 100 });
    await client.closed;
  });
});
