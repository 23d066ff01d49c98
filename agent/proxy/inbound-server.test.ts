/**
 * The inbound server on its own: 100-continue hand-off, answers to bytes that
 * never became a request, CONNECT and h2c, a throwing handler, and drain.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { PolicyError } from '../errors.ts';
import {
  createInboundServer,
  drainServer,
  type InboundControl,
  type InboundServerOptions,
} from './inbound-server.ts';
import { sendProblem } from './problem-response.ts';
import { bodyOf, openRawClient, rawExchange, statusOf } from './test-clients.ts';
import { closeServer, listen } from './test-support.ts';

type Handler = (req: IncomingMessage, res: ServerResponse, ctl: InboundControl) => void;

const servers: Server[] = [];
after(async () => {
  for (const server of servers) if (server.listening) await closeServer(server);
});

async function start(onRequest: Handler, extra: Partial<InboundServerOptions> = {}) {
  let upgrades = 0;
  const server = createInboundServer({
    ...extra,
    onRequest,
    onUpgrade(_req, socket) {
      upgrades += 1;
      socket.destroy();
    },
  });
  servers.push(server);
  const port = await listen(server);
  return { server, port, upgrades: () => upgrades };
}

/** Reads the body and answers 200 with it. */
function echoBody(req: IncomingMessage, res: ServerResponse): void {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => res.end(`got:${Buffer.concat(chunks).toString()}`));
}

const expectHead = 'POST /up HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n';

