/**
 * mTLS origination by the outbound proxy, with real certificates: a meshed
 * destination is the agent's own TLS-detecting inbound listener (it verifies
 * the client chain and reads the SPIFFE ID), a plain one an HTTP server.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo, LookupFunction, Server as NetServer } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { createCa, issueCertificate, type TestCa } from '../../test/support/certs.ts';
import { RecordingLogger } from '../../test/support/recording-logger.ts';
import { type IdentityProvider, identityFromPem, type LoadedIdentity } from '../identity/tls-identity.ts';
import { detectingServer, peerOf } from '../proxy/connection-detect.ts';
import { Metrics } from '../telemetry/metrics.ts';
import { MeshDirectory } from './mesh.ts';
import { OutboundProxy } from './outbound-proxy.ts';

const TD = 'spiffe://cluster.local';
const CALLER = `${TD}/ns/shop/sa/frontend`;
const ORDERS = `${TD}/ns/shop/sa/orders`;
const BILLING = `${TD}/ns/shop/sa/billing`;

interface Seen {
  peer: string | null;
  hash: string | null;
  url: string;
  host: string | undefined;
}

/** A destination as a meshed pod's agent listens: TLS or plaintext on one port, the peer recorded. */
async function meshedDestination(identity: () => LoadedIdentity): Promise<{
  server: NetServer;
  port: number;
  seen: Seen[];
}> {
  const seen: Seen[] = [];
  const http = createServer((req, res) => {
    const peer = peerOf(req.socket);
    seen.push({
      peer: peer?.id ?? null,
      hash: peer?.hash ?? null,
      url: req.url ?? '',
      host: req.headers.host,
    });
    if (req.url === '/close') res.setHeader('connection', 'close');
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`hello ${peer?.id ?? 'plaintext'}`);
  });
  http.on('upgrade', (req, socket) => {
    seen.push({ peer: peerOf(socket)?.id ?? null, hash: null, url: req.url ?? '', host: req.headers.host });
    socket.write('HTTP/1.1 101 Switching Protocols\r\nupgrade: echo\r\nconnection: upgrade\r\n\r\n');
    socket.pipe(socket);
  });
  const server = detectingServer(http, {
    context: () => identity().context,
    anchors: () => identity().anchors,
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port, seen };
}

interface Reply {
  status: number;
  body: string;
}

function send(proxyPort: number, host: string, path = '/x'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port: proxyPort, path, headers: { host }, agent: false },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          body += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

async function workload(ca: TestCa, trust: TestCa, uri: string): Promise<LoadedIdentity> {
  const pair = await issueCertificate(ca, { uris: [uri], usages: 'both' });
  return identityFromPem({ cert: pair.cert, key: pair.key, trustBundle: trust.cert });
}

