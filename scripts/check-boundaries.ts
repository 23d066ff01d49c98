/**
 * Enforces the module boundaries of docs style.md: policy/ is pure (no I/O, no
 * agent/operator imports), the agent never imports a Kubernetes client, the
 * shared telemetry/ imports neither the agent nor the operator, and only cli/
 * and config.ts files touch `process`. Product code (everything but tests)
 * never imports test/ and never turns TLS verification off: the only places
 * that may are tests, against servers they start themselves.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;

const isSource = (p: string): boolean => p.endsWith('.ts') && !p.endsWith('.test.ts');
const isShipped = (p: string): boolean => !/\.test\.ts$|\.md$/.test(p);

function* walk(dir: string, accept = isSource): Generator<string> {
  for (const name of statSync(dir).isDirectory() ? readdirSync(dir) : ['']) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) {
      if (name === 'node_modules' || name === 'testdata') continue;
      yield* walk(p, accept);
    } else if (accept(p)) {
      yield p;
    }
  }
}

const importRe = /(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+['"]([^'"]+)['"]/g;
const ioModules =
  /^(node:)?(fs|fs\/promises|net|http|https|http2|tls|dgram|child_process|dns|cluster|worker_threads)$/;

interface Rule {
  dir: string;
  check(spec: string, file: string, text: string): string | undefined;
}

const rules: Rule[] = [
  {
    dir: 'policy',
    check: (spec) =>
      ioModules.test(spec)
        ? `policy/ is pure and must not import ${spec}`
        : /(^|\/)(agent|operator|cli)\//.test(spec)
          ? `policy/ must not import ${spec}`
          : undefined,
  },
  {
    dir: 'agent',
    check: (spec) =>
      spec.startsWith('@kubernetes/') || /(^|\/)operator\//.test(spec)
        ? `agent/ must not import ${spec}`
        : undefined,
  },
  {
    dir: 'telemetry',
    check: (spec) =>
      /(^|\/)(agent|operator|cli)\//.test(spec)
        ? `telemetry/ is shared and must not import ${spec}`
        : undefined,
  },
];

const problems: string[] = [];
for (const rule of rules) {
  let files: string[] = [];
  try {
    files = [...walk(join(root, rule.dir))];
  } catch {
    continue;
  }
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(importRe)) {
      const msg = rule.check(m[1] ?? '', file, text);
      if (msg) problems.push(`${relative(root, file)}: ${msg}`);
    }
  }
}
for (const dir of ['policy', 'agent', 'operator', 'telemetry']) {
  let files: string[] = [];
  try {
    files = [...walk(join(root, dir))];
  } catch {
    continue;
  }
  for (const file of files) {
    if (file.endsWith('config.ts')) continue;
    const text = readFileSync(file, 'utf8');
    if (/\bprocess\.(env|exit|on|argv|stdout|stderr|kill)\b/.test(text)) {
      problems.push(`${relative(root, file)}: only cli/ and config.ts files may touch process`);
    }
  }
}
const tlsOff =
  /rejectUnauthorized\s*:\s*false|skipTLSVerify\s*:\s*true|insecure-skip-tls-verify|NODE_TLS_REJECT_UNAUTHORIZED/;
for (const dir of ['policy', 'agent', 'operator', 'telemetry', 'cli', 'bin', 'charts', 'Dockerfile']) {
  let files: string[] = [];
  try {
    files = [...walk(join(root, dir), isShipped)];
  } catch {
    continue;
  }
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(importRe)) {
      if (/(^|\/)test\//.test(m[1] ?? ''))
        problems.push(`${relative(root, file)}: product code must not import ${m[1]}`);
    }
    if (tlsOff.test(text))
      problems.push(`${relative(root, file)}: product code must not turn TLS verification off`);
  }
}
if (problems.length > 0) {
  for (const p of problems) console.error(p);
  process.exitCode = 1;
}
