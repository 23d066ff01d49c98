import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import * as undici from 'undici';
import { Agent, buildConnector, Pool } from './undici-core.ts';

test('the deep imports are the classes undici exports', () => {
  assert.equal(Pool, undici.Pool);
  assert.equal(Agent, undici.Agent);
  assert.equal(buildConnector, undici.buildConnector);
});

test('a Pool from the deep import dispatches a request', async () => {
  const server = createServer((_req, res) => res.end('ok'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const pool = new Pool(`http://127.0.0.1:${port}`);
  try {
    const { statusCode, body } = await pool.request({ method: 'GET', path: '/' });
    assert.equal(statusCode, 200);
    assert.equal(await body.text(), 'ok');
  } finally {
    await pool.close();
    server.close();
  }
});
