/**
 * Protocol behaviour of the real agent process: Upgrade (WebSocket) requests go
 * through the full policy before any 101, `Expect: 100-continue` is answered
 * only once a request is allowed, tokens from a real OIDC provider
 * (oidc-provider) are enforced, and SIGTERM drains in-flight requests.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { type AddressInfo, connect, createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { send, startAgent } from '../support/agent-process.ts';
import { type OidcIssuer, startOidcIssuer } from '../support/oidc-issuer.ts';

interface App {
  server: Server;
  port: number;
  upgrades: string[];
  requests: string[];
}

/** An app that echoes bytes over upgraded connections and answers /slow after 400 ms. */
function startApp(): Promise<App> {
  const app: App = { server: createServer(), port: 0, upgrades: [], requests: [] };
  app.server.on('request', (req, res) => {
    app.requests.push(`${req.method} ${req.url}`);
    const delay = req.url === '/slow' ? 400 : 0;
    req.resume();
    req.on('end', () => setTimeout(() => res.end('done'), delay));
  });
  app.server.on('upgrade', (req, socket) => {
    app.upgrades.push(req.url ?? '');
    socket.write('HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\r\n');
    socket.pipe(socket);
  });
  return new Promise((resolve) =>
    app.server.listen(0, '127.0.0.1', () => {
      app.port = (app.server.address() as AddressInfo).port;
      resolve(app);
    }),
  );
}

function policy(oidc: OidcIssuer): string {
  return `apiVersion: tollgate.dev/v1alpha1
kind: ApiPolicy
metadata: {name: proto}
spec:
  jwt:
    - name: oidc
      issuer: ${oidc.issuer}
      jwksUri: ${oidc.jwksUri}
  routes:
    - {name: ws-public, methods: [GET], path: /ws, public: true}
    - {name: ws-private, methods: [GET], path: /ws-private, allow: [{jwt: oidc}]}
    - {name: upload, methods: [POST], path: /upload, allow: [{jwt: oidc}]}
    - {name: scoped, methods: [GET], path: /scoped, allow: [{scopes: [orders:write]}]}
    - {name: slow, methods: [GET], path: /slow, public: true}
`;
}

/** Sends raw bytes and collects what comes back until the socket closes or `until` matches. */
function raw(port: number, text: string, until: RegExp, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let got = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(got);
    }, timeoutMs);
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      got += d;
      if (until.test(got)) {
        clearTimeout(timer);
        socket.destroy();
        resolve(got);
      }
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(got);
    });
    socket.on('error', reject);
    socket.write(text);
  });
}

