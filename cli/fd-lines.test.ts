import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, test } from 'node:test';

const fdLines = new URL('./fd-lines.ts', import.meta.url).href;
const jsonLine = new URL('../agent/telemetry/json-line.ts', import.meta.url).href;

/**
 * Runs a child that logs `count` lines through stdoutLines() (pino and
 * JsonLineWriter alternately, as the agent does), then ends as `ending` says;
 * resolves with its stdout, read from a pipe.
 */
function child(count: number, ending: string): Promise<{ code: number | null; stdout: string }> {
  const script = `
    import { pino } from 'pino';
    import { stdoutLines } from ${JSON.stringify(fdLines)};
    import { JsonLineWriter } from ${JSON.stringify(jsonLine)};
    const lines = stdoutLines();
    const logger = pino({ level: 'info', base: {} }, lines);
    const access = new JsonLineWriter((l) => lines.append(l), { bindings: {} });
    for (let i = 0; i < ${count}; i++) {
      if (i % 2 === 0) access.info({ n: i, pad: 'x'.repeat(200) }, 'request');
      else logger.info({ n: i, pad: 'y'.repeat(200) }, 'event');
    }
    ${ending}
  `;
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--input-type=module', '-e', script], {
      cwd: new URL('..', import.meta.url).pathname,
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    const chunks: Buffer[] = [];
    p.stdout.on('data', (c: Buffer) => chunks.push(c));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, stdout: Buffer.concat(chunks).toString('utf8') }));
  });
}

function assertAllLines(stdout: string, count: number): void {
  const lines = stdout.split('\n');
  assert.equal(lines.pop(), '', 'the output ends with a whole line');
  assert.equal(lines.length, count);
  lines.forEach((l, i) => {
    assert.equal((JSON.parse(l) as { n: number }).n, i, 'in order, none lost, none interleaved');
  });
}

describe('stdoutLines: nothing pending is lost when the process ends', () => {
  // 20 000 lines of ~250 bytes: far more than a pipe holds, so writes also wait for the reader.
  const count = 20_000;
  for (const [name, ending, code] of [
    ['process.exit right after logging', 'process.exit(3);', 3],
    ['an uncaught exception right after logging', "throw new Error('boom');", 1],
    ['the event loop running out of work', '', 0],
    [
      "an exit in the same turn as the last lines, before the batch's own flush",
      'setImmediate(() => {}); process.exitCode = 4; process.exit();',
      4,
    ],
  ] as const) {
    test(name, async () => {
      const result = await child(count, ending);
      assert.equal(result.code, code);
      assertAllLines(result.stdout, count);
    });
  }
});
