/**
 * Golden files for the compiler: testdata/compile/<case>.in.yaml → <case>.out.json (the bundle).
 * A first line `# workload: {json}` gives the workload to compile for (default: no filter).
 * Run with REFRESH_GOLDEN=1 to rewrite the .out.json files, then review the diff.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { formatDiagnostic } from '../diagnostics.ts';
import { parseYamlSource } from '../load/yaml-source.ts';
import { compilePolicies, type Workload } from './compile.ts';

const DIR = new URL('../testdata/compile/', import.meta.url);
const REFRESH = process.env.REFRESH_GOLDEN === '1';
const WORKLOAD_LINE = /^# workload: (.*)$/;

function workloadOf(text: string): Workload {
  const first = text.split('\n', 1)[0] ?? '';
  const m = WORKLOAD_LINE.exec(first);
  return m ? (JSON.parse(m[1] ?? '{}') as Workload) : {};
}

function compileCase(name: string): string {
  const text = readFileSync(new URL(`${name}.in.yaml`, DIR), 'utf8');
  const parsed = parseYamlSource(text, `${name}.in.yaml`);
  assert.deepEqual(parsed.diagnostics.map(formatDiagnostic), []);
  const r = compilePolicies(
    parsed.documents.map((d) => d.value),
    workloadOf(text),
  );
  const errors = r.diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic);
  assert.deepEqual(errors, [], `${name}.in.yaml does not compile`);
  assert.ok(r.bundle);
  return `${JSON.stringify(r.bundle, null, 2)}\n`;
}

const cases = readdirSync(DIR)
  .filter((f) => f.endsWith('.in.yaml'))
  .map((f) => f.slice(0, -'.in.yaml'.length))
  .sort();

describe('compiler golden files', () => {
  it('has cases', () => {
    assert.ok(cases.length >= 6, `found ${cases.length} cases in ${DIR.pathname}`);
  });

  for (const name of cases) {
    it(name, () => {
      const actual = compileCase(name);
      const out = new URL(`${name}.out.json`, DIR);
      if (REFRESH) {
        writeFileSync(out, actual);
        return;
      }
      assert.ok(existsSync(out), `${name}.out.json is missing: run with REFRESH_GOLDEN=1 to create it`);
      const expected = readFileSync(out, 'utf8');
      assert.deepEqual(
        JSON.parse(actual),
        JSON.parse(expected),
        `compiled ${name}.in.yaml differs from ${name}.out.json (if the change is intended, run with REFRESH_GOLDEN=1 and review the diff)`,
      );
      assert.equal(
        actual,
        expected,
        `${name}.out.json is not formatted as the test writes it (REFRESH_GOLDEN=1)`,
      );
    });
  }

  it('multi-select: the newer policy on the same port is reported as Conflicted', () => {
    const text = readFileSync(new URL('multi-select.in.yaml', DIR), 'utf8');
    const docs = parseYamlSource(text).documents.map((d) => d.value);
    const r = compilePolicies(docs, workloadOf(text));
    assert.deepEqual(
      r.conflicts.map((c) => [
        `${c.policy.namespace}/${c.policy.name}`,
        `${c.winner.namespace}/${c.winner.name}`,
      ]),
      [['shop/orders-late', 'shop/orders-main']],
    );
  });
});
