import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { Diagnostic } from '../../policy/diagnostics.ts';
import type { PolicyEngine } from '../../policy/engine/engine.ts';
import { diagnosticLines, FilePolicySource, loadPolicyPath } from './file-source.ts';

const root = mkdtempSync(join(tmpdir(), 'tollgate-file-source-'));
after(() => rmSync(root, { recursive: true, force: true }));

let dirs = 0;
/** A fresh folder under the test root, with the given files. */
function folder(files: Record<string, string> = {}): string {
  const dir = join(root, `case-${++dirs}`);
  mkdirSync(dir);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

interface PolicyOptions {
  name?: string;
  port?: number;
  app?: string;
  route?: string;
}

function policyYaml(o: PolicyOptions = {}): string {
  return [
    'apiVersion: tollgate.dev/v1alpha1',
    'kind: ApiPolicy',
    `metadata: {name: ${o.name ?? 'orders'}, namespace: shop}`,
    'spec:',
    `  selector: {matchLabels: {app: ${o.app ?? 'orders'}}}`,
    ...(o.port === undefined ? [] : [`  port: ${o.port}`]),
    '  routes:',
    `    - {name: ${o.route ?? 'health'}, methods: [GET], path: /healthz, public: true}`,
    '',
  ].join('\n');
}

const INVALID_POLICY = `apiVersion: tollgate.dev/v1alpha1
kind: ApiPolicy
metadata: {name: orders, namespace: shop}
spec:
  bogus: 1
  routes: []
`;

const names = (engine: PolicyEngine) => engine.bundle.policies.map((p) => p.ref.name).sort();
const routeNames = (engine: PolicyEngine | null) =>
  engine?.bundle.policies.flatMap((p) => p.routes.map((r) => r.name));

function loaded(path: string, workload = {}): PolicyEngine {
  const r = loadPolicyPath(path, workload);
  assert.ok(r.ok, JSON.stringify(r.diagnostics));
  return r.engine;
}

function failed(path: string, workload = {}): Diagnostic[] {
  const r = loadPolicyPath(path, workload);
  assert.equal(r.ok, false);
  return r.diagnostics;
}

/** Polls `check` every 5 ms until it holds; fails after `timeoutMs`. */
async function eventually(check: () => boolean, what: string, timeoutMs = 2_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('loadPolicyPath', () => {
  test('a file', () => {
    const dir = folder({ 'orders.yaml': policyYaml() });
    const engine = loaded(join(dir, 'orders.yaml'));
    assert.deepEqual(names(engine), ['orders']);
    assert.ok(engine.policyFor(null));
  });

  test('a file with several documents', () => {
    const dir = folder({
      'all.yaml': `${policyYaml({ name: 'a', port: 8080 })}---\n${policyYaml({ name: 'b', port: 9090 })}`,
    });
    assert.deepEqual(names(loaded(join(dir, 'all.yaml'))), ['a', 'b']);
  });

  test('a folder: only *.yaml and *.yml, hidden files skipped', () => {
    const dir = folder({
      'a.yaml': policyYaml({ name: 'a', port: 8080 }),
      'b.yml': policyYaml({ name: 'b', port: 9090 }),
      'c.json': 'not: [yaml',
      'README.md': 'not: [yaml',
      'd.yaml.bak': 'not: [yaml',
      '.hidden.yaml': 'not: [yaml',
    });
    mkdirSync(join(dir, '..data'));
    assert.deepEqual(names(loaded(dir)), ['a', 'b']);
  });

  test('a folder is read in sorted order (diagnostics come file by file)', () => {
    const dir = folder({ 'c.yaml': INVALID_POLICY, 'a.yaml': INVALID_POLICY, 'b.yml': INVALID_POLICY });
    const files = failed(dir).map((d) => d.file);
    assert.deepEqual(
      files,
      ['a.yaml', 'b.yml', 'c.yaml'].map((f) => join(dir, f)),
    );
  });

  test('an empty folder is refused (it never replaces a policy)', () => {
    const path = folder();
    assert.deepEqual(failed(path), [
      { severity: 'error', path: [], message: 'no ApiPolicy documents found', file: path, line: 1, col: 1 },
    ]);
  });

  test('a missing path → ok: false, "cannot read (ENOENT)" at the path', () => {
    const path = join(root, 'does-not-exist.yaml');
    assert.deepEqual(failed(path), [
      { severity: 'error', path: [], message: 'cannot read (ENOENT)', file: path, line: 1, col: 1 },
    ]);
  });

  test('an unreadable entry in a folder (a directory named *.yaml) is a positioned diagnostic', () => {
    const dir = folder({ 'a.yaml': policyYaml() });
    mkdirSync(join(dir, 'sub.yaml'));
    const [d, ...rest] = failed(dir);
    assert.equal(rest.length, 0);
    assert.deepEqual([d?.file, d?.message, d?.line], [join(dir, 'sub.yaml'), 'cannot read (EISDIR)', 1]);
  });

  test('invalid YAML → ok: false with file, line and column', () => {
    const dir = folder({ 'bad.yaml': 'apiVersion: tollgate.dev/v1alpha1\nkind: [ApiPolicy\n' });
    const diagnostics = failed(join(dir, 'bad.yaml'));
    assert.ok(diagnostics.length > 0);
    for (const d of diagnostics) {
      assert.equal(d.severity, 'error');
      assert.equal(d.file, join(dir, 'bad.yaml'));
      assert.equal(typeof d.line, 'number');
      assert.equal(typeof d.col, 'number');
    }
  });

  test('an invalid policy → ok: false, the field path and its position', () => {
    const dir = folder({ 'p.yaml': INVALID_POLICY });
    const [d, ...rest] = failed(join(dir, 'p.yaml'));
    assert.equal(rest.length, 0);
    assert.deepEqual(d, {
      severity: 'error',
      path: ['spec', 'bogus'],
      message: 'unknown field "bogus"',
      file: join(dir, 'p.yaml'),
      line: 5,
      col: 3,
    });
    assert.deepEqual(diagnosticLines([d]), [`${join(dir, 'p.yaml')}:5:3: spec.bogus: unknown field "bogus"`]);
  });

  test('one bad file in a folder fails the whole load (no policy silently dropped)', () => {
    const dir = folder({ 'a.yaml': policyYaml({ port: 8080 }), 'b.yaml': INVALID_POLICY });
    failed(dir);
  });

  const workloads: [
    what: string,
    workload: { labels?: Record<string, string>; port?: number },
    expected: string[],
  ][] = [
    ['no workload filter: every policy', {}, ['a8080', 'b9090', 'c-any']],
    ['labels select', { labels: { app: 'orders' } }, ['a8080', 'b9090']],
    ['labels that select nothing', { labels: { app: 'nobody' } }, []],
    ['the upstream port selects its policy and the port-less ones', { port: 8080 }, ['a8080', 'c-any']],
    ['labels and port together', { labels: { app: 'billing' }, port: 9090 }, ['c-any']],
  ];
  for (const [what, workload, expected] of workloads) {
    test(`workload selection: ${what}`, () => {
      const dir = folder({
        'a.yaml': policyYaml({ name: 'a8080', port: 8080 }),
        'b.yaml': policyYaml({ name: 'b9090', port: 9090 }),
        'c.yaml': policyYaml({ name: 'c-any', app: 'billing' }),
      });
      assert.deepEqual(names(loaded(dir, workload)), expected);
    });
  }

  test('conflicting policies load, the loser reported as a warning', () => {
    const dir = folder({ 'a.yaml': policyYaml({ name: 'a' }), 'b.yaml': policyYaml({ name: 'b' }) });
    const r = loadPolicyPath(dir, {});
    assert.ok(r.ok);
    assert.deepEqual(names(r.engine), ['a']);
    assert.equal(r.diagnostics.length, 1);
    assert.equal(r.diagnostics[0]?.severity, 'warning');
    assert.match(r.diagnostics[0]?.message ?? '', /Conflicted: shop\/b/);
  });
});

describe('FilePolicySource', () => {
  function source(path: string) {
    const events: string[] = [];
    const src = new FilePolicySource({
      path,
      workload: {},
      intervalMs: 20,
      onLoad: (engine) => events.push(`load ${routeNames(engine)?.join(',')}`),
      onReject: (diagnostics) => events.push(`reject ${diagnostics.length}`),
    });
    after(() => src.close());
    return { src, events };
  }

  test('current is null until a load', () => {
    assert.equal(source(join(root, 'none.yaml')).src.current, null);
  });

  test('reload: a good load swaps in the engine, a bad edit keeps the last good one', () => {
    const dir = folder({ 'p.yaml': policyYaml({ route: 'first' }) });
    const { src, events } = source(join(dir, 'p.yaml'));
    const first = src.reload();
    assert.ok(first.ok);
    assert.equal(src.current, first.engine);

    writeFileSync(join(dir, 'p.yaml'), INVALID_POLICY);
    const bad = src.reload();
    assert.equal(bad.ok, false);
    assert.equal(src.current, first.engine, 'the last good engine stays');

    writeFileSync(join(dir, 'p.yaml'), 'kind: [\n');
    assert.equal(src.reload().ok, false);
    rmSync(join(dir, 'p.yaml'));
    assert.equal(src.reload().ok, false);
    assert.equal(src.current, first.engine);

    writeFileSync(join(dir, 'p.yaml'), policyYaml({ route: 'second' }));
    const good = src.reload();
    assert.ok(good.ok);
    assert.equal(src.current, good.engine);
    assert.deepEqual(routeNames(src.current), ['second']);
    assert.deepEqual(
      events.map((e) => e.split(' ')[0]),
      ['load', 'reject', 'reject', 'reject', 'load'],
    );
    assert.equal(events[0], 'load first');
    assert.equal(events[1], 'reject 1');
  });

  test('a failed first load leaves current null', () => {
    const dir = folder({ 'p.yaml': INVALID_POLICY });
    const { src, events } = source(join(dir, 'p.yaml'));
    assert.equal(src.reload().ok, false);
    assert.equal(src.current, null);
    assert.deepEqual(events, ['reject 1']);
  });

  test('watch picks up an edit in place', async () => {
    const dir = folder({ 'p.yaml': policyYaml({ route: 'before' }) });
    const { src } = source(join(dir, 'p.yaml'));
    src.reload();
    src.watch();
    writeFileSync(join(dir, 'p.yaml'), policyYaml({ route: 'after-edit' }));
    await eventually(() => routeNames(src.current)?.[0] === 'after-edit', 'the edit');
  });

  test('watch picks up an atomic rename over the file', async () => {
    const dir = folder({ 'p.yaml': policyYaml({ route: 'before' }) });
    const { src } = source(join(dir, 'p.yaml'));
    src.reload();
    src.watch();
    // Same size as before, so only the inode tells the change.
    writeFileSync(join(dir, '.p.yaml.tmp'), policyYaml({ route: 'renamd' }));
    renameSync(join(dir, '.p.yaml.tmp'), join(dir, 'p.yaml'));
    await eventually(() => routeNames(src.current)?.[0] === 'renamd', 'the rename');
  });

  test('watch picks up a Kubernetes ConfigMap symlink swap', async () => {
    const dir = folder();
    mkdirSync(join(dir, '..v1'));
    writeFileSync(join(dir, '..v1', 'p.yaml'), policyYaml({ route: 'v1' }));
    symlinkSync('..v1', join(dir, '..data'));
    symlinkSync(join('..data', 'p.yaml'), join(dir, 'p.yaml'));
    const { src } = source(dir);
    assert.ok(src.reload().ok);
    assert.deepEqual(routeNames(src.current), ['v1']);
    src.watch();
    mkdirSync(join(dir, '..v2'));
    writeFileSync(join(dir, '..v2', 'p.yaml'), policyYaml({ route: 'v2' }));
    symlinkSync('..v2', join(dir, '..data_tmp'));
    renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
    await eventually(() => routeNames(src.current)?.[0] === 'v2', 'the swap');
  });

  test('watch picks up a folder gaining a file', async () => {
    const dir = folder({ 'a.yaml': policyYaml({ name: 'a', port: 8080 }) });
    const { src, events } = source(dir);
    src.reload();
    src.watch();
    writeFileSync(join(dir, 'b.yaml'), policyYaml({ name: 'b', port: 9090, route: 'b-route' }));
    await eventually(() => src.current?.bundle.policies.length === 2, 'the new file');
    assert.equal(events.length, 2);
  });

  test('watch reports a bad edit once and keeps serving the last good engine', async () => {
    const dir = folder({ 'p.yaml': policyYaml() });
    const { src, events } = source(join(dir, 'p.yaml'));
    const good = src.reload();
    src.watch();
    writeFileSync(join(dir, 'p.yaml'), INVALID_POLICY);
    await eventually(() => events.length === 2, 'the rejection');
    // A few more intervals: the unchanged bad file is not re-reported.
    await new Promise((r) => setTimeout(r, 80));
    assert.deepEqual(events.slice(1), ['reject 1']);
    assert.ok(good.ok);
    assert.equal(src.current, good.engine);
  });

  test('watch twice starts one poller; close stops it', async () => {
    const dir = folder({ 'p.yaml': policyYaml({ route: 'one' }) });
    const { src, events } = source(join(dir, 'p.yaml'));
    src.reload();
    src.watch();
    src.watch();
    writeFileSync(join(dir, 'p.yaml'), policyYaml({ route: 'two' }));
    await eventually(() => events.length === 2, 'the edit');
    await new Promise((r) => setTimeout(r, 60));
    assert.equal(events.length, 2, 'one poller: one reload per change');
    src.close();
    writeFileSync(join(dir, 'p.yaml'), policyYaml({ route: 'three' }));
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(routeNames(src.current), ['two']);
    assert.equal(events.length, 2);
    src.close();
  });
});
