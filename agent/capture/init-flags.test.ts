import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError } from '../config.ts';
import { INIT_FLAGS, initHelp, parseInitArgs } from './init-flags.ts';

function problems(args: string[]): string[] {
  try {
    parseInitArgs(args);
  } catch (e) {
    assert.ok(e instanceof ConfigError);
    return e.problems;
  }
  assert.fail(`no problem with ${args.join(' ')}`);
}

describe('parseInitArgs', () => {
  test('defaults: the agent on 15006/15001/15020 as UID 1337, no exclusions', () => {
    assert.deepEqual(parseInitArgs(['--inbound-ports', '8080']), {
      capture: {
        inboundPorts: [8080],
        excludeInboundPorts: [],
        excludeOutboundPorts: [],
        excludeOutboundCidrs: [],
        agentUid: 1337,
        inboundPort: 15006,
        outboundPort: 15001,
        adminPort: 15020,
      },
      dryRun: false,
    });
  });

  test('every flag the injector passes', () => {
    const o = parseInitArgs([
      '--inbound-ports',
      '9090, 8080,8080,',
      '--exclude-inbound-ports',
      '22',
      '--exclude-outbound-ports',
      '5432,6379',
      '--exclude-outbound-cidrs',
      '10.1.2.3/8, 169.254.169.254,2001:DB8::1/32',
      '--agent-uid',
      '2000',
      '--inbound-port',
      '16006',
      '--outbound-port',
      '16001',
      '--admin-port',
      '16020',
      '--dry-run',
    ]);
    assert.ok(o);
    assert.deepEqual(o.capture, {
      inboundPorts: [8080, 9090],
      excludeInboundPorts: [22],
      excludeOutboundPorts: [5432, 6379],
      excludeOutboundCidrs: ['10.0.0.0/8', '169.254.169.254/32', '2001:db8::/32'],
      agentUid: 2000,
      inboundPort: 16006,
      outboundPort: 16001,
      adminPort: 16020,
    });
    assert.equal(o.dryRun, true);
    assert.ok(Object.isFrozen(o.capture));
  });

  test("'*' captures every port", () => {
    assert.equal(parseInitArgs(['--inbound-ports', '*'])?.capture.inboundPorts, '*');
  });

  test('an empty list captures no inbound port', () => {
    assert.deepEqual(parseInitArgs(['--inbound-ports', ''])?.capture.inboundPorts, []);
  });

  test('--help', () => {
    assert.equal(parseInitArgs(['--help']), null);
  });

  const bad: { args: string[]; expect: RegExp[] }[] = [
    { args: [], expect: [/--inbound-ports is required/] },
    { args: ['--inbound-ports', '8080', 'extra'], expect: [/positional/i] },
    { args: ['--inbound-ports', '8080', '--nope'], expect: [/Unknown option '--nope'/] },
    {
      args: ['--inbound-ports', '0,70000,http,80-90'],
      expect: [/"0"/, /"70000"/, /"http"/, /"80-90"/],
    },
    {
      args: ['--inbound-ports', '8080', '--exclude-outbound-cidrs', '10.0.0.0/33,x'],
      expect: [/"10.0.0.0\/33"/, /"x"/],
    },
    {
      args: ['--inbound-ports', '8080', '--agent-uid', 'nobody'],
      expect: [/--agent-uid: expected a numeric UID/],
    },
    { args: ['--inbound-ports', '8080', '--agent-uid', '0'], expect: [/--agent-uid: 0 would exempt/] },
    {
      args: ['--inbound-ports', '15006,15001,15020'],
      expect: [
        /15001 is the agent's own port/,
        /15006 is the agent's own port/,
        /15020 is the agent's own port/,
      ],
    },
    {
      args: ['--inbound-ports', '8080', '--exclude-inbound-ports', '8080'],
      expect: [/8080 is also in --exclude/],
    },
    {
      args: ['--inbound-ports', '8080', '--exclude-inbound-ports', '15001'],
      expect: [/expose the outbound proxy/],
    },
    { args: ['--inbound-ports', '8080', '--admin-port', '15001'], expect: [/must differ/] },
    {
      args: ['--inbound-ports', '8080', '--outbound-port', 'x'],
      expect: [/--outbound-port: expected a port/],
    },
  ];
  for (const c of bad) {
    test(`refuses ${JSON.stringify(c.args)}`, () => {
      const found = problems(c.args);
      for (const re of c.expect)
        assert.ok(
          found.some((p) => re.test(p)),
          `${re} not in ${JSON.stringify(found)}`,
        );
    });
  }

  test('every problem at once', () => {
    const found = problems([
      '--bogus',
      '--inbound-ports',
      'x',
      '--agent-uid',
      '-1',
      '--exclude-outbound-cidrs',
      'y',
    ]);
    assert.equal(found.length, 4, found.join('\n'));
  });
});

describe('initHelp', () => {
  test('names every flag and its default', () => {
    const help = initHelp();
    for (const name of Object.keys(INIT_FLAGS)) assert.ok(help.includes(`--${name}`), name);
    assert.match(help, /--agent-uid UID .*\(default 1337\)/);
  });
});
