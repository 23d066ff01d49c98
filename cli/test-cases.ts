/**
 * `tollgate test -f FILE CASES.yaml`: runs request cases against a policy
 * offline and compares each decision with its expectation (CI-friendly: one
 * `ok`/`not ok` line per case, a summary, exit 1 on any mismatch).
 */
import { type Static, Type } from '@sinclair/typebox';
import { formatDiagnostic } from '../policy/diagnostics.ts';
import { decide, type RequestFacts } from '../policy/engine/decide.ts';
import type { PolicyEngine } from '../policy/engine/engine.ts';
import { parseYamlSource } from '../policy/load/yaml-source.ts';
import { RateLimiter } from '../policy/ratelimit/rate-limiter.ts';
import { parseInstant } from '../policy/units.ts';
import { createAjv } from '../policy/validate/schema-validator.ts';
import { identityFor, loadEngine, parseHeader, parseRequestLine, portFor } from './check.ts';
import { type CliIo, EXIT, parseFlags, UsageError } from './cli-io.ts';

export const TEST_HELP = `Usage: tollgate test -f FILE CASES.yaml

Runs request cases against the policy in FILE (or folder) offline. A cases file:

  cases:
    - name: owner reads own order
      request: GET /v1/users/alice/orders/7
      claims: {sub: alice}          # a verified token (omit: no token)
      invalidToken: true            # a token that fails verification
      headers: {X-Api-Key: k}       # also: peer, ip, port, now (RFC 3339)
      repeat: 6                     # send N times; expect applies to the last
      expect:
        status: 200                 # and/or decision (allow|deny), route, rule, limit, code

Exit status: 0 when every case passes, 1 on any mismatch or invalid input, 2 on bad usage.`;

const Expect = Type.Object(
  {
    status: Type.Optional(Type.Integer({ minimum: 100, maximum: 599 })),
    decision: Type.Optional(Type.Union([Type.Literal('allow'), Type.Literal('deny')])),
    route: Type.Optional(Type.Union([Type.String(), Type.Null()])),
    rule: Type.Optional(Type.Union([Type.String(), Type.Null()])),
    limit: Type.Optional(Type.Union([Type.String(), Type.Null()])),
    code: Type.Optional(Type.String()),
  },
  { additionalProperties: false, minProperties: 1 },
);

const Case = Type.Object(
  {
    name: Type.String({ minLength: 1 }),
    request: Type.String({ minLength: 1 }),
    headers: Type.Optional(Type.Record(Type.String(), Type.String())),
    claims: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    invalidToken: Type.Optional(Type.Boolean()),
    peer: Type.Optional(Type.String()),
    ip: Type.Optional(Type.String()),
    port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
    now: Type.Optional(Type.String()),
    repeat: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000 })),
    expect: Expect,
  },
  { additionalProperties: false },
);

const CasesFile = Type.Object({ cases: Type.Array(Case, { minItems: 1 }) }, { additionalProperties: false });
type TestCase = Static<typeof Case>;

export function runTest(args: string[], io: CliIo): number {
  const { values, positionals } = parseFlags(args, {
    file: { type: 'string', short: 'f', multiple: true },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    io.out(TEST_HELP);
    return EXIT.ok;
  }
  if (!values.file?.length) throw new UsageError('test needs -f FILE');
  if (positionals.length !== 1 || positionals[0] === undefined)
    throw new UsageError('test needs one CASES.yaml');
  const cases = readCases(io, positionals[0]);
  const engine = loadEngine(io, values.file);
  if (!cases || !engine) return EXIT.failed;
  let failed = 0;
  cases.forEach((c, i) => {
    const problems = runCase(engine, c, io);
    if (problems.length === 0) io.out(`ok ${i + 1} - ${c.name}`);
    else {
      failed++;
      io.out(`not ok ${i + 1} - ${c.name}`);
      for (const p of problems) io.out(`  # ${p}`);
    }
  });
  io.out(`${cases.length - failed} passed, ${failed} failed`);
  return failed === 0 ? EXIT.ok : EXIT.failed;
}

function readCases(io: CliIo, file: string): TestCase[] | null {
  let text: string;
  try {
    text = io.readFile(file);
  } catch {
    io.err(`${file}:1:1: (root): cannot read the cases file`);
    return null;
  }
  const parsed = parseYamlSource(text, file);
  const doc = parsed.documents[0];
  for (const d of parsed.diagnostics) io.err(formatDiagnostic(d));
  if (parsed.diagnostics.length > 0 || !doc) return null;
  const validate = createAjv().compile(CasesFile);
  if (validate(doc.value)) return (doc.value as Static<typeof CasesFile>).cases;
  for (const e of validate.errors ?? []) {
    const path = e.instancePath
      .split('/')
      .slice(1)
      .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
    const pos = doc.locate(path);
    const extra =
      e.keyword === 'additionalProperties'
        ? ` "${(e.params as { additionalProperty: string }).additionalProperty}"`
        : '';
    io.err(`${file}:${pos.line}:${pos.col}: ${e.instancePath || '/'}: ${e.message ?? e.keyword}${extra}`);
  }
  return null;
}

function runCase(engine: PolicyEngine, c: TestCase, io: CliIo): string[] {
  let request: { method: string; target: string };
  let headers: Record<string, string>;
  try {
    request = parseRequestLine(c.request);
    headers = Object.fromEntries(Object.entries(c.headers ?? {}).map(([k, v]) => parseHeader(`${k}: ${v}`)));
  } catch (e) {
    return [(e as Error).message];
  }
  const now = c.now === undefined ? io.now() : parseInstant(c.now);
  if (now === null) return ['now must be a date or RFC 3339 instant'];
  const port = c.port ?? portFor(engine, undefined);
  // Fresh buckets per case, on a clock frozen at the case's `now`.
  const rateLimiter = new RateLimiter({ now: () => now });
  const facts: RequestFacts = {
    ...request,
    headers,
    identity: c.claims ? identityFor(engine.policyFor(port)?.policy, c.claims) : null,
    tokenError: c.invalidToken ? 'signature verification failed' : null,
    peer: c.peer ?? null,
    ip: c.ip ?? '127.0.0.1',
    port,
    now,
    rateLimiter,
  };
  let d = decide(engine, facts);
  for (let i = 1; i < (c.repeat ?? 1); i++) d = decide(engine, facts);
  const problems: string[] = [];
  const compare = (field: string, want: unknown, got: unknown) => {
    if (want !== undefined && want !== got)
      problems.push(`${field}: expected ${JSON.stringify(want)}, got ${JSON.stringify(got)}`);
  };
  compare('status', c.expect.status, d.status);
  compare('decision', c.expect.decision, d.verdict);
  compare('route', c.expect.route, d.route);
  compare('rule', c.expect.rule, d.rule);
  compare('limit', c.expect.limit, d.limit);
  compare('code', c.expect.code, d.code);
  if (problems.length > 0) problems.push(`why: ${d.reason}`, ...d.notes.map((n) => `  - ${n}`));
  return problems;
}
