/**
 * Golden files for the injector: testdata/inject/<case>.yaml (a Pod) →
 * <case>.injected.yaml (the Pod after the patch is applied by an independent
 * RFC 6902 applier, headed by the decision and the warnings). Header lines of
 * the input give the namespace's labels (`# namespaceLabels: {json}`) and the
 * injector options (`# options: {json}`). Run with REFRESH_GOLDEN=1 to rewrite
 * the .injected.yaml files, then review the diff.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import type { V1Pod } from '@kubernetes/client-node';
import { parse, stringify } from 'yaml';
import { applyJsonPatch } from '../../test/kube/patch.ts';
import { type InjectOptions, injectSidecar } from './inject.ts';

const DIR = new URL('../testdata/inject/', import.meta.url);
const REFRESH = process.env.REFRESH_GOLDEN === '1';
const BASE: InjectOptions = { agentImage: 'tollgate:test', nativeSidecars: false, version: '0.0.0-test' };

function header(text: string, key: string): Record<string, unknown> {
  const m = new RegExp(`^# ${key}: (.*)$`, 'm').exec(text);
  return m ? (JSON.parse(m[1] ?? '{}') as Record<string, unknown>) : {};
}

function injectCase(name: string): string {
  const text = readFileSync(new URL(`${name}.yaml`, DIR), 'utf8');
  const pod = parse(text) as V1Pod;
  const labels = header(text, 'namespaceLabels') as Record<string, string>;
  const options = { ...BASE, ...header(text, 'options') } as InjectOptions;
  const result = injectSidecar(structuredClone(pod), labels, options);
  const lines = [result.injected ? '# injected' : `# not injected: ${result.reason}`];
  for (const w of result.warnings) lines.push(`# warning: ${w}`);
  const out = result.injected ? applyJsonPatch(pod, result.patch) : pod;
  if (result.injected) {
    // Idempotent: the injected pod is never injected again.
    const again = injectSidecar(out as V1Pod, labels, options);
    assert.deepEqual([again.injected, again.injected ? '' : again.reason], [false, 'already injected']);
  }
  return `${lines.join('\n')}\n${stringify(out, { lineWidth: 0 })}`;
}

const cases = readdirSync(DIR)
  .filter((f) => f.endsWith('.yaml') && !f.endsWith('.injected.yaml'))
  .map((f) => f.slice(0, -'.yaml'.length))
  .sort();

describe('injector golden files', () => {
  it('has cases', () => {
    assert.ok(cases.length >= 7, `found ${cases.length} cases in ${DIR.pathname}`);
  });

  for (const name of cases) {
    it(name, () => {
      const actual = injectCase(name);
      const out = new URL(`${name}.injected.yaml`, DIR);
      if (REFRESH) {
        writeFileSync(out, actual);
        return;
      }
      assert.ok(existsSync(out), `${name}.injected.yaml is missing: run with REFRESH_GOLDEN=1 to create it`);
      assert.equal(
        actual,
        readFileSync(out, 'utf8'),
        `${name}.yaml injects differently from ${name}.injected.yaml (if intended, run with REFRESH_GOLDEN=1 and review the diff)`,
      );
    });
  }
});