describe('OutboundProxy: mTLS to meshed destinations', () => {
  const logger = new RecordingLogger();
  const metrics = new Metrics();
  const mesh = new MeshDirectory();
  const closers: (() => void)[] = [];
  let caller: { current: LoadedIdentity | null; close(): void };
  let orders: Awaited<ReturnType<typeof meshedDestination>>;
  let impostor: Awaited<ReturnType<typeof meshedDestination>>;
  let foreign: Awaited<ReturnType<typeof meshedDestination>>;
  let plain: { server: Server; port: number; tls: boolean[] };
  let proxy: OutboundProxy;
  let port: number;
  let ca: TestCa;

  /** `orders.test` resolves to 127.0.0.1. */
  const lookup: LookupFunction = (hostname, options, callback) => {
    if (hostname !== 'orders.test') return callback(new Error(`no such name ${hostname}`), '', 4);
    if (options.all)
      (callback as unknown as (e: null, a: { address: string; family: number }[]) => void)(null, [
        { address: '127.0.0.1', family: 4 },
      ]);
    else callback(null, '127.0.0.1', 4);
  };

  before(async () => {
    ca = await createCa({ commonName: 'mesh' });
    const otherCa = await createCa({ commonName: 'elsewhere' });
    caller = { current: await workload(ca, ca, CALLER), close() {} };
    const ordersId = await workload(ca, ca, ORDERS);
    orders = await meshedDestination(() => ordersId);
    // A pod of the mesh whose identity is not the one listed for its address.
    const billingId = await workload(ca, ca, BILLING);
    impostor = await meshedDestination(() => billingId);
    // The right name, from a CA this mesh does not trust.
    const foreignId = await workload(otherCa, ca, ORDERS);
    foreign = await meshedDestination(() => foreignId);
    const tls: boolean[] = [];
    const plainServer = createServer((req, res) => {
      tls.push('encrypted' in req.socket);
      res.end('plain');
    });
    plainServer.listen(0, '127.0.0.1');
    await once(plainServer, 'listening');
    plain = { server: plainServer, port: (plainServer.address() as AddressInfo).port, tls };
    mesh.replace([
      {
        addresses: ['127.0.0.1'],
        ports: [orders.port, foreign.port],
        excludedPorts: [],
        identities: [ORDERS],
      },
      { addresses: ['127.0.0.1'], ports: [impostor.port], excludedPorts: [], identities: [ORDERS] },
    ]);
    proxy = new OutboundProxy({
      listen: { host: '127.0.0.1', port: 0 },
      logger,
      metrics,
      lookup,
      mesh,
      identity: caller as IdentityProvider,
    });
    port = (await proxy.start()).port;
    closers.push(
      () => orders.server.close(),
      () => impostor.server.close(),
      () => foreign.server.close(),
    );
    closers.push(() => plain.server.close());
  });

  after(async () => {
    await proxy.stop(1000);
    for (const close of closers) close();
  });

  test('a meshed destination gets mTLS with this sidecar’s identity, named by address or by name', async () => {
    const before = orders.seen.length;
    const byAddress = await send(port, `127.0.0.1:${orders.port}`, '/by-address');
    assert.deepEqual(byAddress, { status: 200, body: `hello ${CALLER}` });
    const byName = await send(port, `orders.test:${orders.port}`, '/by-name?q=1');
    assert.deepEqual(byName, { status: 200, body: `hello ${CALLER}` });
    const seen = orders.seen.slice(before);
    assert.deepEqual(
      seen.map((s) => [s.peer, s.url, s.host]),
      [
        [CALLER, '/by-address', `127.0.0.1:${orders.port}`],
        [CALLER, '/by-name?q=1', `orders.test:${orders.port}`],
      ],
    );
    const line = logger.entries.findLast((e) => e.msg === 'outbound request');
    assert.equal(line?.fields.mtls, true);
    assert.match(metrics.render(), /tollgate_outbound_requests_total\{status="200",mtls="true"\} [1-9]/);
  });

  test('a destination that proves another identity is refused before any request byte (502)', async () => {
    const reply = await send(port, `127.0.0.1:${impostor.port}`);
    assert.equal(reply.status, 502);
    assert.equal(JSON.parse(reply.body).code, 'ERR_OUTBOUND_MTLS');
    assert.doesNotMatch(reply.body, /spiffe:/, 'the problem names no identity');
    assert.equal(impostor.seen.length, 0);
    const warning = logger.entries.findLast((e) => e.msg === 'outbound mTLS refused');
    assert.match(String(warning?.fields.error), /presented spiffe:\/\/cluster\.local\/ns\/shop\/sa\/billing/);
  });

  test('a destination whose certificate does not chain to the trust bundle is refused (502)', async () => {
    const reply = await send(port, `127.0.0.1:${foreign.port}`);
    assert.equal(reply.status, 502);
    assert.equal(JSON.parse(reply.body).code, 'ERR_OUTBOUND_MTLS');
    assert.equal(foreign.seen.length, 0);
  });

  test('a destination outside the mesh is passed through in plaintext', async () => {
    const reply = await send(port, `127.0.0.1:${plain.port}`);
    assert.deepEqual(reply, { status: 200, body: 'plain' });
    assert.deepEqual(plain.tls, [false]);
    assert.match(metrics.render(), /tollgate_outbound_requests_total\{status="200",mtls="false"\} [1-9]/);
  });

  test('a renewed certificate serves the next connection', async () => {
    const first = await send(port, `127.0.0.1:${orders.port}`, '/close');
    assert.equal(first.status, 200);
    const oldHash = orders.seen.at(-1)?.hash;
    caller.current = await workload(ca, ca, CALLER);
    const second = await send(port, `127.0.0.1:${orders.port}`, '/after-renewal');
    assert.equal(second.status, 200);
    const newHash = orders.seen.at(-1)?.hash;
    assert.ok(oldHash && newHash);
    assert.notEqual(newHash, oldHash);
  });

  test('an upgrade to a meshed destination goes over mTLS too', async () => {
    const { connect } = await import('node:net');
    const socket = connect(port, '127.0.0.1');
    await once(socket, 'connect');
    socket.write(
      `GET /ws HTTP/1.1\r\nhost: 127.0.0.1:${orders.port}\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\n`,
    );
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (c: string) => {
      text += c;
    });
    while (!text.includes('\r\n\r\n')) await once(socket, 'data');
    assert.match(text, /^HTTP\/1\.1 101/);
    socket.write('ping');
    while (!text.endsWith('ping')) await once(socket, 'data');
    socket.destroy();
    assert.deepEqual(
      orders.seen.filter((s) => s.url === '/ws').map((s) => s.peer),
      [CALLER],
    );
  });

  test('without a certificate yet, a meshed destination is refused (503) rather than sent plaintext', async () => {
    const held = caller.current;
    caller.current = null;
    try {
      const before = orders.seen.length;
      const reply = await send(port, `127.0.0.1:${orders.port}`, '/no-identity');
      assert.equal(reply.status, 503);
      assert.equal(JSON.parse(reply.body).code, 'ERR_OUTBOUND_NO_IDENTITY');
      assert.equal(orders.seen.length, before);
    } finally {
      caller.current = held;
    }
  });

  test('with no identity configured (mTLS off), a meshed destination gets plaintext', async () => {
    const noTls = new OutboundProxy({ listen: { host: '127.0.0.1', port: 0 }, logger, metrics, mesh });
    const p = (await noTls.start()).port;
    try {
      const reply = await send(p, `127.0.0.1:${orders.port}`, '/plaintext');
      assert.deepEqual(reply, { status: 200, body: 'hello plaintext' });
    } finally {
      await noTls.stop(1000);
    }
  });
});
