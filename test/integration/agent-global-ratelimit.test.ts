/**
 * `scope: Global` rate limits across two real `tollgate agent` processes
 * sharing one real `redis-server` (password-protected, given in --redis-url):
 * the pair admits `limit + burst` in all, not each; with Redis killed requests
 * keep flowing on each agent's local bucket and the fallback is counted; with
 * Redis back the limit is global again. Skipped where `redis-server` is not on
 * PATH (`.ci/run` installs it).
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Agent as InProcessAgent, type Logger } from '../../agent/agent.ts';
import { eventually, send, startAgent, startUpstream } from '../support/agent-process.ts';
import { freePort, REDIS_SKIP_REASON, RedisServer } from '../support/redis-server.ts';

const POLICY = `apiVersion: tollgate.dev/v1alpha1
kind: ApiPolicy
metadata: {name: orders, namespace: shop}
spec:
  rateLimits:
    - {name: shared-ip, key: {ip: {}}, limit: 5, period: 1m, burst: 2, scope: Global}
    - {name: local-ip, key: {ip: {}}, limit: 100, period: 1m}
  routes:
    - name: shared
      methods: [GET]
      path: /v1/shared
      public: true
      rateLimit: [shared-ip, local-ip]
`;

const PASSWORD = 's3cret-pw';

type Agent = Awaited<ReturnType<typeof startAgent>>;

describe('Global rate limits across two agents and redis-server', { skip: REDIS_SKIP_REASON }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-global-'));
  const policyFile = join(dir, 'policy.yaml');
  let redis: RedisServer;
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  let agents: Agent[] = [];
  let logs = '';

  before(async () => {
    writeFileSync(policyFile, POLICY);
    redis = await RedisServer.start({ password: PASSWORD });
    upstream = await startUpstream();
    const args = ['--redis-url', redis.url, '--redis-timeout', '200'];
    agents = await Promise.all([
      startAgent(policyFile, upstream.port, args),
      startAgent(policyFile, upstream.port, args),
    ]);
    for (const a of agents) collect(a.proc);
  });

  after(async () => {
    for (const a of agents) a.proc.kill('SIGKILL');
    await redis.stop();
    upstream.server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function collect(proc: ChildProcess): void {
    proc.stdout?.on('data', (c: Buffer) => {
      logs += c.toString('utf8');
    });
    proc.stderr?.on('data', (c: Buffer) => {
      logs += c.toString('utf8');
    });
  }

  /** Sends `n` requests alternating between the agents; the statuses in order. */
  async function alternate(n: number): Promise<number[]> {
    const statuses: number[] = [];
    for (let i = 0; i < n; i++) {
      const agent = agents[i % agents.length];
      assert.ok(agent);
      statuses.push((await send(agent.port, '/v1/shared')).status);
    }
    return statuses;
  }

  async function metric(agent: Agent, line: RegExp): Promise<number> {
    const text = (await send(agent.admin, '/metrics')).body;
    const m = line.exec(text);
    return m ? Number(m[1]) : 0;
  }

  const fallbacks = (a: Agent) =>
    metric(a, /^tollgate_ratelimit_fallback_total\{limit="shared-ip"\} (\d+)$/m);
  const storeUp = (a: Agent) => metric(a, /^tollgate_ratelimit_store_up (\d+)$/m);

  test('two agents admit limit + burst in all, then both refuse', async () => {
    const statuses = await alternate(10);
    assert.deepEqual(statuses, [200, 200, 200, 200, 200, 200, 200, 429, 429, 429]);
    for (const a of agents) assert.equal(await fallbacks(a), 0);
    const refused = await send(agents[0]?.port ?? 0, '/v1/shared');
    assert.equal(refused.status, 429);
    assert.equal(refused.headers['ratelimit-limit'], '7');
    assert.ok(Number(refused.headers['retry-after']) >= 1);
  });

  test('Redis killed: requests keep flowing on each local bucket, and the fallback is counted', async () => {
    await redis.stop();
    for (const a of agents) {
      const statuses: number[] = [];
      for (let i = 0; i < 8; i++) statuses.push((await send(a.port, '/v1/shared')).status);
      // Each agent's local bucket for shared-ip was never used: limit + burst each.
      assert.deepEqual(statuses, [200, 200, 200, 200, 200, 200, 200, 429]);
      assert.ok((await fallbacks(a)) >= 8);
      assert.equal(await storeUp(a), 0);
    }
  });

  test('Redis back: the agents recover by themselves and the limit is global again', async () => {
    await redis.restart();
    for (const a of agents) await eventually(async () => (await storeUp(a)) === 1, 15_000);
    const before = await Promise.all(agents.map(fallbacks));
    // The restarted Redis is empty: one fresh shared bucket, whichever agent asks.
    const statuses = await alternate(10);
    assert.deepEqual(statuses, [200, 200, 200, 200, 200, 200, 200, 429, 429, 429]);
    assert.deepEqual(await Promise.all(agents.map(fallbacks)), before, 'no request fell back');
  });

  test('the transitions are logged once each, and the password never', () => {
    const count = (msg: string) => logs.split(msg).length - 1;
    assert.equal(count('global rate limit store unreachable, using local buckets'), 2);
    assert.equal(count('global rate limit store back'), 2);
    assert.ok(!logs.includes(PASSWORD));
  });
});

