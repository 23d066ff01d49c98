import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import type { CommandResult, RunCommand } from '../agent/capture/iptables.ts';
import type { CliIo } from './cli-io.ts';
import { type InitDeps, runInit } from './init.ts';
import { main } from './main.ts';

function io() {
  const out: string[] = [];
  const err: string[] = [];
  const cli: CliIo = {
    out: (l) => out.push(l),
    err: (l) => err.push(l),
    readFile: () => '',
    expand: (p) => [p],
    now: () => 0,
  };
  return { cli, out, err };
}

/** iptables-nft that answers every save with nothing and every restore with `restore`; calls recorded. */
function deps(restore: CommandResult, ipv6 = false) {
  const calls: string[] = [];
  const run: RunCommand = async (file, args) => {
    calls.push([file, ...args].join(' '));
    return file.endsWith('-restore') ? restore : { code: 0, stdout: '', stderr: '' };
  };
  const d: InitDeps = { run, ipv6: () => ipv6 };
  return { d, calls };
}

describe('tollgate init', () => {
  test('--dry-run prints the golden default ruleset and runs nothing', async () => {
    const { cli, out } = io();
    const { d, calls } = deps({ code: 0, stdout: '', stderr: '' });
    assert.equal(await runInit(['--inbound-ports', '8080', '--dry-run'], cli, d), 0);
    const golden = readFileSync(new URL('../agent/capture/testdata/default.rules', import.meta.url), 'utf8');
    assert.equal(`${out.join('\n')}\n`, golden);
    assert.deepEqual(calls, []);
  });

  test('applies IPv4, and IPv6 when the pod has it, and says which backend', async () => {
    for (const [ipv6, families, restores] of [
      [false, 'IPv4', ['iptables-nft-restore --noflush']],
      [true, 'IPv4 and IPv6', ['iptables-nft-restore --noflush', 'ip6tables-nft-restore --noflush']],
    ] as const) {
      const { cli, out } = io();
      const { d, calls } = deps({ code: 0, stdout: '', stderr: '' }, ipv6);
      assert.equal(await runInit(['--inbound-ports', '8080'], cli, d), 0);
      assert.deepEqual(out, [`tollgate init: ${families} capture rules applied (nft backend)`]);
      assert.deepEqual(
        calls.filter((c) => c.includes('-restore')),
        restores,
      );
    }
  });

  test('exit 1 with the iptables error when applying fails', async () => {
    const { cli, err } = io();
    const { d } = deps({
      code: 4,
      stdout: '',
      stderr: 'iptables-nft-restore v1.8.9 (nf_tables): Permission denied\n',
    });
    assert.equal(await runInit(['--inbound-ports', '8080'], cli, d), 1);
    assert.deepEqual(err, [
      'tollgate init: iptables-nft-restore failed (exit 4): iptables-nft-restore v1.8.9 (nf_tables): Permission denied',
    ]);
  });

  test('exit 2 with every problem on bad flags', async () => {
    const { cli, err } = io();
    const { d, calls } = deps({ code: 0, stdout: '', stderr: '' });
    assert.equal(await runInit(['--inbound-ports', 'x', '--agent-uid', 'root', '--nope'], cli, d), 2);
    assert.equal(err.length, 4, err.join('\n'));
    assert.ok(err.every((l) => l.startsWith('tollgate init: ') || l.startsWith('Run ')));
    assert.deepEqual(calls, []);
  });

  test('is a command of main, with help', async () => {
    const { cli, out } = io();
    assert.equal(await main(['help', 'init'], cli), 0);
    assert.match(out.join('\n'), /^Usage: tollgate init --inbound-ports/);
    const top = io();
    await main(['--help'], top.cli);
    assert.match(top.out.join('\n'), /init --inbound-ports/);
  });
});
