/**
 * bin/tollgate's V8 flags: the agent runs with 8 MiB semi-spaces and no
 * allocation-site pretenuring, the operator with 1 MiB semi-spaces;
 * TOLLGATE_NODE_FLAGS replaces them and a --max-semi-space-size in
 * NODE_OPTIONS drops them (docs/agent.md § Memory and CPU). A preloaded module prints the flags node got and exits before the
 * CLI runs.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, test } from 'node:test';

const bin = new URL('../bin/tollgate', import.meta.url).pathname;
const PRINT = '--import=data:text/javascript,console.log(JSON.stringify(process.execArgv));process.exit(0)';

function execArgvOf(args: string[], nodeOptions: string, extra: NodeJS.ProcessEnv = {}): string[] {
  const env: NodeJS.ProcessEnv = { ...process.env, NODE_OPTIONS: nodeOptions, ...extra };
  if (!('TOLLGATE_NODE_FLAGS' in extra)) delete env.TOLLGATE_NODE_FLAGS;
  const out = execFileSync(bin, args, { env, encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').at(-1) ?? '[]') as string[];
}

describe('bin/tollgate', () => {
  test('runs the agent with 8 MiB semi-spaces and without allocation-site pretenuring', () => {
    assert.deepEqual(execArgvOf(['agent', '--help'], PRINT), [
      '--max-semi-space-size=8',
      '--no-allocation-site-pretenuring',
    ]);
  });

  test('runs the operator with 1 MiB semi-spaces, other commands with no flags', () => {
    assert.deepEqual(execArgvOf(['operator', '--help'], PRINT), ['--max-semi-space-size=1']);
    assert.deepEqual(execArgvOf(['validate', '--help'], PRINT), []);
  });

  test('a --max-semi-space-size in NODE_OPTIONS drops the launcher flags', () => {
    assert.deepEqual(execArgvOf(['agent', '--help'], `--max-semi-space-size=4 ${PRINT}`), []);
  });

  test('TOLLGATE_NODE_FLAGS replaces them, with flags NODE_OPTIONS cannot carry', () => {
    const flags = { TOLLGATE_NODE_FLAGS: '--max-semi-space-size=8 --single-threaded-gc' };
    assert.deepEqual(execArgvOf(['agent', '--help'], PRINT, flags), [
      '--max-semi-space-size=8',
      '--single-threaded-gc',
    ]);
    assert.deepEqual(execArgvOf(['agent', '--help'], PRINT, { TOLLGATE_NODE_FLAGS: '' }), []);
  });
});