describe('Global rate limits without a reachable Redis (in process)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-global-local-'));
  const policyFile = join(dir, 'policy.yaml');
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  const running: InProcessAgent[] = [];

  before(async () => {
    writeFileSync(policyFile, POLICY);
    upstream = await startUpstream();
  });

  after(async () => {
    for (const a of running) await a.stop(1000);
    upstream.server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function recording(): Logger & { lines: string[] } {
    const lines: string[] = [];
    const log = (level: string) => (fields: object, msg: string) =>
      lines.push(`${level} ${msg} ${JSON.stringify(fields)}`);
    return { lines, debug: () => {}, info: log('info'), warn: log('warn'), error: log('error') };
  }

  async function start(logger: Logger, redisUrl?: string): Promise<number> {
    const agent = new InProcessAgent(
      {
        policyPath: policyFile,
        upstream: new URL(`http://127.0.0.1:${upstream.port}`),
        listen: { host: '127.0.0.1', port: 0 },
        admin: { host: '127.0.0.1', port: 0 },
        labels: null,
        logLevel: 'info',
        ...(redisUrl ? { redisUrl, redisTimeoutMs: 50 } : {}),
      },
      { logger },
    );
    running.push(agent);
    return (await agent.start()).listen.port;
  }

  async function statuses(port: number, n: number): Promise<number[]> {
    const out: number[] = [];
    for (let i = 0; i < n; i++) out.push((await send(port, '/v1/shared')).status);
    return out;
  }

  test('no --redis-url: Global limits act per sidecar, with one warning at load', async () => {
    const logger = recording();
    const port = await start(logger);
    assert.deepEqual(await statuses(port, 8), [200, 200, 200, 200, 200, 200, 200, 429]);
    const warnings = logger.lines.filter((l) => l.startsWith('warn '));
    assert.equal(warnings.length, 1);
    assert.match(warnings[0] ?? '', /Global rate limits act per sidecar/);
  });

  test('Redis unreachable at start: the agent starts, limits locally, never logs the password', async () => {
    const logger = recording();
    const dead = `redis://app:hunter2@127.0.0.1:${await freePort()}`;
    const startedAt = Date.now();
    const port = await start(logger, dead);
    assert.ok(Date.now() - startedAt < 5_000, 'a dead store does not hold the start for long');
    assert.deepEqual(await statuses(port, 8), [200, 200, 200, 200, 200, 200, 200, 429]);
    const text = logger.lines.join('\n');
    assert.match(text, /warn global rate limit store unreachable, using local buckets/);
    assert.match(text, /Global rate limits shared through Redis .*"up":false/);
    assert.match(text, /redis:\/\/app:redacted@127\.0\.0\.1:/);
    assert.ok(!text.includes('hunter2'));
  });
});
