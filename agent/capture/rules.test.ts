import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { parseInitArgs } from './init-flags.ts';
import { dryRunText } from './restore.ts';
import { type CaptureConfig, captureRules } from './rules.ts';

const BASE: CaptureConfig = {
  inboundPorts: [8080],
  excludeInboundPorts: [],
  excludeOutboundPorts: [],
  excludeOutboundCidrs: [],
  agentUid: 1337,
  inboundPort: 15006,
  outboundPort: 15001,
  adminPort: 15020,
};

describe('captureRules', () => {
  const cases: {
    name: string;
    config: Partial<CaptureConfig>;
    family?: 4 | 6;
    nat?: string[];
    notNat?: string[];
    filter?: string[];
    notFilter?: string[];
  }[] = [
    {
      name: 'listed ports are redirected to the inbound port, the admin port returns first',
      config: { inboundPorts: [8080, 9090] },
      nat: [
        '-A TOLLGATE_INBOUND -p tcp -m tcp --dport 15020 -j RETURN',
        '-A TOLLGATE_INBOUND -p tcp -m tcp --dport 8080 -j TOLLGATE_IN_REDIRECT',
        '-A TOLLGATE_INBOUND -p tcp -m tcp --dport 9090 -j TOLLGATE_IN_REDIRECT',
        '-A TOLLGATE_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006',
      ],
      notNat: ['-A TOLLGATE_INBOUND -p tcp -j TOLLGATE_IN_REDIRECT'],
    },
    {
      name: "'*' redirects every port but the exclusions",
      config: { inboundPorts: '*', excludeInboundPorts: [22] },
      nat: [
        '-A TOLLGATE_INBOUND -p tcp -m tcp --dport 22 -j RETURN',
        '-A TOLLGATE_INBOUND -p tcp -j TOLLGATE_IN_REDIRECT',
      ],
    },
    {
      name: 'excluded inbound ports pass the guard, everything else new is reset',
      config: { excludeInboundPorts: [22, 9000] },
      filter: [
        '-A TOLLGATE_INBOUND_GUARD -p tcp -m tcp --dport 22 -j RETURN',
        '-A TOLLGATE_INBOUND_GUARD -p tcp -m tcp --dport 9000 -j RETURN',
        '-A TOLLGATE_INBOUND_GUARD -p tcp -j REJECT --reject-with tcp-reset',
      ],
      notNat: ['-A TOLLGATE_INBOUND -p tcp -m tcp --dport 22 -j RETURN'],
    },
    {
      name: 'outbound exclusions: only this family’s CIDRs, then ports, then the redirect',
      config: { excludeOutboundCidrs: ['10.96.0.0/12', 'fd00::/8'], excludeOutboundPorts: [5432] },
      nat: [
        '-A TOLLGATE_OUTPUT -d 10.96.0.0/12 -j RETURN',
        '-A TOLLGATE_OUTPUT -p tcp -m tcp --dport 5432 -j RETURN',
        '-A TOLLGATE_OUTPUT -j TOLLGATE_REDIRECT',
      ],
      notNat: ['-A TOLLGATE_OUTPUT -d fd00::/8 -j RETURN'],
    },
    {
      name: 'IPv6: ::1 for loopback and only IPv6 CIDRs',
      family: 6,
      config: { excludeOutboundCidrs: ['10.96.0.0/12', 'fd00::/8'] },
      nat: [
        '-A TOLLGATE_OUTPUT ! -d ::1/128 -o lo -m owner --uid-owner 1337 -j TOLLGATE_INBOUND',
        '-A TOLLGATE_OUTPUT -d ::1/128 -j RETURN',
        '-A TOLLGATE_OUTPUT -d fd00::/8 -j RETURN',
      ],
      notNat: [
        '-A TOLLGATE_OUTPUT -d 10.96.0.0/12 -j RETURN',
        '-A TOLLGATE_OUTPUT -d 127.0.0.1/32 -j RETURN',
      ],
    },
    {
      name: "the agent's UID and ports come from the config",
      config: { agentUid: 2000, inboundPort: 16006, outboundPort: 16001, adminPort: 16020 },
      nat: [
        '-A TOLLGATE_IN_REDIRECT -p tcp -j REDIRECT --to-ports 16006',
        '-A TOLLGATE_REDIRECT -p tcp -j REDIRECT --to-ports 16001',
        '-A TOLLGATE_INBOUND -p tcp -m tcp --dport 16020 -j RETURN',
        '-A TOLLGATE_OUTPUT -m owner --uid-owner 2000 -j RETURN',
      ],
      filter: ['-A TOLLGATE_INBOUND_GUARD -p tcp -m tcp --dport 16020 -j RETURN'],
    },
    {
      name: 'no inbound port: nothing redirected in, every new inbound connection but the admin port is reset',
      config: { inboundPorts: [] },
      notNat: ['-A TOLLGATE_INBOUND -p tcp -j TOLLGATE_IN_REDIRECT'],
      filter: ['-A TOLLGATE_INBOUND_GUARD -p tcp -j REJECT --reject-with tcp-reset'],
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const r = captureRules({ ...BASE, ...c.config }, c.family ?? 4);
      for (const line of c.nat ?? []) assert.ok(r.nat.rules.includes(line), `nat lacks ${line}`);
      for (const line of c.notNat ?? []) assert.ok(!r.nat.rules.includes(line), `nat has ${line}`);
      for (const line of c.filter ?? []) assert.ok(r.filter.rules.includes(line), `filter lacks ${line}`);
      for (const line of c.notFilter ?? []) assert.ok(!r.filter.rules.includes(line), `filter has ${line}`);
    });
  }

  test('outbound order: the agent’s own traffic and loopback before any redirect', () => {
    const { rules } = captureRules(BASE, 4).nat;
    const output = rules.filter((l) => l.startsWith('-A TOLLGATE_OUTPUT'));
    assert.deepEqual(output, [
      '-A TOLLGATE_OUTPUT ! -d 127.0.0.1/32 -o lo -m owner --uid-owner 1337 -j TOLLGATE_INBOUND',
      '-A TOLLGATE_OUTPUT -o lo -m owner ! --uid-owner 1337 -j RETURN',
      '-A TOLLGATE_OUTPUT -m owner --uid-owner 1337 -j RETURN',
      '-A TOLLGATE_OUTPUT -d 127.0.0.1/32 -j RETURN',
      '-A TOLLGATE_OUTPUT -j TOLLGATE_REDIRECT',
    ]);
  });

  test('the guard lets loopback, established and redirected traffic through before refusing', () => {
    const { rules, jumps } = captureRules(BASE, 4).filter;
    assert.deepEqual(rules.slice(0, 3), [
      '-A TOLLGATE_INBOUND_GUARD -i lo -j RETURN',
      '-A TOLLGATE_INBOUND_GUARD -m conntrack ! --ctstate NEW -j RETURN',
      '-A TOLLGATE_INBOUND_GUARD -m conntrack --ctstate DNAT -j RETURN',
    ]);
    assert.equal(rules.at(-1), '-A TOLLGATE_INBOUND_GUARD -p tcp -j REJECT --reject-with tcp-reset');
    assert.deepEqual(jumps, ['-A INPUT -p tcp -j TOLLGATE_INBOUND_GUARD']);
  });

  test('jumps from the built-in chains, TCP only', () => {
    assert.deepEqual(captureRules(BASE, 6).nat.jumps, [
      '-A PREROUTING -p tcp -j TOLLGATE_INBOUND',
      '-A OUTPUT -p tcp -j TOLLGATE_OUTPUT',
    ]);
  });
});

