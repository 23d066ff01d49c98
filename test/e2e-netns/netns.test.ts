/**
 * Traffic capture end to end, in real Linux network namespaces: two "pods" (A
 * and B) joined by a veth pair, each with an app on 8080 (captured) and 9090
 * (not captured), the real `tollgate init` and a real `tollgate agent` running
 * as UID 1337. A's app calls B's address: A's rules send the connection to A's
 * agent (outbound), which forwards it by Host to B, whose rules send it to B's
 * agent (inbound), which enforces B's policy before B's app sees anything.
 * Each agent has a workload certificate (SPIFFE ID of its pod's service
 * account, from one CA) and a `--mesh` file naming the other pod: A's agent
 * originates mTLS to B's, and B's decision uses A's identity.
 * Needs root, `ip netns` and iptables; skipped with a message otherwise.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ownRules, parseSave } from '../../agent/capture/restore.ts';
import { captureRules } from '../../agent/capture/rules.ts';
import { createCa, issueCertificate } from '../support/certs.ts';
import { HERE, NODE, type Pod, type PodProcess, Pods, TOLLGATE, unavailable } from './pods.ts';

const skip = unavailable();
if (skip) console.log(`# traffic-capture e2e skipped: ${skip}`);

const POLICY = `apiVersion: tollgate.dev/v1alpha1
kind: ApiPolicy
metadata: {name: pod-app, namespace: e2e}
spec:
  mtls: {mode: Permissive}
  routes:
    - {name: allowed, methods: [GET], path: /allowed, public: true}
    - {name: admin, methods: [GET], path: /admin}
    - name: from-a
      methods: [GET]
      path: /from-a
      allow:
        - peers: [spiffe://cluster.local/ns/e2e/sa/pod-a]
    - name: xfcc
      methods: [GET]
      path: /xfcc
      public: true
`;

const TD = 'spiffe://cluster.local/ns/e2e/sa';

const AGENT_UID = 1337;
const INIT_FLAGS = ['--inbound-ports', '8080', '--agent-uid', String(AGENT_UID)];

interface Answer {
  status?: number;
  headers?: Record<string, string>;
  body?: string;
  connected?: boolean;
  error?: string;
}

interface AppSeen {
  port: number;
  url: string;
  headers: Record<string, string>;
}

describe('traffic capture between two pods (network namespaces)', { skip: skip ?? false }, () => {
  const pods = new Pods();
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-netns-'));
  const policy = join(dir, 'policy.yaml');
  let a: Pod;
  let b: Pod;
  const agents = new Map<Pod, PodProcess>();
  let backend = '';
  /** The pod's SPIFFE ID: service account `pod-a` or `pod-b`. */
  const identityOf = (pod: Pod) => `${TD}/${pod === a ? 'pod-a' : 'pod-b'}`;

  /** Its workload certificate, the trust bundle, and a `--mesh` file naming the other pod. */
  async function identityFlags(pod: Pod, other: Pod, ca: { cert: string }): Promise<string[]> {
    const pair = await issueCertificate(ca as Parameters<typeof issueCertificate>[0], {
      uris: [identityOf(pod)],
      usages: 'both',
    });
    const file = (name: string, text: string) => {
      const path = join(dir, `${pod.ns}.${name}`);
      writeFileSync(path, text, { mode: 0o644 });
      return path;
    };
    const mesh = `endpoints:\n  - {addresses: [${other.ip}], ports: [8080], identities: [${identityOf(other)}]}\n`;
    return [
      '--tls-cert',
      file('crt', pair.cert),
      '--tls-key',
      file('key', pair.key),
      '--trust-bundle',
      file('ca.crt', ca.cert),
      '--mesh',
      file('mesh.yaml', mesh),
    ];
  }

  /** The pod's client: an HTTP GET or a bare connect, as root (captured) or as `uid`. */
  async function client(pod: Pod, args: string[], uid?: number): Promise<Answer> {
    const as = uid === undefined ? [] : ['--uid', String(uid)];
    const out = await pods.exec(pod, [NODE, `${HERE}pod-client.ts`, ...as, ...args], 10_000);
    return JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as Answer;
  }

  const appLog = (pod: Pod) => join(dir, `${pod.ns}.app.jsonl`);
  const appSeen = (pod: Pod): AppSeen[] =>
    readFileSync(appLog(pod), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as AppSeen);
  const agentLines = (pod: Pod, msg: string) =>
    (agents.get(pod)?.output() ?? '')
      .split('\n')
      .filter((l) => l.includes(`"msg":"${msg}"`))
      .map((l) => JSON.parse(l) as Record<string, unknown>);

  before(
    async () => {
      chmodSync(dir, 0o755);
      writeFileSync(policy, POLICY, { mode: 0o644 });
      [a, b] = pods.create();
      const ca = await createCa({ commonName: 'e2e mesh' });
      for (const pod of [a, b]) {
        writeFileSync(appLog(pod), '');
        const app = pods.start(pod, [NODE, `${HERE}pod-app.ts`, appLog(pod)]);
        const init = await pods.exec(pod, [TOLLGATE, 'init', ...INIT_FLAGS]);
        backend = /\((nft|legacy|default) backend\)/.exec(init)?.[1] ?? '';
        assert.match(init, /IPv4 (and IPv6 )?capture rules applied/);
        const agent = pods.start(pod, [
          NODE,
          `${HERE}as-uid.ts`,
          String(AGENT_UID),
          'agent',
          '--policy',
          policy,
          '--upstream',
          'http://127.0.0.1:8080',
          '--listen',
          '0.0.0.0:15006',
          '--outbound',
          '0.0.0.0:15001',
          '--admin',
          '127.0.0.1:15020',
          ...(await identityFlags(pod, pod === a ? b : a, ca)),
        ]);
        agents.set(pod, agent);
        await Promise.all([app.waitFor(/app listening/), agent.waitFor(/"msg":"agent started"/)]);
      }
    },
    { timeout: 40_000 },
  );

  after(async () => {
    await pods.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the agents run as UID 1337', () => {
    for (const agent of agents.values()) {
      const status = readFileSync(`/proc/${agent.proc.pid}/status`, 'utf8');
      assert.match(status, /^Uid:\s+1337\s+1337\s+1337\s+1337$/m);
    }
  });

  test("A's app → B:8080: out through A's agent, in through B's agent, allowed by B's policy", async () => {
    const r = await client(a, ['get', `http://${b.ip}:8080/allowed`, 'x-request-id:e2e-allowed']);
    assert.equal(r.status, 200, JSON.stringify(r));
    const seen = JSON.parse(r.body ?? '{}') as AppSeen;
    assert.deepEqual([seen.port, seen.url], [8080, '/allowed']);
    // Set by B's agent: the peer it saw is A's agent, from A's address.
    assert.equal(seen.headers['x-forwarded-for'], a.ip);
    assert.equal(seen.headers['x-request-id'], 'e2e-allowed');
    const inbound = agentLines(b, 'request').find((l) => l.requestId === 'e2e-allowed');
    assert.deepEqual([inbound?.route, inbound?.status], ['allowed', 200]);
    const outbound = agentLines(a, 'outbound request').find((l) => l.path === '/allowed');
    assert.deepEqual(
      [outbound?.destination, outbound?.status, outbound?.mtls],
      [`${b.ip}:8080`, '200', true],
    );
  });

  test("A → B goes over mTLS: B's decision uses A's SPIFFE ID, which only A's agent can prove", async () => {
    const r = await client(a, ['get', `http://${b.ip}:8080/from-a`, 'x-request-id:e2e-from-a']);
    assert.equal(r.status, 200, JSON.stringify(r));
    const inbound = agentLines(b, 'request').find((l) => l.requestId === 'e2e-from-a');
    assert.deepEqual([inbound?.route, inbound?.status, inbound?.clientKey], ['from-a', 200, identityOf(a)]);
    // B's app is told who called, from the verified certificate; a forged header is dropped.
    const x = await client(a, [
      'get',
      `http://${b.ip}:8080/xfcc`,
      `x-forwarded-client-cert:By=x;URI=${identityOf(a)}-forged`,
    ]);
    const seen = JSON.parse(x.body ?? '{}') as AppSeen;
    assert.match(seen.headers['x-forwarded-client-cert'] ?? '', new RegExp(`URI=${identityOf(a)}(;|$)`));
    assert.doesNotMatch(seen.headers['x-forwarded-client-cert'] ?? '', /forged/);
    // Around A's agent (plaintext, as UID 1337), B's agent sees no identity: refused.
    const around = await client(a, ['get', `http://${b.ip}:8080/from-a`], AGENT_UID);
    assert.equal(around.status, 403, JSON.stringify(around));
    assert.ok(
      !appSeen(b).some((s) => s.url === '/from-a' && s.headers['x-forwarded-client-cert'] === undefined),
    );
  });

  test('B → A goes over mTLS too: each agent presents its own identity', async () => {
    // B's mesh file names A: its outbound originates mTLS to A's agent.
    const r = await client(b, ['get', `http://${a.ip}:8080/allowed`]);
    assert.equal(r.status, 200, JSON.stringify(r));
    const outbound = agentLines(b, 'outbound request').find((l) => l.destination === `${a.ip}:8080`);
    assert.equal(outbound?.mtls, true);
    const inbound = agentLines(a, 'request').find((l) => l.route === 'allowed');
    assert.equal(inbound?.clientKey, identityOf(b));
  });

  test("B's policy is enforced: undeclared 404, forbidden 403, and B's app never sees them", async () => {
    const notFound = await client(a, ['get', `http://${b.ip}:8080/secret`]);
    assert.equal(notFound.status, 404);
    assert.equal(JSON.parse(notFound.body ?? '{}').code, 'ERR_ROUTE_NOT_FOUND');
    const forbidden = await client(a, ['get', `http://${b.ip}:8080/admin`]);
    assert.equal(forbidden.status, 403);
    assert.equal(JSON.parse(forbidden.body ?? '{}').code, 'ERR_AUTHZ_DENIED');
    assert.deepEqual(
      appSeen(b).filter((s) => s.url === '/secret' || s.url === '/admin'),
      [],
    );
  });

  test("going around A's agent (as UID 1337) still meets B's agent", async () => {
    assert.deepEqual(await client(a, ['connect', b.ip, '8080'], AGENT_UID), { connected: true });
    const r = await client(a, ['get', `http://${b.ip}:8080/secret`], AGENT_UID);
    assert.equal(r.status, 404);
    assert.ok(!appSeen(b).some((s) => s.url === '/secret'));
  });

  test("B's app port outside the policy (9090) is unreachable from outside the pod", async () => {
    // Not through A's agent: refused by B's rules with a reset.
    assert.deepEqual(await client(a, ['connect', b.ip, '9090'], AGENT_UID), { error: 'ECONNREFUSED' });
    // Through A's agent: it cannot reach B:9090 either.
    const viaAgent = await client(a, ['get', `http://${b.ip}:9090/`]);
    assert.equal(viaAgent.status, 502);
    assert.equal(JSON.parse(viaAgent.body ?? '{}').code, 'ERR_OUTBOUND_UNREACHABLE');
    assert.deepEqual(
      appSeen(b).filter((s) => s.port === 9090),
      [],
    );
    // The app does listen there: inside B, over loopback, it answers.
    const inside = await client(b, ['get', 'http://127.0.0.1:9090/inside']);
    assert.equal(inside.status, 200);
  });

  test("B's outbound listener is not reachable from other pods", async () => {
    assert.deepEqual(await client(a, ['connect', b.ip, '15001'], AGENT_UID), { error: 'ECONNREFUSED' });
  });

  test('init is idempotent: a second run leaves exactly the same rules', async () => {
    const save = backend === 'default' ? 'iptables-save' : `iptables-${backend}-save`;
    const rules = async () =>
      (await pods.exec(b, [save]))
        .split('\n')
        .filter((l) => !l.startsWith('#'))
        .join('\n');
    const first = await rules();
    await pods.exec(b, [TOLLGATE, 'init', ...INIT_FLAGS]);
    assert.equal(await rules(), first);
    const own = ownRules(parseSave(first));
    const want = captureRules(
      {
        inboundPorts: [8080],
        excludeInboundPorts: [],
        excludeOutboundPorts: [],
        excludeOutboundCidrs: [],
        agentUid: AGENT_UID,
        inboundPort: 15006,
        outboundPort: 15001,
        adminPort: 15020,
      },
      4,
    );
    for (const table of ['nat', 'filter'] as const)
      assert.deepEqual(
        own[table]?.toSorted(),
        [...want[table].jumps, ...want[table].rules].toSorted(),
        table,
      );
  });
});