describe('Expect: 100-continue', () => {
  test('no 100 until ctl.continue(); then the body flows', async () => {
    let control: InboundControl | undefined;
    const { port } = await start((req, res, ctl) => {
      control = ctl;
      echoBody(req, res);
    });
    const client = await openRawClient(port);
    client.socket.write(expectHead);
    while (control === undefined) await sleep(5);
    assert.equal(control.expectsContinue, true);
    await sleep(100);
    assert.equal(client.text(), '', 'nothing is sent before the pipeline allows the request');
    control.continue();
    control.continue();
    await client.waitFor(/^HTTP\/1\.1 100 Continue\r\n\r\n$/);
    client.socket.write('hello');
    const text = await client.waitFor(/got:hello$/);
    assert.equal(text.match(/100 Continue/g)?.length, 1);
    assert.doesNotMatch(text.slice(text.indexOf('200 OK')), /connection: close/i);
    client.socket.destroy();
  });

  test('a request denied before continue gets the final status, no 100, and the connection closes', async () => {
    const { port } = await start((req, res) => {
      sendProblem(req, res, new PolicyError('ERR_AUTHZ_DENIED', 'no'), 'rid');
    });
    const answer = await rawExchange(port, expectHead);
    assert.equal(statusOf(answer.text), 403);
    assert.doesNotMatch(answer.text, /100 Continue/);
    assert.match(answer.text, /\r\nconnection: close\r\n/i);
    assert.equal(answer.closed, true);
  });

  test('a plain request has expectsContinue false and continue() is a no-op', async () => {
    const { port } = await start((req, res, ctl) => {
      assert.equal(ctl.expectsContinue, false);
      ctl.continue();
      echoBody(req, res);
    });
    const answer = await rawExchange(port, 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi', 300);
    assert.doesNotMatch(answer.text, /100 Continue/);
    assert.match(answer.text, /got:hi$/);
  });
});

describe('bytes that never became a request', () => {
  test('garbage → 400 problem+json, closed', async () => {
    const { port } = await start(echoBody);
    const answer = await rawExchange(port, 'HELLO\r\n\r\n');
    assert.equal(statusOf(answer.text), 400);
    assert.match(answer.text, /connection: close/i);
    const problem = JSON.parse(bodyOf(answer.text));
    assert.equal(problem.code, 'ERR_REQUEST_MALFORMED');
    assert.equal(typeof problem.requestId, 'string');
    assert.equal(answer.closed, true);
  });

  test('a head not finished in time → 408, closed', async () => {
    const { port } = await start(echoBody, { headersTimeoutMs: 150, requestTimeoutMs: 300 });
    const answer = await rawExchange(port, 'GET / HTTP/1.1\r\nHost: a\r\n', 2_000);
    assert.equal(statusOf(answer.text), 408);
    assert.equal(JSON.parse(bodyOf(answer.text)).status, 408);
    assert.equal(answer.closed, true);
  });

  test('an oversized head → 431, closed', async () => {
    const { port } = await start(echoBody, { maxHeaderSize: 1024 });
    const answer = await rawExchange(port, `GET / HTTP/1.1\r\nHost: a\r\nX-Big: ${'x'.repeat(2048)}\r\n\r\n`);
    assert.equal(statusOf(answer.text), 431);
    assert.equal(answer.closed, true);
  });

  test('a reset connection gets nothing and does not crash the server', async () => {
    const { port } = await start(echoBody);
    const socket = connect(port, '127.0.0.1', () => {
      socket.write('GET / HTTP/1.1\r\nHo');
      socket.resetAndDestroy();
    });
    await sleep(50);
    const answer = await rawExchange(port, 'GET / HTTP/1.1\r\nHost: a\r\n\r\n', 300);
    assert.equal(statusOf(answer.text), 200);
  });
});

describe('methods and protocols', () => {
  test('CONNECT → 405 with Allow, closed', async () => {
    const { port } = await start(echoBody);
    const answer = await rawExchange(
      port,
      'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n',
    );
    assert.equal(statusOf(answer.text), 405);
    assert.match(answer.text, /\r\nallow: /i);
    assert.equal(answer.closed, true);
  });

  test('Upgrade: h2c is served as a plain request; websocket goes to onUpgrade', async () => {
    const seen: string[] = [];
    const { port, upgrades } = await start((req, res) => {
      seen.push(req.headers.upgrade ?? '');
      res.end('plain');
    });
    const h2c =
      'GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n';
    const answer = await rawExchange(port, h2c, 300);
    assert.equal(statusOf(answer.text), 200);
    assert.deepEqual(seen, ['h2c']);
    const ws = 'GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n';
    await rawExchange(port, ws, 300);
    assert.equal(upgrades(), 1);
  });

  test('a handler that throws → 500 problem+json', async () => {
    const { port } = await start(() => {
      throw new Error('boom');
    });
    const answer = await rawExchange(port, 'GET / HTTP/1.1\r\nHost: a\r\nX-Request-Id: trace-1\r\n\r\n', 300);
    assert.equal(statusOf(answer.text), 500);
    assert.equal(JSON.parse(bodyOf(answer.text)).requestId, 'trace-1');
  });
});

describe('drainServer', () => {
  test('lets an in-flight request finish, closes idle connections, refuses new ones', async () => {
    let arrived = false;
    const { server, port } = await start((req, res) => {
      if (req.url === '/slow') {
        arrived = true;
        setTimeout(() => res.end('slow done'), 300);
      } else {
        res.end('fast');
      }
    });
    const idle = await openRawClient(port);
    idle.socket.write('GET /fast HTTP/1.1\r\nHost: a\r\n\r\n');
    await idle.waitFor(/fast$/);
    const busy = await openRawClient(port);
    busy.socket.write('GET /slow HTTP/1.1\r\nHost: a\r\n\r\n');
    while (!arrived) await sleep(5);
    const started = Date.now();
    const drained = drainServer(server, { timeoutMs: 5_000 });
    await idle.closed;
    const refused = await new Promise<string>((resolve) => {
      const probe = connect(port, '127.0.0.1');
      probe.on('connect', () => resolve('connected'));
      probe.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
    });
    assert.equal(refused, 'ECONNREFUSED');
    const text = await busy.waitFor(/slow done$/);
    assert.match(text, /^HTTP\/1\.1 200/);
    assert.match(text, /connection: close/i);
    await drained;
    await busy.closed;
    assert.ok(Date.now() - started < 2_000);
  });

  test('cuts what is still running at the timeout', async () => {
    let arrived = false;
    const { server, port } = await start(() => {
      arrived = true;
    });
    const stuck = await openRawClient(port);
    stuck.socket.write('GET /never HTTP/1.1\r\nHost: a\r\n\r\n');
    while (!arrived) await sleep(5);
    const started = Date.now();
    await drainServer(server, { timeoutMs: 200 });
    await stuck.closed;
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 150 && elapsed < 1_500, `drained in ${elapsed} ms`);
    assert.equal(stuck.text(), '');
  });
});
