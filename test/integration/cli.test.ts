/**
 * The `tollgate` CLI as users and CI scripts run it: the real bin/tollgate,
 * spawned with the machine's older Node first on PATH, against real files.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';

const root = new URL('../..', import.meta.url).pathname;
const bin = join(root, 'bin/tollgate');
const example = join(root, 'examples/orders-policy.yaml');
const work = mkdtempSync(join(tmpdir(), 'tollgate-cli-'));
after(() => rmSync(work, { recursive: true, force: true }));

/** PATH with the system's directories first, so a plain `node` there is the machine's own (e.g. 20). */
const systemFirstPath = ['/usr/local/bin', '/usr/bin', '/bin', process.env.PATH ?? ''].join(':');

function tollgate(...args: string[]) {
  const r = spawnSync(bin, args, {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, PATH: systemFirstPath },
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('runtime', () => {
  test('bin/tollgate runs on the pinned Node 24 even with an older node first on PATH', () => {
    const r = tollgate('--version');
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^tollgate \d+\.\d+\.\d+ \(node v24\.\d+\.\d+\)$/m);
    const help = tollgate('--help');
    assert.equal(help.code, 0);
    assert.match(help.out, /validate FILE/);
  });

  test('the PATH node is whatever the machine has; the pinned one is used regardless', () => {
    let systemNode = '';
    try {
      systemNode = execFileSync('node', ['--version'], {
        env: { PATH: systemFirstPath },
        encoding: 'utf8',
      }).trim();
    } catch {
      systemNode = 'none';
    }
    assert.ok(systemNode.length > 0);
    assert.match(tollgate('--version').out, /node v24\./);
  });

  test('unknown commands and flags exit 2', () => {
    assert.equal(tollgate('frobnicate').code, 2);
    const r = tollgate('validate', '--nope', example);
    assert.equal(r.code, 2);
    assert.match(r.err, /Unknown option '--nope'/);
    assert.equal(tollgate('check', '-f', example).code, 2);
    assert.equal(tollgate('check', '-f', example, 'GET /x', '--claims', '[1]').code, 2);
    assert.equal(tollgate('check', '-f', example, 'not-a-request-line').code, 2);
    for (const cmd of ['validate', 'check', 'test', 'agent', 'init']) {
      for (const args of [
        [cmd, '--help'],
        ['help', cmd],
      ]) {
        const h = tollgate(...args);
        assert.equal(h.code, 0, args.join(' '));
        assert.match(h.out, new RegExp(`Usage: tollgate ${cmd}`));
      }
    }
  });
});

describe('validate', () => {
  test('the examples validate', () => {
    const r = tollgate('validate', example);
    assert.equal(r.code, 0, r.out + r.err);
    assert.equal(tollgate('validate', join(root, 'examples')).code, 0);
  });

  test('a broken copy gives one file:line:col line per problem and exit 1', () => {
    let text = readFileSync(example, 'utf8');
    const edits: [string, string][] = [
      ['  mode: Enforce\n', '  mode: Enforcing\n  colour: blue\n'],
      [
        '    - name: create-order\n      methods: [POST]\n',
        '    - name: create-order\n      methods: [GET, POST]\n',
      ],
      ['          when: params.userId == claims.sub\n', '          when: params.userId == claims.sub &&\n'],
    ];
    for (const [from, to] of edits) {
      assert.ok(text.includes(from), from);
      text = text.replace(from, to);
    }
    const file = join(work, 'broken.yaml');
    writeFileSync(file, text);
    const r = tollgate('validate', file);
    assert.equal(r.code, 1);
    const lines = r.out.trim().split('\n');
    const lineOf = (needle: string) => text.split('\n').findIndex((l) => l.includes(needle)) + 1;
    assert.deepEqual(lines, [
      `${file}:${lineOf('mode: Enforcing')}:3: spec.mode: must be one of Enforce, Audit`,
      `${file}:${lineOf('colour: blue')}:3: spec.colour: unknown field "colour"`,
      `${file}:${lineOf('claims.sub &&')}:11: spec.routes[0].allow[1].when: invalid CEL: Unexpected token: EOF`,
      `${file}:${lineOf('methods: [GET, POST]') + 1}:7: spec.routes[2].path: conflicts with route "list-orders": same template and method GET`,
    ]);
  });

  test('YAML syntax errors and missing files are positioned diagnostics', () => {
    const file = join(work, 'syntax.yaml');
    writeFileSync(file, 'apiVersion: tollgate.dev/v1alpha1\nkind: ApiPolicy\nspec: [unclosed\n');
    const r = tollgate('validate', file);
    assert.equal(r.code, 1);
    assert.match(r.out, new RegExp(`^${file}:\\d+:\\d+: \\(root\\): YAML: `, 'm'));
    const missing = tollgate('validate', join(work, 'nope.yaml'));
    assert.equal(missing.code, 1);
    assert.match(missing.out, /nope\.yaml:1:1: \(root\): cannot read: no such file or directory/);
  });
});

describe('check', () => {
  const req = 'GET /v1/users/alice/orders/7';
  test('another user is refused by the BOLA rule (403, each rule explained)', () => {
    const r = tollgate('check', '-f', example, req, '--claims', '{"sub":"bob"}');
    assert.equal(r.code, 1);
    assert.match(r.out, /^403 Forbidden \(deny\)/);
    assert.match(r.out, /route: +get-order/);
    assert.match(r.out, /spec\.routes\[0\]\.allow\[1\]: when: params\.userId == claims\.sub is false/);
    assert.match(r.out, /spec\.routes\[0\]\.allow\[0\]: claim roles is not one of \[admin\]/);
  });

  test('the owner is allowed by the rule named in the output', () => {
    const r = tollgate('check', '-f', example, req, '--claims', '{"sub":"alice"}');
    assert.equal(r.code, 0, r.out + r.err);
    assert.match(r.out, /^200 OK \(allow\)/);
    assert.match(r.out, /rule: +spec\.routes\[0\]\.allow\[1\]/);
  });

  test('an undeclared method is 405 with Allow', () => {
    const r = tollgate(
      'check',
      '-f',
      example,
      'PATCH /v1/users/alice/orders/7',
      '--claims',
      '{"sub":"alice"}',
    );
    assert.equal(r.code, 1);
    assert.match(r.out, /^405 Method Not Allowed/);
    assert.match(r.out, /Allow: +DELETE, GET, HEAD/);
  });

  test('--json, headers, peer and ip reach the decision', () => {
    const r = tollgate(
      'check',
      '-f',
      example,
      req,
      '--peer',
      'spiffe://cluster.local/ns/shop/sa/billing',
      '--json',
    );
    assert.equal(r.code, 0, r.err);
    const d = JSON.parse(r.out) as { status: number; rule: string; params: Record<string, string> };
    assert.equal(d.status, 200);
    assert.equal(d.rule, 'spec.routes[0].allow[2]');
    assert.deepEqual({ ...d.params }, { userId: 'alice', orderId: '7' });
  });

  test('an invalid policy cannot decide (exit 2, diagnostics on stderr)', () => {
    const file = join(work, 'invalid.yaml');
    writeFileSync(file, readFileSync(example, 'utf8').replace('unmatched: Deny', 'unmatched: Maybe'));
    const r = tollgate('check', '-f', file, req);
    assert.equal(r.code, 2);
    assert.match(r.err, /spec\.unmatched: must be one of Deny, Allow/);
  });
});

describe('test', () => {
  test('the example cases pass', () => {
    const r = tollgate('test', '-f', example, join(root, 'examples/cases/orders.yaml'));
    assert.equal(r.code, 0, r.out + r.err);
    assert.match(r.out, /^\d+ passed, 0 failed$/m);
  });

  test('a mismatching case fails with what was expected and why', () => {
    const file = join(work, 'cases.yaml');
    writeFileSync(
      file,
      [
        'cases:',
        '  - name: wrong expectation',
        '    request: GET /v1/users/alice/orders/7',
        '    claims: {sub: bob}',
        '    expect: {status: 200}',
        '  - name: right expectation',
        '    request: GET /healthz',
        '    expect: {status: 200, route: health}',
      ].join('\n'),
    );
    const r = tollgate('test', '-f', example, file);
    assert.equal(r.code, 1);
    assert.match(r.out, /^not ok 1 - wrong expectation$/m);
    assert.match(r.out, /# status: expected 200, got 403/);
    assert.match(r.out, /^ok 2 - right expectation$/m);
    assert.match(r.out, /^1 passed, 1 failed$/m);
  });

  test('a malformed cases file is a positioned error', () => {
    const file = join(work, 'bad-cases.yaml');
    writeFileSync(file, 'cases:\n  - name: x\n    request: GET /\n    expect: {stauts: 200}\n');
    const r = tollgate('test', '-f', example, file);
    assert.equal(r.code, 1);
    assert.match(r.err, /bad-cases\.yaml:4:\d+: .*additional properties "stauts"/);
  });
});
