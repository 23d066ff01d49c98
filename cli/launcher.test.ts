/**
 * bin/tollgate's V8 flags: the agent runs with 8 MiB semi-spaces, no
 * allocation-site pretenuring and single-threaded GC, the operator with 1 MiB
 * semi-spaces, and a --max-semi-space-size in NODE_OPTIONS replaces them
 * (docs/agent.md § Memory and CPU). A preloaded module prints the flags node got and exits before the
 * CLI runs.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, test } from 'node:test';

const bin = new URL('../bin/tollgate', import.meta.url).pathname;
const PRINT = '--import=data:text/javascript,console.log(JSON.stringify(process.execArgv));process.exit(0)';

function execArgvOf(args: string[], nodeOptions: string): string[] {
  const out = execFileSync(bin, args, {
    env: { ...process.env, NODE_OPTIONS: nodeOptions },
    encoding: 'utf8',
  });
  return JSON.parse(out.trim().split('\n').at(-1) ?? '[]') as string[];
}

describe('bin/tollgate', () => {
  test('runs the agent with 8 MiB semi-spaces, without allocation-site pretenuring, GC on its own thread', () => {
    assert.deepEqual(execArgvOf(['agent', '--help'], PRINT), [
      '--max-semi-space-size=8',
      '--no-allocation-site-pretenuring',
      '--single-threaded-gc',
    ]);
  });

  test('runs the operator with 1 MiB semi-spaces, other commands with no flags', () => {
    assert.deepEqual(execArgvOf(['operator', '--help'], PRINT), ['--max-semi-space-size=1']);
    assert.deepEqual(execArgvOf(['validate', '--help'], PRINT), []);
  });

  test('a --max-semi-space-size in NODE_OPTIONS replaces the launcher flags', () => {
    assert.deepEqual(execArgvOf(['agent', '--help'], `--max-semi-space-size=4 ${PRINT}`), []);
  });
});
