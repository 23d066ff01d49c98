/**
 * The real `tollgate agent --operator` process against a real gRPC operator
 * over TLS (test/support/operator-server.ts, certificates from a test CA) and a
 * real upstream: Hello, ACK/NACK, bundle swaps, the empty bundle, fail closed
 * with no bundle ever, fail static from the state directory across an operator
 * outage and an agent restart, refused Hellos with backoff, an operator
 * certificate the agent must not trust — and the token never in a log.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  type AgentProcess,
  eventually,
  type Reply,
  send,
  startAgent,
  startUpstream,
} from '../support/agent-process.ts';
import { createCa, issueCertificate, type PemPair } from '../support/certs.ts';
import { bundleOf, FakeOperator, status } from '../support/operator-server.ts';

const root = new URL('../..', import.meta.url).pathname;
const SERVER_NAME = 'tollgate-operator.tollgate-system.svc';
const TOKEN = 'eyJhbGciOiJSUzI1NiIsImtpZCI6InQxIn0.integration-token-d41d8cd98f00b204.c2lnbmF0dXJlLTE';
const TOKEN2 = 'eyJhbGciOiJSUzI1NiIsImtpZCI6InQxIn0.rotated-token-9e107d9d372bb682.c2lnbmF0dXJlLTI';
const POD = { POD_NAME: 'orders-5d8f7c-x2x9q', POD_NAMESPACE: 'shop' };

/** One ApiPolicy: each route is public, except /v1/admin (allowed only from 10.0.0.0/8: 403 here). */
function policyYaml(routes: string[]): string {
  return `apiVersion: tollgate.dev/v1alpha1
kind: ApiPolicy
metadata: {name: orders, namespace: shop}
spec:
  routes:
${routes.map((r) => `    - {name: ${r}, methods: [GET], path: /v1/${r}, public: true}`).join('\n')}
    - name: admin
      methods: [GET]
      path: /v1/admin
      allow: [{ipBlocks: [10.0.0.0/8]}]
`;
}
const V1 = bundleOf(policyYaml(['orders']));
const V2 = bundleOf(policyYaml(['orders', 'items']));
const V3 = bundleOf(policyYaml(['items']));
const EMPTY = bundleOf('');

interface LogLine {
  msg: string;
  level: number;
  [field: string]: unknown;
}
function logLines(agent: AgentProcess): LogLine[] {
  return agent
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as LogLine);
}

const problem = (r: Reply) => JSON.parse(r.body) as { status: number; code: string; detail: string };

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as { port: number };
  await new Promise((r) => srv.close(r));
  return port;
}

