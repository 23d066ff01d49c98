/**
 * `npm run bench`: throughput, latency and footprint of Tollgate against the
 * same upstream reached directly and through a bare Node proxy, on loopback.
 *
 * Three targets: direct (bench/upstream.ts), baseline (bench/baseline-proxy.ts)
 * and tollgate (the real `bin/tollgate agent` on bench/policy.yaml with a
 * local ES256 JWKS). Pinned like a pod where taskset exists: this process (the
 * load generator) on CPU 0, upstream and proxies on CPU 1.
 *
 * Three cases, each on its own route: `get` (the primary case, judged by the
 * targets), `body-schema` (a POST with a 1 KB JSON body that Tollgate validates
 * against a JSON Schema) and `omit-fields` (a GET whose ~1 KB JSON answer
 * Tollgate minimizes), plus `global-limit` (tollgate only: the GET case on a
 * route whose per-user limit has `scope: Global`, kept in a redis-server the
 * bench starts, pinned with the upstream, and compared with the `get` case's
 * local limit; skipped, and said so in the report, without `redis-server`), and
 * `telemetry` (tollgate only: the GET case on a second agent with the default
 * telemetry a user gets with OTLP on — JSON access log, OTLP traces of every
 * request, metrics, security events as log records, to bench/otlp-sink.ts —
 * compared with the `get` case's agent,
 * telemetry off, of the same run), `mtls` (tollgate only: the GET case over
 * keep-alive mTLS to a second agent started with --tls-cert/--tls-key/
 * --trust-bundle and a Strict policy whose allow rule also requires the load
 * generator's SPIFFE ID, against the same GET in plaintext to the first agent,
 * interleaved in the same run; bench/mtls-case.ts, its own RESULTS.md section
 * from bench/mtls-report.ts) and `rotation` (operator-issued certificates
 * renewed under 1000 req/s of mTLS traffic for 30 s, run after the others on
 * its own processes; bench/rotation.ts, its own section). Every response must
 * have the case's status (200, or 201
 * for the POST); anything else fails the run. Every case's latency at the fixed
 * rate is measured before any saturation window. Rewrites bench/RESULTS.md on a
 * full run. Flags: --quick, --only direct,baseline,tollgate, --cases
 * get,body-schema,omit-fields,global-limit,telemetry,mtls,rotation, --cpu-prof, --rounds N (every case; default 2
 * for get and 1 for the others), --write, --write-telemetry (rewrite only the
 * telemetry section of bench/RESULTS.md: with --cases get,telemetry), --agent-node-options
 * "V8/node flags for the agent only". Children run in their own process groups and are killed
 * on any exit.
 */

import { execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { cpus, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startIssuer } from './issuer.ts';
import { type ClientTls, type Counts, maxThroughput, type PacedResult, type RequestShape } from './load.ts';
import { httpsGet, MTLS_CLIENT_ID, MTLS_MODE, MTLS_OTHER_ID, negotiated, prepareMtls } from './mtls-case.ts';
import { type MtlsReport, mtlsSection, mtlsSummary } from './mtls-report.ts';
import {
  affinityOf,
  BenchChild,
  canPin,
  killAllChildren,
  pinSelf,
  rssMiB,
  stopAllChildren,
  UsageSampler,
} from './procs.ts';
import { summarizeFile } from './profile-summary.ts';
import {
  type CaseInfo,
  type CaseResult,
  type GlobalLimitReport,
  type Meta,
  ratios,
  renderMarkdown,
  renderSummary,
  summarize,
  type TargetName,
  type TargetRun,
} from './report.ts';
import { keptSections, withHeadingSection, writeSection } from './results-section.ts';
import { runRotation } from './rotation.ts';
import { type SinkStats, type TelemetryReport, telemetrySection } from './telemetry-report.ts';

const root = new URL('..', import.meta.url).pathname;
const bench = join(root, 'bench');
const ALL: TargetName[] = ['direct', 'baseline', 'tollgate'];
const CONNECTIONS = 32;
const RATE = 1000;
const SUB = 'bench-user';
const AUDIENCE = 'bench-api';

/** A valid create-order body for the body-schema route, padded (`note`) to exactly `bytes` bytes. */
function orderBody(bytes: number): Record<string, unknown> {
  const base = {
    sku: 'SKU-1042-B',
    quantity: 3,
    currency: 'EUR',
    giftWrap: false,
    couponCode: 'WINTER2026',
    shipTo: {
      name: 'Bench User',
      line1: '12 Example Street',
      city: 'Berlin',
      postalCode: '10115',
      country: 'DE',
    },
    note: '',
  };
  return { ...base, note: 'x'.repeat(Math.max(0, bytes - JSON.stringify(base).length)) };
}
const ORDER = orderBody(1024);
const ORDER_JSON = JSON.stringify(ORDER);
/** Fields the omit-fields route removes (bench/policy.yaml: internalCost, supplier.contact, items.cost). */
const OMITTED = ['internalCost', 'supplier.contact', 'items[].cost'];

interface BenchCase extends CaseInfo {
  path: string;
  shape: RequestShape;
  /** Extra request headers (Content-Type for a body). */
  headers: Record<string, string>;
  /** Measured on tollgate alone (direct and baseline have no policy to compare with). */
  tollgateOnly?: boolean;
}

const CASE_IDS = [
  'get',
  'body-schema',
  'omit-fields',
  'global-limit',
  'telemetry',
  'mtls',
  'rotation',
] as const;
type CaseId = (typeof CASE_IDS)[number];

function parseFlags() {
  try {
    return parseArgs({
      options: {
        quick: { type: 'boolean', default: false },
        only: { type: 'string' },
        cases: { type: 'string' },
        'cpu-prof': { type: 'boolean', default: false },
        rounds: { type: 'string' },
        write: { type: 'boolean', default: false },
        'write-telemetry': { type: 'boolean', default: false },
        'agent-node-options': { type: 'string' },
      },
    }).values;
  } catch (e) {
    process.stderr.write(
      `bench: ${(e as Error).message}\n` +
        'usage: npm run bench -- [--quick] [--only direct,baseline,tollgate]\n' +
        '       [--cases get,body-schema,omit-fields,global-limit,telemetry,mtls,rotation]\n' +
        '       [--cpu-prof] [--rounds N] [--write] [--write-telemetry]\n' +
        "       [--agent-node-options='--v8-flag ...'] (a value starting with - needs the = form)\n",
    );
    process.exit(2);
  }
}
const flags = parseFlags();
const only = (flags.only ?? ALL.join(',')).split(',').map((s) => s.trim());
for (const name of only) {
  if (!ALL.includes(name as TargetName)) {
    process.stderr.write(`bench: --only takes ${ALL.join(',')}; got ${JSON.stringify(name)}\n`);
    process.exit(2);
  }
}
const selected = ALL.filter((n) => only.includes(n));
const onlyCases = (flags.cases ?? CASE_IDS.join(',')).split(',').map((s) => s.trim());
for (const id of onlyCases) {
  if (!CASE_IDS.includes(id as CaseId)) {
    process.stderr.write(`bench: --cases takes ${CASE_IDS.join(',')}; got ${JSON.stringify(id)}\n`);
    process.exit(2);
  }
}
const quick = flags.quick ?? false;
const cpuProf = flags['cpu-prof'] ?? false;
const plan = {
  warmupS: quick ? 1 : 2,
  maxS: quick ? 3 : 8,
  pacedWarmS: 1,
  pacedS: quick ? 3 : 8,
  rounds: Math.max(1, Math.min(5, Number(flags.rounds ?? (quick ? 1 : 2)) || 1)),
  /** The body-schema and omit-fields cases: one round unless --rounds says otherwise (keeps a full run ≲ 5 min). */
  extraRounds: flags.rounds === undefined ? 1 : Math.max(1, Math.min(5, Number(flags.rounds) || 1)),
};

const CASES: BenchCase[] = (
  [
    {
      id: 'get',
      title: 'GET, small JSON answer',
      path: `/v1/users/${SUB}/orders/7`,
      shape: {},
      headers: {},
      request: `\`GET /v1/users/${SUB}/orders/7\` → 200 with a 70-byte JSON body`,
      route:
        'route `get-order`: ES256 JWT, CEL `params.userId == claims.sub`, per-user rate limit, claim header',
      rounds: plan.rounds,
    },
    {
      id: 'body-schema',
      title: 'POST with a 1 KB JSON body validated by a JSON Schema',
      path: `/v1/users/${SUB}/orders`,
      shape: { method: 'POST', body: ORDER_JSON, okStatus: 201 },
      headers: { 'content-type': 'application/json' },
      request:
        `\`POST /v1/users/${SUB}/orders\` with a ${Buffer.byteLength(ORDER_JSON)}-byte \`application/json\` body ` +
        '(sku, quantity, currency, giftWrap, couponCode, shipTo{5 fields}, note) → 201 after the upstream read it',
      route:
        "route `create-order`: the GET case's JWT/CEL/rate limit, plus `request.contentTypes: [application/json]`, " +
        '`maxBodyBytes: 16Ki` and a `body` JSON Schema (7 properties, a nested object, required fields, 3 patterns, ' +
        'integer min/max, enum, maxLength, `additionalProperties: false` at both levels)',
      rounds: plan.extraRounds,
    },
    {
      id: 'omit-fields',
      title: 'GET with a ~1 KB JSON answer minimized by omitFields',
      path: `/v1/users/${SUB}/orders/7/details`,
      shape: {},
      headers: {},
      request: `\`GET /v1/users/${SUB}/orders/7/details\` → 200 with a ~1 KB JSON body (6 items)`,
      route:
        "route `get-order-details`: the GET case's JWT/CEL/rate limit, plus " +
        '`response.omitFields: [internalCost, supplier.contact, items.cost]` (the answer is buffered, parsed, ' +
        'filtered and serialized again)',
      rounds: plan.extraRounds,
    },
    {
      id: 'global-limit',
      title: 'GET with a `scope: Global` rate limit in Redis (tollgate only, against the get case)',
      path: `/v1/users/${SUB}/global-orders/7`,
      shape: {},
      headers: {},
      tollgateOnly: true,
      request: `\`GET /v1/users/${SUB}/global-orders/7\` → 200 with the get case's 70-byte JSON body`,
      route:
        "route `get-order-global`: the get case's JWT/CEL/claim header, its per-user limit with " +
        '`scope: Global` (one Lua script round trip per request to a local `redis-server`, agent flag `--redis-url`)',
      rounds: plan.rounds,
    },
    {
      id: 'telemetry',
      title: 'GET with telemetry on (tollgate only, against the get case with telemetry off)',
      path: `/v1/users/${SUB}/orders/7`,
      shape: {},
      headers: {},
      tollgateOnly: true,
      request: `the get case's \`GET /v1/users/${SUB}/orders/7\` → 200`,
      route:
        'Same route and policy as the get case, on a second agent process started with OpenTelemetry on: ' +
        'a sampled SERVER span per request (parentbased_always_on), the metrics registry exported every 5 s, ' +
        'a JSON access line per request, security events as OTLP log records (access lines as log records ' +
        'are opt-in, `--access-log-otlp on`), all OTLP over http/protobuf to a local sink ' +
        '(bench/otlp-sink.ts, which reads and counts the exports without decoding them, pinned with the load ' +
        'generators on CPU 0, away from the agent and the upstream on CPU 1: a collector runs elsewhere; its ' +
        'CPU is sampled with the agent and shown below)',
      rounds: plan.rounds,
    },
    {
      id: 'mtls',
      title: 'GET over keep-alive mTLS against the same GET in plaintext (tollgate only)',
      path: `/v1/users/${SUB}/orders/7`,
      shape: {},
      headers: {},
      tollgateOnly: true,
      request: `the get case's \`GET /v1/users/${SUB}/orders/7\` (same Bearer token) → 200`,
      route:
        "The get case's route and policy on a second agent started with `--tls-cert`, `--tls-key` and " +
        `\`--trust-bundle\`, the policy with \`mtls: {mode: ${MTLS_MODE}}\` and \`peers: [${MTLS_CLIENT_ID}]\` added to ` +
        "the allow rule (JWT, CEL and peer must all hold); plaintext = the same request to the get case's agent.",
      rounds: plan.rounds,
    },
    {
      id: 'rotation',
      title: 'Certificate rotation under continuous mTLS traffic (operator-issued identity)',
      path: '/v1/invoices',
      shape: {},
      headers: {},
      tollgateOnly: true,
      request: '`GET /v1/invoices` over keep-alive mTLS, paced',
      route: 'see its section',
      rounds: 1,
    },
  ] satisfies BenchCase[]
).filter((c) => onlyCases.includes(c.id));

const log = (msg: string) => process.stderr.write(`› ${msg}\n`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Fails the run loudly when anything but the expected status came back. */
function assertClean(label: string, c: Counts, status = 200): void {
  if (c.ok > 0 && c.bad === 0 && c.errors === 0 && c.timeouts === 0) return;
  throw new Error(
    `${label}: not every response was a ${status} — ok ${c.ok}, other statuses ${c.bad} ` +
      `${JSON.stringify(c.statuses)}, errors ${c.errors}${c.firstError ? ` (first: ${c.firstError})` : ''}, timeouts ${c.timeouts}. The numbers would be meaningless.`,
  );
}

async function freePorts(n: number): Promise<number[]> {
  const servers = Array.from({ length: n }, () => createServer());
  const ports = await Promise.all(
    servers.map(
      (s) =>
        new Promise<number>((resolve, reject) => {
          s.once('error', reject);
          s.listen(0, '127.0.0.1', () => resolve((s.address() as AddressInfo).port));
        }),
    ),
  );
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

async function waitReady(url: string, child: BenchChild, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!child.running) throw new Error(`${child.name} exited while starting:\n${child.tail()}`);
    try {
      const res = await fetch(url);
      await res.arrayBuffer();
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  throw new Error(`${child.name}: ${url} not ready after ${timeoutMs} ms:\n${child.tail()}`);
}

async function expectStatus(
  label: string,
  url: string,
  init: { headers: Record<string, string>; method?: string; body?: string },
  status: number,
  check?: (res: Response, text: string) => string | null,
): Promise<void> {
  const res = await fetch(url, init);
  const text = await res.text();
  if (res.status !== status)
    throw new Error(`preflight ${label}: expected ${status}, got ${res.status} ${text.slice(0, 300)}`);
  const problem = check?.(res, text);
  if (problem) throw new Error(`preflight ${label}: ${problem}`);
}

/** Which of the omitted fields a JSON answer of the omit-fields case still holds. */
function omittedPresent(text: string): string[] {
  const doc = JSON.parse(text) as {
    internalCost?: unknown;
    supplier?: { contact?: unknown; name?: unknown };
    items?: Array<{ cost?: unknown; sku?: unknown }>;
  };
  if (typeof doc.supplier?.name !== 'string' || !Array.isArray(doc.items) || doc.items.length === 0)
    throw new Error(`the omit-fields answer lost more than the omitted fields: ${text.slice(0, 200)}`);
  const present: string[] = [];
  if ('internalCost' in doc) present.push('internalCost');
  if ('contact' in doc.supplier) present.push('supplier.contact');
  if (doc.items.some((i) => 'cost' in i)) present.push('items[].cost');
  return present;
}

function commandExists(name: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** One raw RESP command to 127.0.0.1:port; resolves with the whole reply text (read until `done` says so). */
function resp(
  port: number,
  args: string[],
  done: (reply: string) => boolean,
  timeoutMs = 2_000,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let reply = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(
        new Error(`redis ${args[0]}: no complete reply in ${timeoutMs} ms (got ${JSON.stringify(reply)})`),
      );
    }, timeoutMs);
    socket.setEncoding('utf8');
    socket.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    socket.on('data', (chunk: string) => {
      reply += chunk;
      if (done(reply)) {
        clearTimeout(timer);
        socket.destroy();
        resolve(reply);
      }
    });
    socket.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`);
  });
}

/** The keys matching `pattern` (raw RESP KEYS; the bench's Redis holds a handful). */
async function redisKeys(port: number, pattern: string): Promise<string[]> {
  const complete = (r: string) => {
    const m = /^\*(-?\d+)\r\n/.exec(r);
    if (!m) return r.startsWith('-') && r.endsWith('\r\n');
    return r.split('\r\n').length - 2 >= Number(m[1]) * 2;
  };
  const reply = await resp(port, ['KEYS', pattern], complete);
  if (reply.startsWith('-')) throw new Error(`redis KEYS: ${reply.trim()}`);
  return reply
    .split('\r\n')
    .slice(1)
    .filter((line, i) => i % 2 === 1 && line !== '');
}

/** Starts redis-server on a free port, pinned with the upstream (CPU 1); resolves once it answers PING. */
async function startRedis(): Promise<{ process: BenchChild; port: number }> {
  for (let attempt = 1; ; attempt += 1) {
    const [port] = await freePorts(1);
    if (port === undefined) throw new Error('no free port for redis-server');
    const child = new BenchChild(
      'redis-server',
      'redis-server',
      ['--port', String(port), '--save', '', '--appendonly', 'no', '--bind', '127.0.0.1'],
      { cpu: 1 },
    );
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && child.running) {
      try {
        if ((await resp(port, ['PING'], (r) => r.endsWith('\r\n'), 500)).startsWith('+PONG'))
          return { process: child, port };
      } catch {
        // not listening yet
      }
      await sleep(100);
    }
    const tail = child.tail();
    await child.stop();
    if (attempt >= 3 || !/Address already in use/i.test(tail))
      throw new Error(`redis-server did not answer PING on port ${port}:\n${tail}`);
  }
}

function infoOf(c: BenchCase): CaseInfo {
  const { path: _path, shape: _shape, headers: _headers, tollgateOnly: _only, ...info } = c;
  return info;
}

const mean = (xs: number[]) => (xs.length === 0 ? Number.NaN : xs.reduce((a, b) => a + b, 0) / xs.length);

interface Target {
  name: TargetName;
  /** http://HOST:PORT */
  origin: string;
  process: BenchChild;
  /** tollgate's admin listener (http://HOST:PORT), for /metrics. */
  admin?: string;
  /** The client certificate an https `origin` wants (the mtls case's agent), as PEM and as files. */
  tls?: { client: ClientTls; files: { cert: string; key: string; ca: string } };
}

/** Sum of a Prometheus counter's series in tollgate's /metrics (0 when absent). */
async function metricSum(admin: string, name: string): Promise<number> {
  const text = await (await fetch(`${admin}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n'))
    if (line.startsWith(name) && /^[^ {]+(\{[^}]*\})? /.test(line) && line.split(/[ {]/)[0] === name)
      sum += Number(line.slice(line.lastIndexOf(' ') + 1)) || 0;
  return sum;
}

function cpuModel(): string {
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    return m?.[1]?.trim() ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

const agentNode = join(root, 'node_modules/node/bin/node');
const agentNodeOptions = flags['agent-node-options'];
/** NODE_OPTIONS for the agent only (e.g. "--max-semi-space-size=4"), to try V8 settings. */
const agentEnv: NodeJS.ProcessEnv =
  agentNodeOptions === undefined
    ? process.env
    : { ...process.env, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} ${agentNodeOptions}`.trim() };

function agentNodeVersion(): string {
  try {
    return execFileSync(existsSync(agentNode) ? agentNode : 'node', ['--version'], {
      encoding: 'utf8',
    }).trim();
  } catch {
    return 'unknown';
  }
}

/** When each agent was spawned, by profile name (its profile starts then). */
const spawnedAt = new Map<string, number>();

/** A run whose own sections (mtls, rotation) may be written without --write: nothing that skews the figures. */
const sectionsWritable = !quick && !cpuProf && agentNodeOptions === undefined;

/** The telemetry case's OTEL_* environment: everything exported over http/protobuf to the sink. */
function telemetryEnv(sink: string): Record<string, string> {
  return {
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://${sink}`,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
    OTEL_SERVICE_NAME: 'bench-orders',
    OTEL_METRIC_EXPORT_INTERVAL: '5000',
    POD_NAME: 'bench-orders-0',
    POD_NAMESPACE: 'bench',
  };
}

interface TollgateOptions {
  redisUrl: string | null;
  /** Added to the agent's environment (OTEL_*). */
  env?: NodeJS.ProcessEnv;
  /** Default warn (no access log). */
  logLevel?: string;
  /** Stdout to /dev/null (the access log of the telemetry case). */
  discardStdout?: boolean;
  /** More agent flags (the mtls case's `--tls-cert` …). */
  extraArgs?: string[];
  /** Makes the target https, with this client certificate. */
  tls?: Target['tls'];
}

async function startTollgate(
  policyPath: string,
  upstream: string,
  profileName: string,
  options: TollgateOptions,
): Promise<Target> {
  const { redisUrl } = options;
  const env = options.env ? { ...agentEnv, ...options.env } : agentEnv;
  const discardStdout = options.discardStdout ?? false;
  if (!existsSync(join(root, 'dist/cli/main.js')))
    throw new Error('dist/ is missing: run `npm run build` first');
  for (let attempt = 1; ; attempt += 1) {
    const [listen, admin] = await freePorts(2);
    spawnedAt.set(profileName, performance.now());
    const agentArgs = [
      'agent',
      '--policy',
      policyPath,
      '--upstream',
      upstream,
      '--listen',
      `127.0.0.1:${listen}`,
      '--admin',
      `127.0.0.1:${admin}`,
      '--log-level',
      options.logLevel ?? 'warn',
      ...(redisUrl ? ['--redis-url', redisUrl] : []),
      ...(options.extraArgs ?? []),
    ];
    // Through bin/tollgate in every case, so a profiled agent runs with the launcher's V8 flags too.
    const profiling = `--enable-source-maps --cpu-prof "--cpu-prof-dir=${join(bench, 'profiles')}" --cpu-prof-name=${profileName} --cpu-prof-interval=250`;
    const childEnv = cpuProf
      ? { ...env, NODE_OPTIONS: `${env.NODE_OPTIONS ?? ''} ${profiling}`.trim() }
      : env;
    const child = new BenchChild('tollgate', join(root, 'bin/tollgate'), agentArgs, {
      cpu: 1,
      env: childEnv,
      discardStdout,
    });
    try {
      await waitReady(`http://127.0.0.1:${admin}/readyz`, child, 15_000);
      return {
        name: 'tollgate',
        origin: `${options.tls ? 'https' : 'http'}://127.0.0.1:${listen}`,
        process: child,
        admin: `http://127.0.0.1:${admin}`,
        ...(options.tls ? { tls: options.tls } : {}),
      };
    } catch (e) {
      await child.stop();
      // The ports were free a moment ago; another process may have taken one in between.
      if (attempt >= 3 || !/EADDRINUSE/.test(String(e))) throw e;
    }
  }
}

async function main(): Promise<void> {
  const started = Date.now();
  const cores = cpus().length;
  const selfPinned = pinSelf(0);
  const pinning = selfPinned
    ? 'taskset: load generators (autocannon in the runner, bench/paced-client.ts) on CPU 0; upstream and proxies on CPU 1'
    : canPin
      ? 'taskset present but pinning this process failed: unpinned'
      : `taskset unavailable (or < 2 CPUs: ${cores}): nothing pinned, all processes share the CPUs`;
  log(pinning);

  const issuer = await startIssuer(AUDIENCE);
  const tmp = mkdtempSync(join(tmpdir(), 'tollgate-bench-'));
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const profileName = `tollgate-${stamp}.cpuprofile`;
  const otelProfileName = `tollgate-otel-${stamp}.cpuprofile`;
  if (cpuProf) mkdirSync(join(bench, 'profiles'), { recursive: true });
  try {
    const token = await issuer.sign({ sub: SUB, scope: 'orders:read' }, 3000);
    const auth = { authorization: `Bearer ${token}` };
    const policyPath = join(tmp, 'policy.yaml');
    writeFileSync(
      policyPath,
      readFileSync(join(bench, 'policy.yaml'), 'utf8').replaceAll('JWKS_ORIGIN', issuer.origin),
    );

    const upstream = new BenchChild('upstream', process.execPath, [join(bench, 'upstream.ts')], { cpu: 1 });
    const upstreamAddr = await upstream.jsonField('listen', 10_000);
    const upstreamOrigin = `http://${upstreamAddr}`;
    // The global-limit case needs tollgate and a redis-server; without either it is skipped, and said so.
    const wantGlobal = CASES.some((c) => c.id === 'global-limit');
    const globalSkip = !wantGlobal
      ? null
      : !selected.includes('tollgate')
        ? 'tollgate is not among the targets (--only)'
        : !commandExists('redis-server')
          ? '`redis-server` is not on PATH (install Redis, e.g. `apt-get install redis-server`, to measure it)'
          : null;
    if (wantGlobal && globalSkip) log(`global-limit case SKIPPED: ${globalSkip}`);
    // The telemetry case needs tollgate (under --cpu-prof its agent profiles into its own file).
    const wantTelemetry = CASES.some((c) => c.id === 'telemetry');
    const telemetrySkip = !wantTelemetry
      ? null
      : !selected.includes('tollgate')
        ? 'tollgate is not among the targets (--only)'
        : null;
    if (wantTelemetry && telemetrySkip) log(`telemetry case SKIPPED: ${telemetrySkip}`);
    // The mtls case needs tollgate; under --cpu-prof a second agent would profile into the same file.
    const wantMtls = CASES.some((c) => c.id === 'mtls');
    const mtlsSkip = !wantMtls
      ? null
      : !selected.includes('tollgate')
        ? 'tollgate is not among the targets (--only)'
        : cpuProf
          ? 'not measured under --cpu-prof'
          : null;
    if (wantMtls && mtlsSkip) log(`mtls case SKIPPED: ${mtlsSkip}`);
    // rotation is not a load case of these targets: it runs on its own after them (bench/rotation.ts).
    const measured = CASES.filter(
      (c) =>
        c.id !== 'rotation' &&
        (c.id !== 'global-limit' || globalSkip === null) &&
        (c.id !== 'telemetry' || telemetrySkip === null) &&
        (c.id !== 'mtls' || mtlsSkip === null),
    );
    const redis = wantGlobal && globalSkip === null ? await startRedis() : null;
    if (redis) log(`redis-server pid ${redis.process.pid} on 127.0.0.1:${redis.port}`);
    const targets: Target[] = [];
    for (const name of selected) {
      if (name === 'direct') targets.push({ name, origin: upstreamOrigin, process: upstream });
      if (name === 'baseline') {
        const child = new BenchChild(
          'baseline',
          process.execPath,
          [join(bench, 'baseline-proxy.ts'), '--upstream', upstreamOrigin],
          { cpu: 1 },
        );
        targets.push({ name, origin: `http://${await child.jsonField('listen', 10_000)}`, process: child });
      }
      if (name === 'tollgate')
        targets.push(
          await startTollgate(policyPath, upstreamOrigin, profileName, {
            redisUrl: redis ? `redis://127.0.0.1:${redis.port}` : null,
          }),
        );
    }
    const sink =
      wantTelemetry && telemetrySkip === null
        ? new BenchChild('otlp-sink', process.execPath, [join(bench, 'otlp-sink.ts')], { cpu: 0 })
        : null;
    const sinkAddr = sink ? await sink.jsonField('listen', 10_000) : null;
    const otelTarget = sinkAddr
      ? await startTollgate(policyPath, upstreamOrigin, otelProfileName, {
          redisUrl: null,
          env: telemetryEnv(sinkAddr),
          logLevel: 'info',
          discardStdout: true,
        })
      : null;
    const mtls =
      wantMtls && mtlsSkip === null ? await prepareMtls(tmp, readFileSync(policyPath, 'utf8')) : null;
    const mtlsTarget = mtls
      ? await startTollgate(mtls.policyPath, upstreamOrigin, profileName, {
          redisUrl: null,
          extraArgs: mtls.agentArgs,
          tls: { client: mtls.client, files: mtls.clientFiles },
        })
      : null;
    log(
      `started: ${[...targets, ...(otelTarget ? [otelTarget] : []), ...(mtlsTarget ? [mtlsTarget] : [])]
        .map(
          (t) =>
            `${t.name}${t === otelTarget ? '+otel' : t === mtlsTarget ? '+mtls' : ''} ${new URL(t.origin).host} (pid ${t.process.pid})`,
        )
        .join(', ')}${sink ? `, otlp-sink ${sinkAddr} (pid ${sink.pid})` : ''}`,
    );

    // Preflight: the same requests succeed everywhere, and Tollgate really enforces the policy.
    let globalKeys: string[] = [];
    const byId = new Map(measured.map((c) => [c.id, c]));
    const targetsFor = (c: BenchCase) =>
      c.id === 'telemetry'
        ? otelTarget
          ? [otelTarget]
          : []
        : c.id === 'mtls'
          ? [...targets.filter((t) => t.name === 'tollgate'), ...(mtlsTarget ? [mtlsTarget] : [])]
          : c.tollgateOnly
            ? targets.filter((t) => t.name === 'tollgate')
            : targets;
    const seenUser = (t: Target) => (res: Response) =>
      t.name === 'tollgate' && res.headers.get('x-seen-user-id') !== SUB
        ? `the upstream did not receive x-user-id: ${SUB} (got ${res.headers.get('x-seen-user-id')})`
        : null;
    for (const t of targets) {
      const get = byId.get('get');
      if (get) {
        const url = t.origin + get.path;
        await expectStatus(`${t.name} with token`, url, { headers: auth }, 200, seenUser(t));
        if (t.name === 'tollgate') {
          await expectStatus('tollgate without token', url, { headers: {} }, 401);
          await expectStatus(
            'tollgate, another user (BOLA)',
            url.replace(SUB, 'someone-else'),
            { headers: auth },
            403,
          );
        }
      }
      const post = byId.get('body-schema');
      if (post) {
        const url = t.origin + post.path;
        const headers = { ...auth, ...post.headers };
        const bytes = String(Buffer.byteLength(ORDER_JSON));
        await expectStatus(
          `${t.name} body-schema POST`,
          url,
          { headers, method: 'POST', body: ORDER_JSON },
          201,
          (res) =>
            res.headers.get('x-seen-body-bytes') !== bytes
              ? `the upstream read ${res.headers.get('x-seen-body-bytes')} body bytes, not ${bytes}`
              : seenUser(t)(res),
        );
        if (t.name === 'tollgate') {
          for (const [label, body] of [
            ['quantity over its maximum', { ...ORDER, quantity: 1000 }],
            ['an unknown property', { ...ORDER, discount: 50 }],
            ['a sku not matching its pattern', { ...ORDER, sku: 'lower case!' }],
            ['a missing required field', { ...ORDER, shipTo: undefined }],
          ] as const)
            await expectStatus(
              `tollgate body-schema, invalid body (${label})`,
              url,
              { headers, method: 'POST', body: JSON.stringify(body) },
              400,
              (res) =>
                res.headers.get('content-type')?.startsWith('application/problem+json')
                  ? null
                  : `not a problem+json answer (${res.headers.get('content-type')})`,
            );
          await expectStatus(
            'tollgate body-schema, text/plain body',
            url,
            { headers: { ...auth, 'content-type': 'text/plain' }, method: 'POST', body: ORDER_JSON },
            415,
          );
        }
      }
      const global = byId.get('global-limit');
      if (global && redis && t.name === 'tollgate') {
        await expectStatus(
          'tollgate global-limit GET',
          t.origin + global.path,
          { headers: auth },
          200,
          (res) =>
            res.headers.get('ratelimit-limit') === null ? 'no RateLimit-Limit header' : seenUser(t)(res),
        );
        // A bucket of 10M tokens/s is full again ~2 ms after a take, and its key expires then: look for it
        // while 4 loops of requests keep it alive (the first calls may also go to the local buckets while the
        // agent's Redis connection opens).
        const found = (ks: string[]) => ks.some((k) => k.includes(':per-user-global:'));
        let keys: string[] = [];
        let stop = false;
        const loops = Array.from({ length: 4 }, async () => {
          while (!stop)
            await expectStatus('tollgate global-limit GET', t.origin + global.path, { headers: auth }, 200);
        });
        try {
          for (const deadline = Date.now() + 5_000; Date.now() < deadline && !found(keys); ) {
            await sleep(20);
            keys = await redisKeys(redis.port, 'tollgate:*');
          }
        } finally {
          stop = true;
          await Promise.all(loops);
        }
        if (!found(keys))
          throw new Error(
            `preflight tollgate global-limit: no per-user-global bucket in Redis (KEYS tollgate:* → ${JSON.stringify(keys)}); agent output:\n${t.process.tail()}`,
          );
        globalKeys = keys;
      }
      const omit = byId.get('omit-fields');
      if (omit) {
        await expectStatus(
          `${t.name} omit-fields GET`,
          t.origin + omit.path,
          { headers: auth },
          200,
          (res, text) => {
            const present = omittedPresent(text);
            if (t.name === 'tollgate')
              return present.length > 0
                ? `tollgate left ${present.join(', ')} in the answer`
                : seenUser(t)(res);
            const missing = OMITTED.filter((x) => !present.includes(x));
            return missing.length > 0
              ? `${t.name}'s answer lacks ${missing.join(', ')}: the case tests nothing`
              : null;
          },
        );
      }
    }
    if (otelTarget) {
      const url = otelTarget.origin + (byId.get('telemetry')?.path ?? '');
      await expectStatus('tollgate+otel with token', url, { headers: auth }, 200, seenUser(otelTarget));
      await expectStatus('tollgate+otel without token', url, { headers: {} }, 401);
    }
    let mtlsNegotiated = '';
    if (mtls && mtlsTarget) {
      const url = mtlsTarget.origin + (byId.get('mtls')?.path ?? '');
      const ok = await httpsGet(url, auth, mtls.client);
      if (ok.status !== 200 || ok.headers['x-seen-user-id'] !== SUB)
        throw new Error(
          `preflight tollgate+mtls: expected 200 with x-seen-user-id ${SUB}, got ${ok.status} ${ok.body.slice(0, 300)}`,
        );
      await expectStatus(
        `tollgate+mtls, plaintext (${MTLS_MODE})`,
        url.replace(/^https:/, 'http:'),
        { headers: auth },
        403,
      );
      for (const [label, headers, client, status] of [
        [`another peer (${MTLS_OTHER_ID})`, auth, mtls.other, 403],
        ['without token', {}, mtls.client, 401],
      ] as const) {
        const got = await httpsGet(url, headers, client);
        if (got.status !== status)
          throw new Error(
            `preflight tollgate+mtls ${label}: expected ${status}, got ${got.status} ${got.body.slice(0, 300)}`,
          );
      }
      mtlsNegotiated = await negotiated('127.0.0.1', Number(new URL(url).port), mtls.client);
    }
    log(
      `preflight ok (${measured.map((c) => c.id).join(', ')}): expected statuses on every target; tollgate ` +
        'answers 401 without a token, 403 for another user, 400 to invalid bodies, 415 to text/plain, ' +
        'and omits internalCost, supplier.contact and items[].cost' +
        (mtlsTarget
          ? `; the mTLS agent answers 403 to plaintext and to another peer (${mtlsNegotiated})`
          : '') +
        (globalKeys.length > 0 ? `; the Global limit's bucket is in Redis (${globalKeys.join(', ')})` : ''),
    );

    const labelOf = (t: Target) => `${t.name}${t === otelTarget ? '+otel' : t === mtlsTarget ? '+mtls' : ''}`;
    const alive = (t: Target) => {
      for (const c of [t.process, upstream, ...(redis ? [redis.process] : [])])
        if (!c.running) throw new Error(`${c.name} (pid ${c.pid}) died during the bench:\n${c.tail()}`);
    };
    const caseHeaders = (c: BenchCase) => ({ ...auth, ...c.headers });
    const tollgateAdmin = targets.find((t) => t.name === 'tollgate')?.admin;
    const FALLBACK = 'tollgate_ratelimit_fallback_total';
    const fallbacksBefore = redis && tollgateAdmin ? await metricSum(tollgateAdmin, FALLBACK) : 0;
    await sleep(1_000);
    const loadStartedAt = performance.now();
    const allTargets = [...targets, ...(otelTarget ? [otelTarget] : []), ...(mtlsTarget ? [mtlsTarget] : [])];
    const rssAfterStart = new Map(allTargets.map((t) => [t.process.pid, rssMiB(t.process.pid)]));
    for (const c of measured) {
      for (const t of targetsFor(c)) {
        alive(t);
        log(`warm-up ${c.id} ${labelOf(t)} (${plan.warmupS} s)`);
        assertClean(
          `${c.id} ${t.name} warm-up`,
          await maxThroughput(t.origin + c.path, caseHeaders(c), {
            connections: CONNECTIONS,
            durationS: plan.warmupS,
            tls: t.tls?.client,
            ...c.shape,
          }),
          c.shape.okStatus,
        );
      }
    }
    await sleep(1_500);
    const rssIdle = new Map(allTargets.map((t) => [t.process.pid, rssMiB(t.process.pid)]));
    const runs = new Map<string, TargetRun[]>(
      measured.map((c) => [
        c.id,
        targetsFor(c).map((t) => ({
          name: t.name,
          pid: t.process.pid,
          affinity: affinityOf(t.process.pid),
          rssAfterStartMiB: rssAfterStart.get(t.process.pid) ?? Number.NaN,
          rssIdleMiB: rssIdle.get(t.process.pid) ?? Number.NaN,
          max: [],
          paced: [],
        })),
      ]),
    );
    const runOf = (c: BenchCase, t: Target) => {
      // By process: the mtls case measures two tollgate agents.
      const run = runs.get(c.id)?.find((r) => r.pid === t.process.pid);
      if (!run) throw new Error(`no run for ${c.id} ${t.name}`);
      return run;
    };
    // The global-limit case also samples redis-server, the telemetry case the OTLP sink (third process):
    // its CPU is reported (and not counted as foreign).
    const pidsOf = (t: Target, c: BenchCase) =>
      t.name === 'direct'
        ? [t.process.pid]
        : [
            t.process.pid,
            upstream.pid,
            ...(c.id === 'global-limit' && redis ? [redis.process.pid] : []),
            ...(c.id === 'telemetry' && sink ? [sink.pid] : []),
          ];
    const redisCpu = { paced: [] as number[], max: [] as number[] };
    const sinkCpu = { paced: [] as number[], max: [] as number[] };
    const sideCpu = (c: BenchCase) => (c.id === 'telemetry' ? sinkCpu : redisCpu);
    // Rounds interleave the targets (reversed every other round) so a drift of the machine hits all alike.
    const order = (c: BenchCase, round: number) =>
      round % 2 === 0 ? targetsFor(c) : [...targetsFor(c)].reverse();
    // Round 1 of every case, then round 2 of every case in the reverse order...: cases compared with each
    // other (telemetry on vs the get case, global vs local limits) are measured close in time, neither
    // always first, so a drift hits both alike.
    const schedule: [BenchCase, number][] = [];
    for (let round = 0; round < Math.max(...measured.map((c) => c.rounds)); round += 1)
      for (const c of round % 2 === 0 ? measured : [...measured].reverse())
        if (round < c.rounds) schedule.push([c, round]);

    // Latency first, every case: the steady 1000 req/s state, before saturation grows the heaps (whose
    // later major GCs would otherwise land in the latency windows).
    for (const [c, round] of schedule) {
      for (const t of order(c, round)) {
        alive(t);
        log(
          `${c.id} round ${round + 1}/${c.rounds}: ${RATE} req/s ${labelOf(t)} (${plan.pacedWarmS} s + ${plan.pacedS} s)`,
        );
        const client = new BenchChild(
          'paced-client',
          process.execPath,
          [
            join(bench, 'paced-client.ts'),
            '--url',
            t.origin + c.path,
            '--rate',
            String(RATE),
            '--warmup',
            String(plan.pacedWarmS),
            '--duration',
            String(plan.pacedS),
            ...Object.entries(caseHeaders(c)).flatMap(([k, v]) => ['--header', `${k}: ${v}`]),
            ...(c.shape.method ? ['--method', c.shape.method] : []),
            ...(c.shape.body !== undefined ? ['--body', c.shape.body] : []),
            ...(c.shape.okStatus ? ['--status', String(c.shape.okStatus)] : []),
            ...(t.tls
              ? [
                  ...['--cert', t.tls.files.cert, '--key', t.tls.files.key, '--ca', t.tls.files.ca],
                  ...['--servername', t.tls.client.servername],
                ]
              : []),
            // Keep-alive compared like for like: no connection idles into the agent's 5 s keep-alive
            // timeout, which would put a reconnect (a handshake, for mTLS) inside the window.
            ...(c.id === 'mtls' ? ['--round-robin'] : []),
          ],
          { cpu: 0 },
        );
        try {
          const warmup = await client.waitJson('warmup', 30_000);
          assertClean(`${c.id} ${t.name} paced warm-up`, warmup as Counts, c.shape.okStatus);
          const sampler = new UsageSampler(pidsOf(t, c), [client.pid]);
          const result = await client.waitJson('result', (plan.pacedS + 15) * 1000);
          const usage = sampler.stop();
          const res = result as PacedResult;
          assertClean(`${c.id} ${t.name} at ${RATE} req/s`, res, c.shape.okStatus);
          const [proxy, up, red] = usage.procs;
          if (!proxy) throw new Error('no process usage');
          if (red) sideCpu(c).paced.push(red.cpuPct);
          runOf(c, t).paced.push({ res, proxy, upstream: up ?? null, ...usage });
        } finally {
          await client.stop();
        }
        await sleep(500);
      }
    }
    for (const [c, round] of schedule) {
      for (const t of order(c, round)) {
        log(
          `${c.id} round ${round + 1}/${c.rounds}: max throughput ${labelOf(t)} (${plan.maxS} s, ${CONNECTIONS} conns)`,
        );
        alive(t);
        const sampler = new UsageSampler(pidsOf(t, c));
        const res = await maxThroughput(t.origin + c.path, caseHeaders(c), {
          connections: CONNECTIONS,
          durationS: plan.maxS,
          tls: t.tls?.client,
          ...c.shape,
        });
        const usage = sampler.stop();
        assertClean(`${c.id} ${t.name} max throughput`, res, c.shape.okStatus);
        const [proxy, up, red] = usage.procs;
        if (!proxy) throw new Error('no process usage');
        if (red) sideCpu(c).max.push(red.cpuPct);
        runOf(c, t).max.push({ res, proxy, upstream: up ?? null, ...usage });
        log(
          `  ${res.rps.toFixed(0)} req/s, p50 ${res.p50} ms, p99 ${res.p99} ms, CPU ${proxy.cpuPct.toFixed(0)}%`,
        );
        await sleep(750);
      }
    }

    const fallbacks =
      redis && tollgateAdmin ? (await metricSum(tollgateAdmin, FALLBACK)) - fallbacksBefore : 0;
    if (fallbacks > 0)
      log(
        `WARNING: ${fallbacks} Global rate-limit calls fell back to local buckets (Redis slower than --redis-timeout)`,
      );
    const tollgate = targets.find((t) => t.name === 'tollgate');
    if (cpuProf) {
      const profiled = [...(tollgate ? [tollgate] : []), ...(otelTarget ? [otelTarget] : [])];
      log(`stopping ${profiled.length === 1 ? 'the agent' : 'the agents'} so they write their profiles`);
      await Promise.all(profiled.map((t) => t.process.stop(20_000)));
    }
    const resultOf = (c: BenchCase): CaseResult => {
      const info = infoOf(c);
      const caseRuns = runs.get(c.id) ?? [];
      const summaries = caseRuns.map(summarize);
      return {
        info,
        runs: caseRuns,
        summaries,
        ratios: ratios(Object.fromEntries(summaries.map((s) => [s.name, s]))),
      };
    };
    const results = measured
      .filter((c) => c.id !== 'global-limit' && c.id !== 'telemetry' && c.id !== 'mtls')
      .map(resultOf);
    const globalCase = CASES.find((c) => c.id === 'global-limit');
    const globalMeasured = measured.find((c) => c.id === 'global-limit');
    const globalReport: GlobalLimitReport | null = globalCase
      ? {
          info: infoOf(globalCase),
          skipped: globalSkip,
          global: globalMeasured ? (resultOf(globalMeasured).summaries[0] ?? null) : null,
          local:
            results.find((r) => r.info.id === 'get')?.summaries.find((s) => s.name === 'tollgate') ?? null,
          redisCpuAtRate: mean(redisCpu.paced),
          redisCpuAtMax: mean(redisCpu.max),
          redisKeys: globalKeys,
          fallbacks,
        }
      : null;
    const telemetryCase = CASES.find((c) => c.id === 'telemetry');
    const telemetryMeasured = measured.find((c) => c.id === 'telemetry');
    const sinkStats = (sinkAddr ? await (await fetch(`http://${sinkAddr}/stats`)).json() : {}) as SinkStats;
    if (telemetryMeasured && ['traces', 'metrics', 'logs'].some((k) => (sinkStats[k]?.requests ?? 0) === 0))
      throw new Error(`the telemetry-on agent did not export every signal: ${JSON.stringify(sinkStats)}`);
    const getSummaries = results.find((r) => r.info.id === 'get')?.summaries ?? [];
    const telemetryReport: TelemetryReport | null = telemetryCase
      ? {
          info: infoOf(telemetryCase),
          skipped: telemetrySkip,
          on: telemetryMeasured ? (resultOf(telemetryMeasured).summaries[0] ?? null) : null,
          off: getSummaries.find((s) => s.name === 'tollgate') ?? null,
          direct: getSummaries.find((s) => s.name === 'direct') ?? null,
          baseline: getSummaries.find((s) => s.name === 'baseline') ?? null,
          sink: sinkStats,
          sinkCpuAtRate: mean(sinkCpu.paced),
          sinkCpuAtMax: mean(sinkCpu.max),
          setup:
            '`bin/tollgate agent --log-level info` (so one JSON access line per request, to /dev/null here) with ' +
            Object.entries(telemetryEnv('SINK'))
              .map(([k, v]) => `\`${k}=${v}\``)
              .join(', ') +
            ' (every other OTEL_* at its default: batch span processor 5 s / 512 / 2048, parentbased_always_on)',
        }
      : null;
    const mtlsCase = CASES.find((c) => c.id === 'mtls');
    const runSummary = (id: string, t: Target | null | undefined) => {
      const run = t ? runs.get(id)?.find((r) => r.pid === t.process.pid) : undefined;
      return run ? summarize(run) : null;
    };
    const mtlsReport: MtlsReport | null = mtlsCase
      ? {
          info: infoOf(mtlsCase),
          skipped: mtlsSkip,
          plain: runSummary(
            'mtls',
            targets.find((t) => t.name === 'tollgate'),
          ),
          mtls: runSummary('mtls', mtlsTarget),
          setup:
            "Certificates from a test CA made with test/support/certs.ts (ECDSA P-256): the agent's for DNS " +
            "`localhost`, the client's with the URI SAN `" +
            MTLS_CLIENT_ID +
            '`. Load generators: bench/paced-client.ts over 32 keep-alive TLS connections (server certificate ' +
            'verified, requests spread round-robin so none idles into the 5 s keep-alive timeout; the plaintext ' +
            "target gets the same) and autocannon with the client certificate (it does not verify the server's).",
          negotiated: mtlsNegotiated,
        }
      : null;
    const meta: Meta = {
      date: new Date().toISOString(),
      cpuModel: cpuModel(),
      cores,
      nodeVersion: process.version,
      agentNodeVersion: agentNodeVersion(),
      kernel: release(),
      pinning,
      quick,
      cpuProf,
      rounds: plan.rounds,
      connections: CONNECTIONS,
      warmupS: plan.warmupS,
      maxS: plan.maxS,
      rate: RATE,
      pacedS: plan.pacedS,
      command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
      jwksFetches: issuer.jwksFetches(),
      agentNodeOptions: agentNodeOptions ?? null,
    };
    const full =
      selected.length === ALL.length &&
      CASES.length === CASE_IDS.length &&
      !quick &&
      !cpuProf &&
      agentNodeOptions === undefined;
    const resultsFile = join(bench, 'RESULTS.md');
    if ((full || flags.write) && measured.some((c) => c.id !== 'mtls')) {
      const kept = keptSections(resultsFile);
      writeFileSync(resultsFile, renderMarkdown(meta, results, globalReport, telemetryReport) + kept);
      log('wrote bench/RESULTS.md');
    } else if (flags['write-telemetry'] && telemetryReport?.on && telemetryReport.off && !quick && !cpuProf) {
      const body = [
        ...telemetrySection(telemetryReport, meta),
        `This section alone was rewritten by \`${meta.command}\` on ${meta.date} (${meta.pinning}; ` +
          `agent ${meta.agentNodeVersion}); the sections above and below are of the run dated at the top.`,
      ].join('\n');
      const text = withHeadingSection(readFileSync(resultsFile, 'utf8'), '## telemetry:', body);
      if (text === null) throw new Error('bench/RESULTS.md has no telemetry section to rewrite');
      writeFileSync(resultsFile, text);
      log('wrote the telemetry section of bench/RESULTS.md');
    } else {
      log('partial or quick run: bench/RESULTS.md left as it was (--write to overwrite)');
    }
    // The mtls case keeps its own section, so `--cases mtls` alone updates it.
    if (mtlsReport && mtlsSkip === null && (sectionsWritable || flags.write)) {
      writeSection(resultsFile, 'mtls', mtlsSection(mtlsReport, meta));
      log('wrote the mtls section of bench/RESULTS.md');
    }
    process.stdout.write(
      `${results.length > 0 || globalReport || telemetryReport ? `\n${renderSummary(results, globalReport, telemetryReport)}\n` : ''}` +
        `${mtlsReport ? `\n${mtlsSummary(mtlsReport).join('\n')}\n` : ''}`,
    );
    if (cpuProf) {
      const profiles: [label: string, name: string][] = [
        ...(tollgate ? [['tollgate', profileName] as [string, string]] : []),
        ...(otelTarget ? [['tollgate+otel', otelProfileName] as [string, string]] : []),
      ];
      for (const [label, name] of profiles) {
        const file = join(bench, 'profiles', name);
        if (!existsSync(file)) {
          const there = existsSync(join(bench, 'profiles')) ? readdirSync(join(bench, 'profiles')) : [];
          throw new Error(`no profile at ${file} (bench/profiles has: ${there.join(', ') || 'nothing'})`);
        }
        // Skip the agent's startup (module loading, policy compile): keep the samples from the first load on.
        const fromMs = Math.max(0, loadStartedAt - (spawnedAt.get(name) ?? loadStartedAt));
        process.stdout.write(`\nprofile (${label}): ${file}\n${summarizeFile(file, 15, fromMs)}\n`);
      }
    }
    log(`done in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  } finally {
    await stopAllChildren();
    issuer.server.closeAllConnections();
    await new Promise((resolve) => issuer.server.close(resolve));
    rmSync(tmp, { recursive: true, force: true });
  }
}

process.on('exit', killAllChildren);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    killAllChildren();
    process.exit(130);
  });
}
/** The rotation case: its own processes and its own section (bench/rotation.ts). */
async function rotationStep(): Promise<void> {
  pinSelf(0);
  const r = await runRotation({
    quick,
    log,
    command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
  });
  process.stdout.write(`\n${r.summary}\n`);
  if (sectionsWritable || flags.write) {
    writeSection(join(bench, 'RESULTS.md'), 'rotation', r.markdown);
    log('wrote the rotation section of bench/RESULTS.md');
  }
  if (!r.pass) throw new Error(`rotation: ${r.summary}`);
}

async function all(): Promise<void> {
  if (CASES.some((c) => c.id !== 'rotation')) await main();
  if (CASES.some((c) => c.id === 'rotation')) await rotationStep();
}

all().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`\nbench FAILED: ${e instanceof Error ? e.message : String(e)}\n`);
    killAllChildren();
    process.exit(1);
  },
);