describe('tollgate agent: protocols', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-proto-'));
  let oidc: OidcIssuer;
  let app: App;
  let agent: Awaited<ReturnType<typeof startAgent>>;

  before(async () => {
    oidc = await startOidcIssuer();
    app = await startApp();
    writeFileSync(join(dir, 'policy.yaml'), policy(oidc));
    agent = await startAgent(join(dir, 'policy.yaml'), app.port);
  });

  after(async () => {
    if (agent.proc.exitCode === null) {
      agent.proc.kill('SIGKILL');
      await new Promise((r) => agent.proc.once('exit', r));
    }
    app?.server.close();
    await oidc?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const upgrade = (path: string, extra = '') =>
    `GET ${path} HTTP/1.1\r\nhost: x\r\nconnection: Upgrade\r\nupgrade: websocket\r\n${extra}\r\n`;

  test('an allowed Upgrade gets the 101 and a working tunnel', async () => {
    const socket = connect(agent.port, '127.0.0.1');
    const reply = await new Promise<string>((resolve, reject) => {
      let got = '';
      socket.setEncoding('utf8');
      socket.on('error', reject);
      socket.on('data', (d: string) => {
        got += d;
        if (got.includes('\r\n\r\n') && !got.includes('ping')) socket.write('ping');
        if (got.endsWith('ping')) resolve(got);
      });
      socket.write(upgrade('/ws'));
    });
    socket.destroy();
    assert.match(reply, /^HTTP\/1\.1 101 /);
    assert.ok(reply.endsWith('ping'), 'bytes flow both ways through the tunnel');
    assert.deepEqual(app.upgrades, ['/ws']);
  });

  test('a denied Upgrade gets the denial, never a 101, and the app never sees it', async () => {
    const reply = await raw(agent.port, upgrade('/ws-private'), /\}$/);
    assert.match(reply, /^HTTP\/1\.1 401 /);
    assert.match(reply, /ERR_AUTHN_REQUIRED/);
    assert.deepEqual(app.upgrades, ['/ws']);
  });

  test('Expect: 100-continue: a denied request gets its final status and no 100', async () => {
    const before = app.requests.length;
    const head = 'POST /upload HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\nexpect: 100-continue\r\n\r\n';
    const reply = await raw(agent.port, head, /\}$/);
    assert.doesNotMatch(reply, /100 Continue/);
    assert.match(reply, /^HTTP\/1\.1 401 /);
    assert.equal(app.requests.length, before);
  });

  test('Expect: 100-continue: an allowed request gets the 100, then the answer', async () => {
    const token = await oidc.getToken({ scope: 'orders:read' });
    const socket = connect(agent.port, '127.0.0.1');
    const reply = await new Promise<string>((resolve, reject) => {
      let got = '';
      socket.setEncoding('utf8');
      socket.on('error', reject);
      socket.on('data', (d: string) => {
        got += d;
        if (got.startsWith('HTTP/1.1 100') && !got.includes('hello')) {
          socket.write('hello');
          got += '|hello|';
        }
        if (/done$/.test(got)) resolve(got);
      });
      socket.write(
        `POST /upload HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${token}\r\ncontent-length: 5\r\nexpect: 100-continue\r\n\r\n`,
      );
    });
    socket.destroy();
    assert.match(reply, /^HTTP\/1\.1 100 Continue\r\n\r\n\|hello\|HTTP\/1\.1 200 /);
    assert.equal(app.requests.at(-1), 'POST /upload');
  });

  test('tokens from a real OIDC provider: scopes decide', async () => {
    const reader = await oidc.getToken({ scope: 'orders:read' });
    const writer = await oidc.getToken({ scope: 'orders:read orders:write' });
    assert.equal((await send(agent.port, '/scoped', { authorization: `Bearer ${reader}` })).status, 403);
    assert.equal((await send(agent.port, '/scoped', { authorization: `Bearer ${writer}` })).status, 200);
  });

  test('SIGTERM drains: an in-flight request completes, then the agent exits 0', async () => {
    const inflight = send(agent.port, '/slow');
    await new Promise((r) => setTimeout(r, 100));
    const exited = new Promise<number | null>((r) => agent.proc.once('exit', (code) => r(code)));
    agent.proc.kill('SIGTERM');
    const r = await inflight;
    assert.equal(r.status, 200);
    assert.equal(r.body, 'done');
    assert.equal(await exited, 0);
  });
});

describe('tollgate agent: a broken app', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-broken-'));
  const agents: Awaited<ReturnType<typeof startAgent>>[] = [];
  const file = join(dir, 'policy.yaml');
  writeFileSync(
    file,
    'apiVersion: tollgate.dev/v1alpha1\nkind: ApiPolicy\nmetadata: {name: p}\nspec:\n  routes:\n    - {name: any, path: /**, public: true}\n',
  );

  after(async () => {
    for (const a of agents) {
      a.proc.kill('SIGKILL');
      await new Promise((r) => a.proc.once('exit', r));
    }
    rmSync(dir, { recursive: true, force: true });
  });

  test('an app that is not listening → 503 problem+json', async () => {
    const closed = createServer();
    const port = await new Promise<number>((r) =>
      closed.listen(0, '127.0.0.1', () => r((closed.address() as AddressInfo).port)),
    );
    await new Promise((r) => closed.close(r));
    const agent = await startAgent(file, port);
    agents.push(agent);
    const r = await send(agent.port, '/x');
    assert.equal(r.status, 503);
    assert.equal((JSON.parse(r.body) as { code: string }).code, 'ERR_UPSTREAM_UNAVAILABLE');
    assert.doesNotMatch(r.body, new RegExp(`127\\.0\\.0\\.1|${port}`), 'no internal address in the error');
  });

  test('an app that answers garbage → 502 problem+json', async () => {
    const garbage = createNetServer((socket) => {
      socket.once('data', () => socket.end('NOT HTTP AT ALL\r\n\r\n'));
    });
    const port = await new Promise<number>((r) =>
      garbage.listen(0, '127.0.0.1', () => r((garbage.address() as AddressInfo).port)),
    );
    const agent = await startAgent(file, port);
    agents.push(agent);
    const r = await send(agent.port, '/x');
    garbage.close();
    assert.equal(r.status, 502);
    assert.equal((JSON.parse(r.body) as { code: string }).code, 'ERR_UPSTREAM_FAILED');
  });
});
