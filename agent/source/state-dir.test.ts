import assert from 'node:assert/strict';
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { compilePolicies } from '../../policy/compile/compile.ts';
import type { Logger } from '../agent.ts';
import { readStateBundle, STATE_FILE, writeStateBundle } from './state-dir.ts';

const root = mkdtempSync(join(tmpdir(), 'tollgate-state-dir-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = () => join(root, `case-${++n}`);

function recorder(): Logger & { lines: { level: string; fields: object; msg: string }[] } {
  const lines: { level: string; fields: object; msg: string }[] = [];
  const at = (level: string) => (fields: object, msg: string) => lines.push({ level, fields, msg });
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

const policy = {
  apiVersion: 'tollgate.dev/v1alpha1',
  kind: 'ApiPolicy',
  metadata: { name: 'orders', namespace: 'shop' },
  spec: { routes: [{ name: 'health', methods: ['GET'], path: '/healthz', public: true }] },
};
const bundle = compilePolicies([policy]).bundle;
const json = JSON.stringify(bundle);

describe('state dir', () => {
  test('write then read: the same bundle, file mode 0600, folder created 0700, no temp file left', async () => {
    const dir = join(fresh(), 'nested');
    await writeStateBundle(dir, json);
    const engine = readStateBundle(dir, recorder());
    assert.equal(engine?.bundle.version, bundle.version);
    assert.equal(statSync(join(dir, STATE_FILE)).mode & 0o777, 0o600);
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    assert.deepEqual(readdirSync(dir), [STATE_FILE]);
  });

  test('a second write replaces the first whole; a stale temp file is no obstacle', async () => {
    const dir = fresh();
    await writeStateBundle(dir, json);
    writeFileSync(join(dir, '.bundle.json.tmp'), 'half a bundle', { mode: 0o644 });
    const empty = compilePolicies([]).bundle;
    await writeStateBundle(dir, JSON.stringify(empty));
    assert.equal(readFileSync(join(dir, STATE_FILE), 'utf8'), JSON.stringify(empty));
    assert.equal(readStateBundle(dir, recorder())?.bundle.policies.length, 0);
    assert.equal(statSync(join(dir, STATE_FILE)).mode & 0o777, 0o600);
    assert.deepEqual(readdirSync(dir), [STATE_FILE]);
  });

  test('a failed write rejects and leaves the saved bundle as it was', async () => {
    const dir = fresh();
    await writeStateBundle(dir, json);
    chmodSync(dir, 0o500);
    try {
      // root ignores folder permissions: then the write simply succeeds.
      const wrote = await writeStateBundle(dir, '{"torn":').then(
        () => true,
        () => false,
      );
      if (!wrote) assert.equal(readFileSync(join(dir, STATE_FILE), 'utf8'), json);
    } finally {
      chmodSync(dir, 0o700);
    }
  });

  test('a path that is a file cannot hold state: the write rejects', async () => {
    const file = join(fresh());
    writeFileSync(file, 'x');
    await assert.rejects(writeStateBundle(file, json));
  });

  const unusable: [name: string, text: string | null, level: string, msg: string][] = [
    ['no file (first start)', null, 'info', 'no saved policy bundle'],
    [
      'not JSON (torn, corrupted)',
      '{"kind": "tollgate.dev/Poli',
      'warn',
      'saved policy bundle invalid, ignored',
    ],
    ['JSON, not a bundle', '{"hello": "world"}', 'warn', 'saved policy bundle invalid, ignored'],
    ['empty', '', 'warn', 'saved policy bundle invalid, ignored'],
    [
      'a bundle that does not load (two policies for one port)',
      JSON.stringify({ ...bundle, policies: [bundle.policies[0], bundle.policies[0]] }),
      'warn',
      'saved policy bundle invalid, ignored',
    ],
  ];
  for (const [name, text, level, msg] of unusable) {
    test(`${name} → null, logged (${level}), never thrown`, () => {
      const dir = fresh();
      mkdirSync(dir);
      if (text !== null) writeFileSync(join(dir, STATE_FILE), text);
      const log = recorder();
      assert.equal(readStateBundle(dir, log), null);
      assert.deepEqual(
        log.lines.map((l) => [l.level, l.msg]),
        [[level, msg]],
      );
    });
  }

  test('an unreadable file (a folder in its place) → null, warned with the error code', () => {
    const dir = fresh();
    mkdirSync(join(dir, STATE_FILE), { recursive: true });
    const log = recorder();
    assert.equal(readStateBundle(dir, log), null);
    assert.equal(log.lines[0]?.level, 'warn');
    assert.deepEqual(log.lines[0]?.fields, { file: join(dir, STATE_FILE), code: 'EISDIR' });
  });
});
