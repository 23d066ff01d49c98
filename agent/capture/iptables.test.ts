import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  applyCapture,
  type BackendName,
  CaptureError,
  type CommandResult,
  chooseBackend,
  hasIpv6,
  type Probe,
  type RunCommand,
  runCommand,
} from './iptables.ts';
import type { CaptureConfig } from './rules.ts';

const CONFIG: CaptureConfig = {
  inboundPorts: [8080],
  excludeInboundPorts: [],
  excludeOutboundPorts: [],
  excludeOutboundCidrs: ['10.96.0.0/12', 'fd00::/8'],
  agentUid: 1337,
  inboundPort: 15006,
  outboundPort: 15001,
  adminPort: 15020,
};

const ok = (stdout = ''): CommandResult => ({ code: 0, stdout, stderr: '' });
const missing: CommandResult = { code: -1, stdout: '', stderr: 'spawn iptables-nft-save ENOENT' };

/** A fake set of iptables programs: `answers` by program name; every call is recorded. */
function fakeRun(answers: Record<string, CommandResult>) {
  const calls: { file: string; args: readonly string[]; input: string | undefined }[] = [];
  const run: RunCommand = async (file, args, input) => {
    calls.push({ file, args, input });
    return answers[file] ?? missing;
  };
  return { run, calls };
}

describe('chooseBackend', () => {
  const p = (works: boolean, rules = 0): Probe => ({ works, rules });
  const cases: { name: string; probes: Record<BackendName, Probe>; want: BackendName | null }[] = [
    { name: 'nft works: nft', probes: { nft: p(true), legacy: p(true), default: p(true) }, want: 'nft' },
    {
      name: 'only legacy works',
      probes: { nft: p(false), legacy: p(true), default: p(true) },
      want: 'legacy',
    },
    {
      name: 'legacy already holds rules, nft none: stay on legacy',
      probes: { nft: p(true), legacy: p(true, 5), default: p(true) },
      want: 'legacy',
    },
    {
      name: 'both hold rules: nft',
      probes: { nft: p(true, 2), legacy: p(true, 5), default: p(true) },
      want: 'nft',
    },
    {
      name: 'only the unsuffixed tools',
      probes: { nft: p(false), legacy: p(false), default: p(true) },
      want: 'default',
    },
    { name: 'nothing', probes: { nft: p(false), legacy: p(false), default: p(false) }, want: null },
  ];
  for (const c of cases) test(c.name, () => assert.equal(chooseBackend(c.probes), c.want));
});

describe('applyCapture', () => {
  test('nft: saves, then restores each family with --noflush and the reconciled input on stdin', async () => {
    const { run, calls } = fakeRun({
      'iptables-nft-save': ok('*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n'),
      'iptables-legacy-save': ok(''),
      'iptables-save': ok(''),
      'ip6tables-nft-save': ok(''),
      'iptables-nft-restore': ok(),
      'ip6tables-nft-restore': ok(),
    });
    assert.deepEqual(await applyCapture(CONFIG, { run, families: [4, 6] }), { backend: 'nft' });
    const restores = calls.filter((c) => c.file.endsWith('-restore'));
    assert.deepEqual(
      restores.map((c) => [c.file, c.args]),
      [
        ['iptables-nft-restore', ['--noflush']],
        ['ip6tables-nft-restore', ['--noflush']],
      ],
    );
    assert.match(restores[0]?.input ?? '', /-A TOLLGATE_OUTPUT -d 10\.96\.0\.0\/12 -j RETURN/);
    assert.doesNotMatch(restores[0]?.input ?? '', /fd00/);
    assert.match(restores[1]?.input ?? '', /-A TOLLGATE_OUTPUT -d fd00::\/8 -j RETURN/);
    assert.match(restores[1]?.input ?? '', /-A PREROUTING -p tcp -j TOLLGATE_INBOUND/);
  });

  test('IPv4 only when asked', async () => {
    const { run, calls } = fakeRun({
      'iptables-nft-save': ok(''),
      'iptables-nft-restore': ok(),
    });
    await applyCapture(CONFIG, { run, families: [4] });
    assert.ok(!calls.some((c) => c.file.startsWith('ip6tables')));
  });

  test('legacy when nf_tables does not work', async () => {
    const { run, calls } = fakeRun({
      'iptables-nft-save': { code: 1, stdout: '', stderr: 'Could not fetch rule set generation id' },
      'iptables-legacy-save': ok(''),
      'iptables-legacy-restore': ok(),
    });
    assert.deepEqual(await applyCapture(CONFIG, { run, families: [4] }), { backend: 'legacy' });
    assert.ok(calls.some((c) => c.file === 'iptables-legacy-restore'));
  });

  test('a failing restore is an error carrying the iptables message', async () => {
    const { run } = fakeRun({
      'iptables-nft-save': ok(''),
      'iptables-nft-restore': {
        code: 2,
        stdout: '',
        stderr: 'iptables-nft-restore: line 5 failed\nPermission denied (you must be root)\n',
      },
    });
    await assert.rejects(
      applyCapture(CONFIG, { run, families: [4] }),
      (e: unknown) =>
        e instanceof CaptureError &&
        e.code === 'ERR_CAPTURE_APPLY' &&
        e.message ===
          'iptables-nft-restore failed (exit 2): iptables-nft-restore: line 5 failed; Permission denied (you must be root)',
    );
  });

  test('a failing save of the family is an error too', async () => {
    const { run } = fakeRun({
      'iptables-nft-save': ok(''),
      'ip6tables-nft-save': { code: 1, stdout: '', stderr: '' },
    });
    await assert.rejects(
      applyCapture(CONFIG, { run, families: [6] }),
      /ip6tables-nft-save failed: no error output/,
    );
  });

  test('no iptables at all', async () => {
    const { run } = fakeRun({});
    await assert.rejects(
      applyCapture(CONFIG, { run, families: [4] }),
      (e: unknown) => e instanceof CaptureError && e.code === 'ERR_CAPTURE_NO_IPTABLES',
    );
  });
});

describe('hasIpv6', () => {
  const v4 = { address: '127.0.0.1', netmask: '', family: 'IPv4', mac: '', cidr: null } as const;
  const v6 = { address: 'fe80::1', netmask: '', family: 'IPv6', mac: '', cidr: null, scopeid: 2 } as const;
  test('loopback only: no', () => {
    assert.equal(
      hasIpv6({
        lo: [
          { ...v4, internal: true },
          { ...v6, internal: true },
        ],
      }),
      false,
    );
  });
  test('a link-local or global IPv6 address: yes', () => {
    assert.equal(
      hasIpv6({
        eth0: [
          { ...v4, internal: false },
          { ...v6, internal: false },
        ],
      }),
      true,
    );
  });
});

describe('runCommand', () => {
  test('feeds stdin and collects stdout and the exit code', async () => {
    assert.deepEqual(await runCommand('cat', [], 'rules\n'), { code: 0, stdout: 'rules\n', stderr: '' });
    const r = await runCommand('sh', ['-c', 'echo oops >&2; exit 3']);
    assert.deepEqual([r.code, r.stderr], [3, 'oops\n']);
  });
  test('a program that does not exist: -1 and why', async () => {
    const r = await runCommand('tollgate-no-such-program', []);
    assert.equal(r.code, -1);
    assert.match(r.stderr, /ENOENT/);
  });
});