/**
 * Golden files: testdata/<case>.args holds the flags, <case>.rules what
 * `tollgate init --dry-run` prints. REFRESH_GOLDEN=1 rewrites the .rules files.
 */
describe('dry-run golden files', () => {
  const dir = new URL('./testdata/', import.meta.url);
  const cases = readdirSync(dir)
    .filter((f) => f.endsWith('.args'))
    .map((f) => f.slice(0, -'.args'.length))
    .sort();

  test('has the default case', () => {
    assert.ok(cases.includes('default'));
  });

  for (const name of cases) {
    test(name, () => {
      const args = readFileSync(new URL(`${name}.args`, dir), 'utf8')
        .trim()
        .split(/\s+/);
      const options = parseInitArgs(args);
      assert.ok(options);
      const actual = `${dryRunText(options.capture)}\n`;
      const out = new URL(`${name}.rules`, dir);
      if (process.env.REFRESH_GOLDEN === '1') writeFileSync(out, actual);
      assert.ok(existsSync(out), `${name}.rules is missing: run with REFRESH_GOLDEN=1 to create it`);
      assert.equal(
        actual,
        readFileSync(out, 'utf8'),
        `${name}: the rules changed (if intended, run with REFRESH_GOLDEN=1 and review the diff)`,
      );
    });
  }
});