describe('tollgate agent --operator', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-agent-operator-'));
  const caFile = join(dir, 'ca.crt');
  const tokenFile = join(dir, 'token');
  const stateDir = join(dir, 'state');
  let serving: PemPair;
  let foreign: PemPair;
  let misnamed: PemPair;
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  const agents: AgentProcess[] = [];
  const operators: FakeOperator[] = [];
  /** The operator and the agent the scenario (a)–(g) runs against. */
  let op: FakeOperator;
  let agent: AgentProcess;

  before(async () => {
    const ca = await createCa({ commonName: 'tollgate test root' });
    const other = await createCa({ commonName: 'some other root' });
    serving = await issueCertificate(ca, { dnsNames: [SERVER_NAME], usages: 'server' });
    foreign = await issueCertificate(other, { dnsNames: [SERVER_NAME], usages: 'server' });
    misnamed = await issueCertificate(ca, { dnsNames: ['someone-else.example'], usages: 'server' });
    writeFileSync(caFile, ca.cert);
    writeFileSync(tokenFile, `${TOKEN}\n`);
    upstream = await startUpstream();
  });

  after(async () => {
    await Promise.all(agents.map((a) => stop(a)));
    for (const o of operators) o.stop();
    upstream?.server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function operator(serving: PemPair, bundle: typeof V1 | null, port = 0): Promise<FakeOperator> {
    const o = await FakeOperator.start({ serving, bundle, port });
    operators.push(o);
    return o;
  }

  async function startOperatorAgent(address: string, extra: string[] = []): Promise<AgentProcess> {
    const a = await startAgent(
      null,
      upstream.port,
      [
        '--operator',
        address,
        '--operator-ca',
        caFile,
        '--operator-server-name',
        SERVER_NAME,
        '--token-file',
        tokenFile,
        '--operator-backoff-ms',
        '50,800',
        '--log-level',
        'debug',
        ...extra,
      ],
      { env: POD },
    );
    agents.push(a);
    return a;
  }

  async function stop(a: AgentProcess): Promise<void> {
    if (a.proc.exitCode !== null || a.proc.signalCode !== null) return;
    const exited = new Promise((r) => a.proc.once('exit', r));
    a.proc.kill('SIGTERM');
    await exited;
  }

  const status200 = (path: string) => async () => (await send(agent.port, path)).status === 200;

  test('(a) Hello carries the pod, the token from the file and the app port; the bundle is enforced and ACKed', async () => {
    op = await operator(serving, V1);
    agent = await startOperatorAgent(op.address, ['--state-dir', stateDir]);
    await eventually(async () => op.acks.length === 1);
    const hello = op.hellos[0]?.message;
    assert.deepEqual(
      { ...hello, agentVersion: undefined },
      {
        podName: POD.POD_NAME,
        podNamespace: POD.POD_NAMESPACE,
        token: TOKEN,
        appPort: upstream.port,
        bundleVersion: '',
        agentVersion: undefined,
      },
    );
    assert.match(hello?.agentVersion ?? '', /^\d+\.\d+\.\d+/);
    assert.deepEqual(op.acks[0]?.message, { version: V1.version });
    const before = upstream.seen.length;
    assert.equal((await send(agent.port, '/v1/orders')).status, 200);
    assert.equal(upstream.seen.length, before + 1);
    const admin = await send(agent.port, '/v1/admin');
    assert.equal(admin.status, 403);
    assert.equal(problem(admin).code, 'ERR_AUTHZ_DENIED');
    assert.equal(problem(await send(agent.port, '/v1/items')).code, 'ERR_ROUTE_NOT_FOUND');
    assert.equal(upstream.seen.length, before + 1);
    assert.equal((await send(agent.admin, '/readyz')).status, 200);
    assert.equal(
      (JSON.parse((await send(agent.admin, '/config')).body) as { version: string }).version,
      V1.version,
    );
    assert.equal(readFileSync(join(stateDir, 'bundle.json'), 'utf8'), V1.json);
    assert.equal(statSync(join(stateDir, 'bundle.json')).mode & 0o777, 0o600);
  });

  test('(b) a new bundle: new behaviour within moments, ACKed', async () => {
    const t0 = Date.now();
    op.push(V2);
    await eventually(status200('/v1/items'), 3000);
    assert.ok(Date.now() - t0 < 2000, `took ${Date.now() - t0} ms`);
    await eventually(async () => op.acks.some((a) => a.message.version === V2.version));
    assert.equal(readFileSync(join(stateDir, 'bundle.json'), 'utf8'), V2.json);
  });

  test('(c) bad JSON, a bundle failing the schema, a version mismatch: NACKed with the reason, V2 kept', async () => {
    const notABundle = JSON.stringify({
      kind: 'tollgate.dev/PolicyBundle',
      schemaVersion: 1,
      version: 'v',
      policies: [{}],
    });
    const bad: [bundle: { version: string; json: string }, error: RegExp][] = [
      [{ version: 'sha256:0', json: '{"kind": "tollgate.dev/Poli' }, /^the bundle is not JSON: /],
      [{ version: 'v', json: notABundle }, /^not a valid tollgate\.dev\/PolicyBundle v1: \/policies\/0 /],
      [{ version: V3.version, json: V1.json }, /^version mismatch: the message announces "sha256:/],
    ];
    for (const [i, [bundle, error]] of bad.entries()) {
      op.push(bundle);
      await eventually(async () => op.nacks.length === i + 1);
      assert.equal(op.nacks[i]?.message.version, bundle.version);
      assert.match(op.nacks[i]?.message.error ?? '', error);
    }
    op.bundle = V2; // what a reconnect would get
    assert.equal((await send(agent.port, '/v1/items')).status, 200);
    assert.equal((await send(agent.port, '/v1/orders')).status, 200);
    assert.equal(readFileSync(join(stateDir, 'bundle.json'), 'utf8'), V2.json);
    const metrics = (await send(agent.admin, '/metrics')).body;
    assert.match(metrics, /tollgate_policy_reloads_total\{result="rejected"\} 3\b/);
    assert.match(metrics, new RegExp(`tollgate_policy_bundle_info\\{version="${V2.version}"\\} 1`));
    const rejected = logLines(agent).filter((l) => l.msg === 'policy rejected, keeping the last good one');
    assert.equal(rejected.length, 3);
  });

  test('(d) an empty bundle (no policy selects the pod): every request denied with 403, never forwarded', async () => {
    op.push(EMPTY);
    await eventually(async () => (await send(agent.port, '/v1/items')).status === 403);
    const before = upstream.seen.length;
    for (const path of ['/v1/items', '/v1/orders', '/', '/anything']) {
      const r = await send(agent.port, path);
      assert.equal(r.status, 403);
      assert.equal(r.headers['content-type'], 'application/problem+json');
      assert.equal(problem(r).code, 'ERR_POLICY_NONE');
      assert.match(problem(r).detail, /no policy applies/);
    }
    assert.equal(upstream.seen.length, before);
    // ACKed once saved (the swap comes first).
    await eventually(async () => op.acks.some((a) => a.message.version === EMPTY.version));
    assert.equal((await send(agent.admin, '/readyz')).status, 200, 'a bundle is in force');
    op.push(V2);
    await eventually(status200('/v1/items'));
  });

  test('(f) operator down: enforcing goes on, also across an agent restart (state dir); operator back: reconnect, converge', async () => {
    op.stop();
    await eventually(async () => logLines(agent).some((l) => l.msg === 'operator stream failed'));
    assert.equal((await send(agent.port, '/v1/items')).status, 200);
    await stop(agent);
    writeFileSync(tokenFile, TOKEN2); // the kubelet rotated the token meanwhile
    agent = await startOperatorAgent(op.address, ['--state-dir', stateDir]);
    // At once, with the operator still down.
    assert.equal((await send(agent.port, '/v1/items')).status, 200);
    assert.equal((await send(agent.admin, '/readyz')).status, 200);
    assert.ok(logLines(agent).some((l) => l.msg === 'policy restored from the state directory'));
    await eventually(async () => logLines(agent).some((l) => l.msg === 'operator stream failed'));
    assert.equal((await send(agent.port, '/v1/orders')).status, 200);
    op = await operator(serving, V3, op.port);
    await eventually(async () => op.acks.some((a) => a.message.version === V3.version), 5000);
    assert.equal(op.hellos[0]?.message.bundleVersion, V2.version);
    assert.equal(op.hellos[0]?.message.token, TOKEN2);
    assert.equal((await send(agent.port, '/v1/orders')).status, 404);
    assert.equal((await send(agent.port, '/v1/items')).status, 200);
  });

  test('(g) a refused Hello (UNAUTHENTICATED): retried with backoff, the bundle kept, warned without the token', async () => {
    op.refuse = { code: status.UNAUTHENTICATED, details: 'the token was not accepted: audience mismatch' };
    const from = op.hellos.length;
    op.endStreams();
    await eventually(async () => op.hellos.length >= from + 4, 8000);
    assert.equal((await send(agent.port, '/v1/items')).status, 200);
    assert.equal((await send(agent.admin, '/readyz')).status, 200);
    const refusals = logLines(agent).filter((l) => l.msg === 'operator refused the stream');
    assert.ok(refusals.length >= 3, JSON.stringify(refusals));
    const hellos = op.hellos.slice(from).map((h) => h.at);
    for (const [k, r] of refusals.slice(0, 3).entries()) {
      assert.equal(r.level, 40, 'warn');
      assert.equal(r.code, 'UNAUTHENTICATED');
      assert.equal(r.reason, 'the token was not accepted: audience mismatch');
      // Full jitter: each wait is drawn below a ceiling that doubles per failure (the
      // stream's end was the first: 100, 200, 400 ms for the refusals)...
      assert.equal(r.failures, k + 2);
      const wait = r.retryInMs as number;
      assert.ok(wait >= 0 && wait < 50 * 2 ** (k + 1), `failure ${k + 2} waits ${wait} ms`);
      // ...and the agent did wait that long before its next Hello.
      const gap = (hellos[k + 1] ?? 0) - (hellos[k] ?? 0);
      assert.ok(gap >= wait - 2, `gap ${gap} ms after a ${wait} ms wait`);
    }
    op.refuse = null;
    await eventually(async () => op.acks.filter((a) => a.message.version === V3.version).length === 2, 5000);
  });

  test('(e) no bundle ever and the operator down: 503 problem+json, readyz 503 (a corrupt saved bundle is ignored)', async () => {
    const corrupt = join(dir, 'corrupt-state');
    mkdirSync(corrupt);
    writeFileSync(join(corrupt, 'bundle.json'), '{"kind": "tollgate.dev/PolicyBundle", "vers');
    const down = `127.0.0.1:${await closedPort()}`;
    const [plain, withCorrupt] = await Promise.all([
      startOperatorAgent(down),
      startOperatorAgent(down, ['--state-dir', corrupt]),
    ]);
    for (const a of [plain, withCorrupt]) {
      const before = upstream.seen.length;
      const r = await send(a.port, '/v1/items');
      assert.equal(r.status, 503);
      assert.equal(r.headers['content-type'], 'application/problem+json');
      assert.equal(problem(r).code, 'ERR_NO_POLICY');
      assert.equal(upstream.seen.length, before);
      assert.equal((await send(a.admin, '/readyz')).status, 503);
      assert.deepEqual(JSON.parse((await send(a.admin, '/config')).body), { loaded: false });
      await eventually(async () => logLines(a).filter((l) => l.msg === 'operator stream failed').length >= 2);
      assert.equal((await send(a.port, '/v1/items')).status, 503);
    }
    assert.ok(logLines(withCorrupt).some((l) => l.msg === 'saved policy bundle invalid, ignored'));
    await Promise.all([stop(plain), stop(withCorrupt)]);
  });

  test('(h) an operator certificate from another CA, or for another name: no Hello is sent, nothing enforced', async () => {
    const [impostor, wrongName] = await Promise.all([operator(foreign, V1), operator(misnamed, V1)]);
    const [a1, a2] = await Promise.all([
      startOperatorAgent(impostor.address),
      startOperatorAgent(wrongName.address),
    ]);
    for (const a of [a1, a2]) {
      await eventually(async () => logLines(a).filter((l) => l.msg === 'operator stream failed').length >= 2);
      const failure = logLines(a).find((l) => l.msg === 'operator stream failed');
      assert.equal(failure?.code, 'UNAVAILABLE');
      assert.equal((await send(a.port, '/v1/orders')).status, 503);
      assert.equal((await send(a.admin, '/readyz')).status, 503);
    }
    const reason = (a: AgentProcess) =>
      String(logLines(a).find((l) => l.msg === 'operator stream failed')?.reason);
    assert.match(reason(a1), /unable to verify the first certificate/);
    assert.match(reason(a2), /ERR_TLS_CERT_ALTNAME_INVALID/);
    assert.equal(impostor.hellos.length, 0);
    assert.equal(wrongName.hellos.length, 0);
    await Promise.all([stop(a1), stop(a2)]);
  });

  test('the token never appears in any agent output (debug logs included)', () => {
    assert.ok(agents.length >= 6);
    for (const a of agents) {
      const out = a.output();
      assert.ok(out.length > 0);
      assert.ok(!out.includes(TOKEN), 'first token leaked');
      assert.ok(!out.includes(TOKEN2), 'rotated token leaked');
      assert.ok(!out.includes('integration-token-'), 'token fragment leaked');
    }
  });

  test('configuration errors exit 2 with every problem listed; an unreadable CA or a busy port exits 1', () => {
    const bin = join(root, 'bin/tollgate');
    const bad = spawnSync(bin, ['agent', '--operator', 'op:15010', '--upstream', 'http://127.0.0.1:1'], {
      encoding: 'utf8',
      env: { ...process.env, POD_NAME: '', POD_NAMESPACE: '' },
    });
    assert.equal(bad.status, 2, bad.stderr);
    assert.deepEqual(bad.stderr.trim().split('\n'), [
      'tollgate agent: --operator-ca is required with --operator',
      'tollgate agent: --pod-name (or $POD_NAME) is required with --operator',
      'tollgate agent: --pod-namespace (or $POD_NAMESPACE) is required with --operator',
      "Run 'tollgate agent --help' for usage.",
    ]);
    const noCa = spawnSync(
      bin,
      [
        'agent',
        '--operator',
        'op:15010',
        '--operator-ca',
        join(dir, 'missing.crt'),
        '--upstream',
        'http://127.0.0.1:1',
        '--listen',
        '127.0.0.1:0',
        '--admin',
        '127.0.0.1:0',
      ],
      { encoding: 'utf8', env: { ...process.env, ...POD } },
    );
    assert.equal(noCa.status, 1, noCa.stderr);
    assert.match(noCa.stderr, /tollgate agent: --operator-ca: cannot read .*missing\.crt \(ENOENT\)/);
    // A listener that cannot bind (the upstream holds the port): exit 1, the stream keeps nothing alive.
    const busy = spawnSync(
      bin,
      [
        'agent',
        '--operator',
        `127.0.0.1:${upstream.port}`,
        '--operator-ca',
        caFile,
        '--token-file',
        tokenFile,
        '--upstream',
        'http://127.0.0.1:1',
        '--listen',
        `127.0.0.1:${upstream.port}`,
        '--admin',
        '127.0.0.1:0',
      ],
      { encoding: 'utf8', env: { ...process.env, ...POD }, timeout: 15_000 },
    );
    assert.equal(busy.status, 1, busy.stderr);
    assert.match(busy.stderr, /tollgate agent: listen EADDRINUSE/);
  });
});
