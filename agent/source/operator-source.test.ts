/**
 * OperatorPolicySource in process against a real gRPC server over TLS (the
 * test operator): Hello, ACK/NACK, atomic swap, state directory, backoff with
 * an injected random source and delay, refusals, the token never logged.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Diagnostic } from '../../policy/diagnostics.ts';
import type { PolicyEngine } from '../../policy/engine/engine.ts';
import { trustBundleVersion } from '../../proto/policy-service.ts';
import { createCa, issueCertificate, type PemPair } from '../../test/support/certs.ts';
import { bundleOf, FakeOperator, status } from '../../test/support/operator-server.ts';
import type { Logger } from '../agent.ts';
import { TrustStore } from '../identity/trust-store.ts';
import {
  decodeBundle,
  OperatorPolicySource,
  type OperatorSourceOptions,
  targetHost,
} from './operator-source.ts';
import { MESH_FILE, STATE_FILE, TRUST_FILE } from './state-dir.ts';

const SERVER_NAME = 'tollgate-operator.tollgate-system.svc';
const TOKEN = 'eyJhbGciOiJSUzI1NiJ9.unit-test-token-7f3a9c.c2lnbmF0dXJl';

function policy(routes: string[]): string {
  return `apiVersion: tollgate.dev/v1alpha1
kind: ApiPolicy
metadata: {name: orders, namespace: shop}
spec:
  routes:
${routes.map((r) => `    - {name: ${r}, methods: [GET], path: /${r}, public: true}`).join('\n')}
`;
}
const V1 = bundleOf(policy(['a']));
const V2 = bundleOf(policy(['a', 'b']));

interface Line {
  level: string;
  fields: Record<string, unknown>;
  msg: string;
}
function recorder(): Logger & { lines: Line[] } {
  const lines: Line[] = [];
  const at = (level: string) => (fields: object, msg: string) =>
    lines.push({ level, fields: fields as Record<string, unknown>, msg });
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

async function until(check: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) assert.fail('condition not reached in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

const routes = (e: PolicyEngine | null) => e?.bundle.policies.flatMap((p) => p.routes.map((r) => r.name));

describe('decodeBundle', () => {
  const cases: [name: string, bundle: { version: string; json: string }, error: RegExp | null][] = [
    ['a good bundle', V1, null],
    ['not JSON', { version: V1.version, json: '{"kind":' }, /^the bundle is not JSON: /],
    [
      'JSON, not a bundle',
      { version: V1.version, json: '{"kind":"nope"}' },
      /^not a valid tollgate.dev\/PolicyBundle v1: /,
    ],
    [
      'another version than announced',
      { version: V2.version, json: V1.json },
      /^version mismatch: the message announces "sha256:[0-9a-f]{64}", the bundle is "sha256:/,
    ],
    ['an empty version', { version: '', json: V1.json }, /^version mismatch/],
  ];
  for (const [name, bundle, error] of cases) {
    test(`${name} → ${error ? 'refused' : 'an engine'}`, () => {
      const d = decodeBundle(bundle);
      if (error === null) assert.ok(d.ok && d.engine.bundle.version === V1.version);
      else assert.match(d.ok ? 'ok' : d.error, error);
    });
  }
});

test('targetHost', () => {
  assert.equal(targetHost('op.svc:15010'), 'op.svc');
  assert.equal(targetHost('[::1]:15010'), '::1');
  assert.equal(targetHost('127.0.0.1:1'), '127.0.0.1');
});

describe('OperatorPolicySource', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-operator-source-'));
  const caFile = join(dir, 'ca.crt');
  const tokenFile = join(dir, 'token');
  let serving: PemPair;
  let rootA = '';
  let rootB = '';
  const sources: OperatorPolicySource[] = [];
  const operators: FakeOperator[] = [];

  before(async () => {
    const ca = await createCa({ commonName: 'tollgate test root' });
    serving = await issueCertificate(ca, { dnsNames: [SERVER_NAME], usages: 'server' });
    writeFileSync(caFile, ca.cert);
    rootA = (await createCa({ commonName: 'mesh root 1' })).cert;
    rootB = (await createCa({ commonName: 'mesh root 2' })).cert;
    writeFileSync(tokenFile, `${TOKEN}\n`);
  });
  after(async () => {
    for (const s of sources) s.close();
    await Promise.all(sources.map((s) => s.closed()));
    for (const o of operators) o.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function operator(bundle: typeof V1 | null = V1): Promise<FakeOperator> {
    const op = await FakeOperator.start({ serving, bundle });
    operators.push(op);
    return op;
  }

  function source(op: FakeOperator, extra: Partial<OperatorSourceOptions> = {}) {
    const logger = recorder();
    const loads: string[] = [];
    const rejects: Diagnostic[][] = [];
    const s = new OperatorPolicySource({
      target: op.address,
      caFile,
      serverName: SERVER_NAME,
      tokenFile,
      podName: 'orders-1',
      podNamespace: 'shop',
      appPort: 8080,
      agentVersion: '9.9.9',
      stateDir: null,
      logger,
      backoff: { minMs: 5, maxMs: 40 },
      onLoad: (engine) => loads.push(engine.bundle.version),
      onReject: (d) => rejects.push(d),
      ...extra,
    });
    sources.push(s);
    return { s, logger, loads, rejects };
  }

  test('Hello, bundle, ACK; a new bundle swaps; a bad one is NACKed and the old one kept', async () => {
    const op = await operator();
    const { s, loads, rejects, logger } = source(op);
    assert.equal(s.current, null);
    assert.equal(s.start(), null);
    await until(() => op.acks.length === 1);
    assert.deepEqual(op.hellos[0]?.message, {
      podName: 'orders-1',
      podNamespace: 'shop',
      token: TOKEN,
      appPort: 8080,
      bundleVersion: '',
      agentVersion: '9.9.9',
    });
    assert.deepEqual(op.acks[0]?.message, { version: V1.version });
    assert.deepEqual(routes(s.current), ['a']);
    op.push(V2);
    await until(() => op.acks.length === 2);
    assert.deepEqual(routes(s.current), ['a', 'b']);
    op.push({ version: V1.version, json: '{' });
    await until(() => op.nacks.length === 1);
    assert.equal(op.nacks[0]?.message.version, V1.version);
    assert.match(op.nacks[0]?.message.error ?? '', /^the bundle is not JSON/);
    assert.deepEqual(routes(s.current), ['a', 'b']);
    assert.equal(rejects.length, 1);
    assert.match(rejects[0]?.[0]?.message ?? '', /^bundle sha256:[0-9a-f]+: the bundle is not JSON/);
    // The same version again: ACKed, the engine (and its caches) kept.
    const engine = s.current;
    op.push(V2);
    await until(() => op.acks.length === 3);
    assert.equal(s.current, engine);
    assert.deepEqual(loads, [V1.version, V2.version]);
    assert.ok(logger.lines.some((l) => l.msg === 'operator stream open'));
    s.close();
    await s.closed();
  });

  test('a refused Hello: warned with the reason (token redacted), retried below a doubling ceiling', async () => {
    const op = await operator();
    op.refuse = { code: status.UNAUTHENTICATED, details: `token ${TOKEN} is not valid` };
    const delays: number[] = [];
    const { s, logger } = source(op, {
      backoff: { minMs: 100, maxMs: 400, random: () => 0.999 },
      delay: async (ms) => {
        delays.push(ms);
      },
    });
    s.start();
    await until(() => op.hellos.length >= 5);
    s.close();
    await s.closed();
    assert.deepEqual(delays.slice(0, 4), [99, 199, 399, 399]);
    const refusals = logger.lines.filter((l) => l.msg === 'operator refused the stream');
    assert.ok(refusals.length >= 4);
    assert.deepEqual(refusals[0], {
      level: 'warn',
      msg: 'operator refused the stream',
      fields: {
        operator: op.address,
        code: 'UNAUTHENTICATED',
        reason: 'token [redacted] is not valid',
        failures: 1,
        retryInMs: 99,
      },
    });
    assert.deepEqual(
      refusals.slice(0, 4).map((l) => l.fields.failures),
      [1, 2, 3, 4],
    );
    assert.ok(!JSON.stringify(logger.lines).includes(TOKEN));
  });

  test('PERMISSION_DENIED is a refusal too; a stream that delivered a bundle resets the backoff', async () => {
    const op = await operator();
    op.refuse = { code: status.PERMISSION_DENIED, details: 'pod orders-1 is not in namespace shop' };
    const delays: number[] = [];
    const { s, logger } = source(op, {
      backoff: { minMs: 10, maxMs: 1000, random: () => 0.5 },
      delay: async (ms) => {
        delays.push(ms);
        await new Promise((r) => setTimeout(r, 1));
      },
    });
    s.start();
    await until(() => delays.length >= 3);
    op.refuse = null;
    await until(() => op.acks.length === 1);
    const before = delays.length;
    assert.deepEqual(delays.slice(0, 3), [5, 10, 20]);
    op.refuse = { code: status.PERMISSION_DENIED, details: 'pod orders-1 is not in namespace shop' };
    op.endStreams();
    await until(() => delays.length >= before + 2);
    // The loss follows a healthy stream: from the minimum again.
    assert.deepEqual(delays.slice(before, before + 2), [5, 10]);
    assert.deepEqual(routes(s.current), ['a'], 'the bundle stays in force');
    assert.ok(logger.lines.some((l) => l.msg === 'operator stream closed, reconnecting'));
    const refused = logger.lines.find((l) => l.msg === 'operator refused the stream');
    assert.equal(refused?.fields.code, 'PERMISSION_DENIED');
    assert.equal(refused?.fields.reason, 'pod orders-1 is not in namespace shop');
    s.close();
    await s.closed();
  });

  test('the token is read again on every connect; an unreadable token file is retried', async () => {
    const op = await operator();
    const tokens = join(dir, 'rotating-token');
    const { s, logger } = source(op, { tokenFile: tokens, backoff: { minMs: 5, maxMs: 10 } });
    s.start();
    await until(() => logger.lines.some((l) => l.msg === 'operator not contacted'));
    const miss = logger.lines.find((l) => l.msg === 'operator not contacted');
    assert.match(String(miss?.fields.reason), /cannot read the service account token .*\(ENOENT\)/);
    assert.equal(op.hellos.length, 0);
    writeFileSync(tokens, 'first-token-value');
    await until(() => op.acks.length === 1);
    writeFileSync(tokens, 'second-token-value');
    op.endStreams();
    await until(() => op.hellos.length === 2);
    assert.deepEqual(
      op.hellos.map((h) => [h.message.token, h.message.bundleVersion]),
      [
        ['first-token-value', ''],
        ['second-token-value', V1.version],
      ],
    );
    s.close();
    await s.closed();
  });

  test('state dir: every ACKed bundle is saved (0600) and restored at start, before the operator answers', async () => {
    const stateDir = join(dir, 'state');
    const op = await operator(V2);
    const first = source(op, { stateDir });
    first.s.start();
    await until(() => op.acks.length === 1);
    assert.equal(statSync(join(stateDir, STATE_FILE)).mode & 0o777, 0o600);
    first.s.close();
    await first.s.closed();
    op.stop();
    const second = source(op, { stateDir });
    second.s.start();
    assert.deepEqual(routes(second.s.current), ['a', 'b'], 'enforced at once');
    assert.deepEqual(second.loads, [V2.version]);
    await until(() => second.logger.lines.some((l) => l.msg === 'operator stream failed'));
    const failed = second.logger.lines.find((l) => l.msg === 'operator stream failed');
    assert.equal(failed?.fields.code, 'UNAVAILABLE');
    second.s.close();
    await second.s.closed();
  });

  test('a save that fails is logged; the bundle is ACKed and in force all the same', async () => {
    const blocked = join(dir, 'a-file');
    writeFileSync(blocked, 'not a folder');
    const op = await operator();
    const { s, logger } = source(op, { stateDir: blocked });
    s.start();
    await until(() => op.acks.length === 1);
    assert.deepEqual(routes(s.current), ['a']);
    const error = logger.lines.find((l) => l.msg === 'cannot save the policy bundle');
    assert.equal(error?.level, 'error');
    s.close();
    await s.closed();
  });

  test('trust bundles: taken, saved (0600) and reported; a malformed one reported rejected, the good one kept; restored at start', async () => {
    const stateDir = join(dir, 'trust-state');
    const tb = (pem: string) => ({ version: trustBundleVersion(pem), pem });
    const trustReports = (op: FakeOperator) =>
      op.reports.filter((r) => r.message.kind === 'trust-bundle').map((r) => JSON.parse(r.message.json));
    const op = await FakeOperator.start({ serving, bundle: V1, trustBundle: tb(rootA) });
    operators.push(op);
    const trust = new TrustStore();
    const { s, logger } = source(op, { stateDir, trust });
    s.start();
    await until(() => trustReports(op).length === 1 && op.acks.length === 1);
    assert.deepEqual(trustReports(op), [{ version: tb(rootA).version, result: 'accepted' }]);
    assert.equal(trust.current?.pem, rootA);
    assert.equal(statSync(join(stateDir, TRUST_FILE)).mode & 0o777, 0o600);
    assert.equal(readFileSync(join(stateDir, TRUST_FILE), 'utf8'), rootA);

    op.pushTrust(tb(`${rootA}\n${rootB}`));
    await until(() => trustReports(op).length === 2);
    assert.equal(trust.current?.anchors.length, 2);
    assert.equal(readFileSync(join(stateDir, TRUST_FILE), 'utf8'), `${rootA}\n${rootB}`);

    for (const bad of [tb(''), tb('not pem'), { version: tb(rootA).version, pem: rootB }])
      op.pushTrust(bad, { keep: true });
    await until(() => trustReports(op).length === 5);
    assert.deepEqual(
      trustReports(op)
        .slice(2)
        .map((r) => [r.result, r.error]),
      [
        ['rejected', 'the trust bundle holds no PEM certificate'],
        ['rejected', 'the trust bundle holds no PEM certificate'],
        [
          'rejected',
          `version mismatch: the message announces "${tb(rootA).version}", the content is ${tb(rootB).version}`,
        ],
      ],
    );
    assert.equal(trust.current?.anchors.length, 2, 'the good bundle stays');
    assert.equal(readFileSync(join(stateDir, TRUST_FILE), 'utf8'), `${rootA}\n${rootB}`);
    assert.equal(
      logger.lines.filter((l) => l.msg === 'trust bundle rejected, keeping the one in force').length,
      3,
    );
    assert.equal(op.nacks.length, 0, 'never a NACK: those are for policy bundles');
    s.close();
    await s.closed();
    op.stop();

    // A restart without the operator: the saved roots are in force at once.
    const restored = new TrustStore();
    const again = source(op, { stateDir, trust: restored });
    again.s.start();
    assert.equal(restored.current?.source, 'state');
    assert.equal(restored.current?.anchors.length, 2);
    again.s.close();
    await again.s.closed();
    // A corrupt saved bundle is ignored, never fatal.
    writeFileSync(join(stateDir, TRUST_FILE), 'garbage');
    const third = source(op, { stateDir, trust: new TrustStore() });
    third.s.start();
    assert.ok(third.logger.lines.some((l) => l.msg === 'saved trust bundle invalid, ignored'));
    third.s.close();
    await third.s.closed();
  });

  test('mesh: handed to onMesh, saved (0600) when put in force, restored at start; a refused one is not saved', async () => {
    const stateDir = join(dir, 'mesh-state');
    const endpoint = (ip: string) => ({
      addresses: [ip],
      ports: [8080],
      excludedPorts: [],
      identities: ['spiffe://cluster.local/ns/shop/sa/orders'],
    });
    const op = await operator();
    const seen: string[] = [];
    const onMesh = (m: { version: string }) => {
      seen.push(m.version);
      return m.version !== 'refused';
    };
    const { s } = source(op, { stateDir, onMesh });
    s.start();
    await until(() => op.acks.length === 1);
    op.pushMesh({ version: 'm1', endpoints: [endpoint('10.0.0.2')] });
    await until(() => existsSync(join(stateDir, MESH_FILE)));
    assert.equal(statSync(join(stateDir, MESH_FILE)).mode & 0o777, 0o600);
    op.pushMesh({ version: 'refused', endpoints: [] });
    await until(() => seen.length === 2);
    assert.deepEqual(JSON.parse(readFileSync(join(stateDir, MESH_FILE), 'utf8')), {
      version: 'm1',
      endpoints: [endpoint('10.0.0.2')],
    });
    s.close();
    await s.closed();
    op.stop();

    // A restart without the operator: the saved mesh is handed over at start.
    const restored: unknown[] = [];
    const again = source(op, { stateDir, onMesh: (m) => restored.push(m) > 0 });
    again.s.start();
    assert.deepEqual(restored, [{ version: 'm1', endpoints: [endpoint('10.0.0.2')] }]);
    assert.ok(again.logger.lines.some((l) => l.msg === 'mesh restored from the state directory'));
    again.s.close();
    await again.s.closed();
    // A corrupt saved mesh is ignored, never fatal.
    writeFileSync(join(stateDir, MESH_FILE), '{not json');
    const third = source(op, { stateDir, onMesh: () => assert.fail('a corrupt mesh is never handed over') });
    third.s.start();
    assert.ok(third.logger.lines.some((l) => l.msg === 'saved mesh invalid, ignored'));
    third.s.close();
    await third.s.closed();
  });

  test('start throws on an unreadable or non-PEM CA file', async () => {
    const op = await operator();
    const missing = source(op, { caFile: join(dir, 'missing.crt') });
    assert.throws(() => missing.s.start(), /--operator-ca: cannot read .*missing\.crt \(ENOENT\)/);
    writeFileSync(join(dir, 'junk.crt'), 'junk');
    const junk = source(op, { caFile: join(dir, 'junk.crt') });
    assert.throws(() => junk.s.start(), /--operator-ca: .*junk\.crt holds no PEM certificate/);
  });
});
