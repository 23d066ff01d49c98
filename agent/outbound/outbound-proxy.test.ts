import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders, request, type Server } from 'node:http';
import { type AddressInfo, connect, type LookupFunction } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { RecordingLogger } from '../../test/support/recording-logger.ts';
import { openRawClient, rawExchange, statusOf } from '../proxy/test-clients.ts';
import { Metrics } from '../telemetry/metrics.ts';
import { OutboundProxy } from './outbound-proxy.ts';

interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
  remotePort: number;
}

/** A destination that records what reaches it and echoes the path. */
async function destination(): Promise<{
  server: Server;
  port: number;
  seen: Seen[];
  connections: () => number;
}> {
  const seen: Seen[] = [];
  let connections = 0;
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => {
      body += c;
    });
    req.on('end', () => {
      seen.push({
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body,
        remotePort: req.socket.remotePort ?? 0,
      });
      res.writeHead(201, { 'content-type': 'text/plain', 'x-dest': 'yes', 'keep-alive': 'timeout=7' });
      res.end(`seen ${req.url}`);
    });
  });
  server.on('connection', () => {
    connections += 1;
  });
  server.on('upgrade', (req, socket) => {
    seen.push({
      method: req.method ?? '',
      url: req.url ?? '',
      headers: req.headers,
      body: '',
      remotePort: 0,
    });
    socket.write('HTTP/1.1 101 Switching Protocols\r\nupgrade: echo\r\nconnection: upgrade\r\n\r\n');
    socket.pipe(socket);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port, seen, connections: () => connections };
}

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

