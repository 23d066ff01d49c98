/**
 * The real `tollgate agent --outbound` process: the app's outbound HTTP, as
 * the capture rules would redirect it, forwarded by its Host header to a real
 * destination; unreachable destinations, loops and the access log. (The
 * redirect itself is exercised in test/e2e-netns.)
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type AgentProcess, eventually, send, startAgent, startUpstream } from '../support/agent-process.ts';

const POLICY = `apiVersion: tollgate.dev/v1alpha1
kind: ApiPolicy
metadata: {name: app, namespace: shop}
spec:
  routes:
    - {name: hello, methods: [GET], path: /hello, public: true}
`;

describe('tollgate agent --outbound', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-outbound-'));
  let app: Awaited<ReturnType<typeof startUpstream>>;
  let destination: Awaited<ReturnType<typeof startUpstream>>;
  let agent: AgentProcess;
  let outbound: number;

  before(async () => {
    app = await startUpstream();
    destination = await startUpstream();
    writeFileSync(join(dir, 'policy.yaml'), POLICY);
    agent = await startAgent(join(dir, 'policy.yaml'), app.port, ['--outbound', '127.0.0.1:0']);
    assert.ok(agent.outbound, agent.output());
    outbound = agent.outbound;
  });

  after(async () => {
    agent?.proc.kill('SIGTERM');
    if (agent && agent.proc.exitCode === null) await new Promise((r) => agent.proc.once('exit', r));
    app?.server.close();
    destination?.server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('forwards the app’s request to the destination its Host header names, unchanged', async () => {
    const r = await send(outbound, '/v1/orders/7?full=1', {
      host: `127.0.0.1:${destination.port}`,
      'x-request-id': 'out-1',
      authorization: 'Bearer app-token',
    });
    assert.equal(r.status, 200, r.body);
    assert.deepEqual(JSON.parse(r.body), { ok: true, url: '/v1/orders/7?full=1' });
    const seen = destination.seen.at(-1);
    assert.equal(seen?.url, '/v1/orders/7?full=1');
    assert.equal(seen?.headers.host, `127.0.0.1:${destination.port}`);
    assert.equal(seen?.headers.authorization, 'Bearer app-token');
    assert.equal(seen?.headers['x-request-id'], 'out-1');
    assert.equal(seen?.headers['x-forwarded-for'], undefined);
    // No policy outbound: a path the inbound policy does not declare goes through.
    assert.equal(app.seen.length, 0);
  });

  test('the access log and the metrics show each outbound request', async () => {
    await eventually(async () => agent.output().includes('"msg":"outbound request"'));
    const line = agent
      .output()
      .split('\n')
      .find((l) => l.includes('"msg":"outbound request"'));
    const fields = JSON.parse(line ?? '{}') as Record<string, unknown>;
    assert.equal(fields.destination, `127.0.0.1:${destination.port}`);
    assert.equal(fields.path, '/v1/orders/7');
    assert.equal(fields.status, '200');
    const metrics = await send(agent.admin, '/metrics');
    assert.match(metrics.body, /tollgate_outbound_requests_total\{status="200",mtls="false"\} [1-9]/);
  });

  test('an unreachable destination is a 502 problem', async () => {
    const gone = await startUpstream();
    gone.server.close();
    const r = await send(outbound, '/x', { host: `127.0.0.1:${gone.port}` });
    assert.equal(r.status, 502);
    assert.equal(r.headers['content-type'], 'application/problem+json');
    assert.equal(JSON.parse(r.body).code, 'ERR_OUTBOUND_UNREACHABLE');
  });

  test('its own listener as destination is refused (508), never looped', async () => {
    const r = await send(outbound, '/x', { host: `127.0.0.1:${outbound}` });
    assert.equal(r.status, 508);
    assert.equal(JSON.parse(r.body).code, 'ERR_OUTBOUND_LOOP');
  });

  test('an invalid Host is a 400', async () => {
    const r = await send(outbound, '/x', { host: 'bad host' });
    assert.equal(r.status, 400);
  });

  test('inbound keeps enforcing the policy beside it', async () => {
    assert.equal((await send(agent.port, '/hello')).status, 200);
    assert.equal((await send(agent.port, '/other')).status, 404);
  });

  test('without --outbound there is no outbound listener', async () => {
    const plain = await startAgent(join(dir, 'policy.yaml'), app.port);
    try {
      assert.equal(plain.outbound, undefined);
      assert.doesNotMatch(plain.output(), /"outbound":/);
    } finally {
      plain.proc.kill('SIGTERM');
      await new Promise((r) => plain.proc.once('exit', r));
    }
  });
});
