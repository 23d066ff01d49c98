/**
 * The forwarder's body rewrite (response minimization's transport): the body
 * is buffered and replaced, relayed unchanged past the limit (what was
 * buffered first), a cut upstream cuts the client without a retry, and a
 * rewritten head Node refuses becomes a 502.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { after, describe, test } from 'node:test';
import { Forwarder } from './forwarder.ts';
import { sendProblem } from './problem-response.ts';
import type { BodyRewrite, BodyRewriteHook } from './response-relay.ts';
import { send } from './test-clients.ts';
import { closeServer, Fixtures, listen } from './test-support.ts';

const fx = new Fixtures();
after(() => fx.closeAll());

async function proxyWith(upstream: URL, rewriteBody: BodyRewriteHook): Promise<number> {
  const forwarder = new Forwarder({ upstream });
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    forwarder
      .forward(req, res, {
        method: req.method ?? 'GET',
        path: req.url ?? '/',
        headers: {},
        timeoutMs: 5_000,
        rewriteBody,
      })
      .catch((e: unknown) => sendProblem(req, res, e, 'id'));
  });
  const port = await listen(server);
  fx.add(async () => {
    await closeServer(server);
    await forwarder.close();
  });
  return port;
}

function rewriter(
  limit: number,
  replace: BodyRewrite['rewrite'],
): { hook: BodyRewriteHook; overflows: number[] } {
  const overflows: number[] = [];
  return {
    overflows,
    hook: () => ({ limit, overflow: () => overflows.push(1), rewrite: replace }),
  };
}

describe('forwarder body rewrite', () => {
  test('the buffered body is replaced, with the rewrite headers', async () => {
    const upstream = await fx.upstream((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'application/json', 'x-up': '1' });
      res.write('{"a":');
      setTimeout(() => res.end('1}'), 10);
    });
    const r = rewriter(100, async (body, headers) => ({
      headers: { ...headers, 'content-length': '7' },
      body: Buffer.from(body.toString().replace('1', '2')),
    }));
    const port = await proxyWith(upstream.url, r.hook);
    const reply = await send(port);
    assert.equal(reply.status, 200);
    assert.equal(reply.body, '{"a":2}');
    assert.equal(reply.headers['x-up'], '1');
    assert.equal(reply.headers['content-length'], '7');
  });

  test('past the limit the body is relayed unchanged and overflow() is called once', async () => {
    const chunk = Buffer.alloc(64 * 1024, 'x');
    const upstream = await fx.upstream((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'application/json' });
      for (let i = 0; i < 32; i++) res.write(chunk);
      res.end('end');
    });
    const r = rewriter(100_000, async () => assert.fail('not called past the limit'));
    const port = await proxyWith(upstream.url, r.hook);
    const reply = await send(port);
    assert.equal(reply.body.length, 32 * chunk.length + 3);
    assert.ok(reply.body.endsWith('xend'));
    assert.equal(r.overflows.length, 1);
  });

  test('an upstream cut while buffering cuts the client, with no retry', async () => {
    const upstream = await fx.upstream((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' });
      res.write('{"a":');
      setTimeout(() => res.destroy(), 10);
    });
    const r = rewriter(1000, async () => null);
    const port = await proxyWith(upstream.url, r.hook);
    await assert.rejects(send(port));
    assert.equal(upstream.seen.length, 1);
  });

  test('a rewritten head Node refuses answers 502', async () => {
    const upstream = await fx.upstream((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
    const r = rewriter(1000, async () => ({ headers: { 'x-bad': 'a\nb' }, body: Buffer.from('{}') }));
    const port = await proxyWith(upstream.url, r.hook);
    const reply = await send(port);
    assert.equal(reply.status, 502);
  });
});