function send(
  port: number,
  path: string,
  headers: Record<string, string>,
  options: { method?: string; body?: string; agent?: import('node:http').Agent } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: options.method ?? 'GET',
        headers,
        agent: options.agent ?? false,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          body += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

describe('OutboundProxy', () => {
  const logger = new RecordingLogger();
  const metrics = new Metrics();
  /** `self.test` resolves to 127.0.0.1, where the proxy itself listens: only the connection check sees the loop. */
  const lookup: LookupFunction = (hostname, options, callback) => {
    if (hostname !== 'self.test') return callback(new Error(`no such name ${hostname}`), '', 4);
    if (options.all)
      (callback as unknown as (e: null, a: { address: string; family: number }[]) => void)(null, [
        { address: '127.0.0.1', family: 4 },
      ]);
    else callback(null, '127.0.0.1', 4);
  };
  let dest: Awaited<ReturnType<typeof destination>>;
  let proxy: OutboundProxy;
  let port: number;

  before(async () => {
    dest = await destination();
    proxy = new OutboundProxy({
      listen: { host: '127.0.0.1', port: 0 },
      logger,
      metrics,
      localAddresses: () => ['127.0.0.1'],
      lookup,
      timeoutMs: 2_000,
    });
    port = (await proxy.start()).port;
  });

  after(async () => {
    await proxy.stop(1_000);
    dest.server.close();
  });

  test('forwards by Host: method, path, body and the app’s headers; hop-by-hop removed; nothing added', async () => {
    const r = await send(
      port,
      '/v1/orders?id=7',
      {
        host: `127.0.0.1:${dest.port}`,
        'content-type': 'application/json',
        connection: 'keep-alive, x-hop',
        'x-hop': 'drop me',
        'keep-alive': 'timeout=1',
        'proxy-authorization': 'Basic x',
        'x-request-id': 'app-id-1',
      },
      { method: 'POST', body: '{"a":1}' },
    );
    assert.equal(r.status, 201);
    assert.equal(r.body, 'seen /v1/orders?id=7');
    assert.equal(r.headers['x-dest'], 'yes');
    assert.notEqual(r.headers['keep-alive'], 'timeout=7');
    const s = dest.seen.at(-1);
    assert.ok(s);
    assert.deepEqual([s.method, s.url, s.body], ['POST', '/v1/orders?id=7', '{"a":1}']);
    assert.equal(s.headers.host, `127.0.0.1:${dest.port}`);
    assert.equal(s.headers['x-request-id'], 'app-id-1');
    assert.equal(s.headers['content-type'], 'application/json');
    for (const h of ['x-hop', 'proxy-authorization', 'x-forwarded-for', 'forwarded', 'via'])
      assert.equal(s.headers[h], undefined, h);
  });

  test('absolute-form targets name the destination too', async () => {
    const r = await send(port, `http://127.0.0.1:${dest.port}/abs?q=1`, { host: 'elsewhere:1' });
    assert.equal(r.status, 201);
    assert.equal(dest.seen.at(-1)?.url, '/abs?q=1');
  });

  test('keeps connections to a destination alive across requests', async () => {
    const before = dest.connections();
    for (let i = 0; i < 3; i++) await send(port, `/k${i}`, { host: `127.0.0.1:${dest.port}` });
    assert.ok(dest.connections() - before <= 1, `${dest.connections() - before} new connections`);
  });

  test('an unreachable destination: 502 problem+json', async () => {
    const closed = createServer();
    closed.listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const deadPort = (closed.address() as AddressInfo).port;
    closed.close();
    const r = await send(port, '/x', { host: `127.0.0.1:${deadPort}` });
    assert.equal(r.status, 502);
    assert.equal(r.headers['content-type'], 'application/problem+json');
    assert.equal(JSON.parse(r.body).code, 'ERR_OUTBOUND_UNREACHABLE');
  });

  test('a name that does not resolve: 502', async () => {
    const r = await send(port, '/x', { host: 'nowhere.test:80' });
    assert.equal(r.status, 502);
  });

  test('no Host (HTTP/1.0) or an invalid one: 400', async () => {
    const raw = await rawExchange(port, 'GET /x HTTP/1.0\r\n\r\n');
    assert.equal(statusOf(raw.text), 400);
    assert.match(raw.text, /ERR_OUTBOUND_DESTINATION/);
    const bad = await send(port, '/x', { host: 'a b:80' });
    assert.equal(bad.status, 400);
    assert.equal(JSON.parse(bad.body).code, 'ERR_OUTBOUND_DESTINATION');
  });

  test('never loops back into itself: its own port on a local address, or a connection it opened', async () => {
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `0.0.0.0:${port}`, `self.test:${port}`]) {
      const r = await send(port, '/loop', { host });
      assert.equal(r.status, 508, host);
      assert.equal(JSON.parse(r.body).code, 'ERR_OUTBOUND_LOOP', host);
    }
  });

  test('Expect: 100-continue is answered by the proxy and not sent on', async () => {
    const r = await send(
      port,
      '/continue',
      { host: `127.0.0.1:${dest.port}`, expect: '100-continue', 'content-length': '2' },
      { method: 'PUT', body: 'ok' },
    );
    assert.equal(r.status, 201);
    const s = dest.seen.at(-1);
    assert.equal(s?.headers.expect, undefined);
    assert.equal(s?.body, 'ok');
  });

  test('upgrades are forwarded and spliced', async () => {
    const c = await openRawClient(port);
    c.socket.write(
      `GET /ws HTTP/1.1\r\nhost: 127.0.0.1:${dest.port}\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\n`,
    );
    await c.waitFor(/^HTTP\/1\.1 101 /);
    c.socket.write('ping');
    await c.waitFor(/\r\n\r\nping$/);
    c.socket.destroy();
    assert.equal(dest.seen.at(-1)?.url, '/ws');
    assert.equal(dest.seen.at(-1)?.headers.upgrade, 'echo');
  });

  test('bytes that are not HTTP: 400, counted, one warning', async () => {
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => {});
    socket.write(Buffer.from([0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5]));
    socket.resume();
    await once(socket, 'close');
    assert.equal(
      logger.messages('outbound connection is not HTTP/1.1: exclude its port or CIDR from capture').length,
      1,
    );
    assert.match(metrics.render(), /tollgate_outbound_not_http_total 1/);
  });

  test('one access line per request and the status counter', () => {
    const lines = logger.messages('outbound request');
    const first = lines[0]?.fields;
    assert.deepEqual(
      { ...first, latencyMs: 0 },
      {
        event: 'tollgate.outbound',
        method: 'POST',
        destination: `127.0.0.1:${dest.port}`,
        mtls: false,
        path: '/v1/orders',
        status: '201',
        latencyMs: 0,
      },
    );
    const text = metrics.render();
    assert.match(text, /tollgate_outbound_requests_total\{status="201",mtls="false"\} \d+/);
    // self.test counts twice: the request that came back (refused) and the one that carried it (relayed).
    assert.match(text, /tollgate_outbound_requests_total\{status="508",mtls="false"\} 5/);
    assert.match(text, /tollgate_outbound_requests_total\{status="502",mtls="false"\} 2/);
  });
});
