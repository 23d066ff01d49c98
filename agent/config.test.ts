import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AGENT_FLAGS, type AgentConfig, agentHelp, ConfigError, parseAgentConfig } from './config.ts';

const REQUIRED = ['--policy', '/etc/tollgate/policy.yaml', '--upstream', 'http://127.0.0.1:8080'];

function parse(args: string[]): AgentConfig {
  const config = parseAgentConfig(args);
  assert.ok(config, 'not --help');
  return config;
}

/** The problems parseAgentConfig throws, or [] when it does not throw. */
function problems(args: string[]): string[] {
  try {
    parseAgentConfig(args);
    return [];
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    assert.equal(e.code, 'ERR_CONFIG_INVALID');
    assert.equal(e.message, e.problems.join('; '));
    return e.problems;
  }
}

describe('parseAgentConfig', () => {
  test('defaults', () => {
    const c = parse(REQUIRED);
    assert.equal(c.policyPath, '/etc/tollgate/policy.yaml');
    assert.equal(c.upstream.href, 'http://127.0.0.1:8080/');
    assert.deepEqual(c.listen, { host: '0.0.0.0', port: 15006 });
    assert.deepEqual(c.admin, { host: '127.0.0.1', port: 15020 });
    assert.equal(c.labels, null);
    assert.equal(c.logLevel, 'info');
    assert.equal(c.outbound, null);
  });

  test('every flag', () => {
    const c = parse([
      ...REQUIRED,
      '--listen',
      '127.0.0.1:9000',
      '--admin=[::1]:9001',
      '--labels',
      'app=orders,tier=api',
      '--log-level',
      'debug',
      '--outbound',
      '0.0.0.0:15001',
    ]);
    assert.deepEqual(c.outbound, { host: '0.0.0.0', port: 15001 });
    assert.deepEqual(c.listen, { host: '127.0.0.1', port: 9000 });
    assert.deepEqual(c.admin, { host: '::1', port: 9001 });
    assert.deepEqual(c.labels, { app: 'orders', tier: 'api' });
    assert.equal(c.logLevel, 'debug');
  });

  const hostPorts: [text: string, expected: { host: string; port: number } | null][] = [
    ['0.0.0.0:15006', { host: '0.0.0.0', port: 15006 }],
    ['localhost:80', { host: 'localhost', port: 80 }],
    ['[::1]:15006', { host: '::1', port: 15006 }],
    ['[::]:0', { host: '::', port: 0 }],
    ['[fe80::1%eth0]:80', null],
    ['127.0.0.1:65535', { host: '127.0.0.1', port: 65535 }],
    ['127.0.0.1:65536', null],
    ['127.0.0.1:123456', null],
    ['127.0.0.1', null],
    [':8080', null],
    ['::1:15006', null],
    ['[::1]', null],
    ['127.0.0.1:http', null],
    ['127.0.0.1:-1', null],
    ['', null],
  ];
  for (const [text, expected] of hostPorts) {
    test(`--listen ${JSON.stringify(text)} → ${expected ? `${expected.host} ${expected.port}` : 'problem'}`, () => {
      if (expected) {
        assert.deepEqual(parse([...REQUIRED, `--listen=${text}`]).listen, expected);
      } else {
        assert.deepEqual(problems([...REQUIRED, `--listen=${text}`]), [
          `--listen: expected HOST:PORT, got ${JSON.stringify(text)}`,
        ]);
      }
    });
  }

  const upstreams: [text: string, problem: RegExp | null][] = [
    ['http://127.0.0.1:8080', null],
    ['http://127.0.0.1:8080/', null],
    ['http://app', null],
    ['https://127.0.0.1:8443', /only http:\/\/ upstreams/],
    ['http://127.0.0.1:8080/api', /give an origin/],
    ['http://127.0.0.1:8080/?x=1', /give an origin/],
    ['http://127.0.0.1:8080/#frag', /give an origin/],
    ['ftp://app', /only http:\/\//],
    ['127.0.0.1:8080', /not a URL/],
    ['not a url', /not a URL/],
  ];
  for (const [text, problem] of upstreams) {
    test(`--upstream ${text} → ${problem ? 'problem' : 'ok'}`, () => {
      const args = ['--policy', 'p.yaml', '--upstream', text];
      if (problem === null) assert.equal(parse(args).upstream.protocol, 'http:');
      else {
        const found = problems(args);
        assert.equal(found.length, 1, found.join('\n'));
        assert.match(found[0] ?? '', problem);
      }
    });
  }

  test('https with a path reports both problems', () => {
    assert.equal(problems(['--policy', 'p', '--upstream', 'https://app/x']).length, 2);
  });

  const labels: [text: string, expected: Record<string, string> | RegExp][] = [
    ['app=orders', { app: 'orders' }],
    ['app=orders,,tier=api,', { app: 'orders', tier: 'api' }],
    [' app = orders , tier=api', { app: 'orders', tier: 'api' }],
    ['app=', { app: '' }],
    ['k=a=b', { k: 'a=b' }],
    ['', {}],
    ['app', /--labels: expected k=v, got "app"/],
    ['=orders', /--labels: expected k=v, got "=orders"/],
  ];
  for (const [text, expected] of labels) {
    test(`--labels ${JSON.stringify(text)}`, () => {
      const args = [...REQUIRED, `--labels=${text}`];
      if (expected instanceof RegExp) assert.match(problems(args).join('\n'), expected);
      else assert.deepEqual(parse(args).labels, expected);
    });
  }

  test('--access-log on|off (default on), --access-log-otlp on|off (default off) and --log-subject none|hash|plain (default none)', () => {
    assert.equal(parse(REQUIRED).accessLog, true);
    assert.equal(parse(REQUIRED).accessLogOtlp, false);
    assert.equal(parse(REQUIRED).logSubject, 'none');
    assert.equal(parse([...REQUIRED, '--access-log', 'off']).accessLog, false);
    assert.equal(parse([...REQUIRED, '--access-log-otlp', 'on']).accessLogOtlp, true);
    assert.equal(parse([...REQUIRED, '--log-subject', 'hash']).logSubject, 'hash');
    assert.equal(parse([...REQUIRED, '--log-subject=plain']).logSubject, 'plain');
    assert.deepEqual(
      problems([...REQUIRED, '--access-log', 'yes', '--access-log-otlp', 'both', '--log-subject', 'sub']),
      ['--access-log: on | off', '--access-log-otlp: on | off', '--log-subject: none | hash | plain'],
    );
  });

  test('a label whose key is blank once trimmed is a problem', () => {
    assert.equal(problems([...REQUIRED, '--labels= =v']).length, 1);
  });

  test('--redis-url: redis://, rediss://, Sentinel or Cluster; credentials allowed, never echoed in a problem', () => {
    assert.equal(parse(REQUIRED).redisUrl, null);
    assert.equal(parse(REQUIRED).redisTimeoutMs, 50);
    const c = parse([
      ...REQUIRED,
      '--redis-url',
      'rediss://app:s3cret@redis:6380/1',
      '--redis-timeout',
      '20',
    ]);
    assert.equal(c.redisUrl, 'rediss://app:s3cret@redis:6380/1');
    assert.equal(c.redisTimeoutMs, 20);
    assert.equal(
      parse([...REQUIRED, '--redis-url=redis://127.0.0.1:6379']).redisUrl,
      'redis://127.0.0.1:6379',
    );
    assert.deepEqual(problems([...REQUIRED, '--redis-url', 'http://redis:6379']), [
      '--redis-url: expected redis://, rediss:// (TLS), redis-sentinel:// or redis-cluster://',
    ]);
    assert.equal(
      parse([...REQUIRED, '--redis-url', 'redis-sentinel://s1,s2/mymaster']).redisUrl,
      'redis-sentinel://s1,s2/mymaster',
    );
    assert.deepEqual(problems([...REQUIRED, '--redis-url', 'redis-cluster://u:s3cret@a:99999']), [
      '--redis-url: bad host list (host[:port],host[:port]...)',
    ]);
    const secret = problems([...REQUIRED, '--redis-url', 'redis://app:s3cret@bad host']);
    assert.deepEqual(secret, ['--redis-url: not a URL']);
    for (const bad of ['0', '-1', '1.5', 'soon', '60001'])
      assert.match(problems([...REQUIRED, `--redis-timeout=${bad}`])[0] ?? '', /^--redis-timeout: /);
  });

  test('every problem is listed together', () => {
    const found = problems([
      '--listen',
      'nope',
      '--admin',
      'x:99999',
      '--labels',
      'bad',
      '--log-level',
      'loud',
      '--outbound',
      '15001',
    ]);
    assert.deepEqual(found, [
      '--policy (standalone) or --operator is required',
      '--log-level: debug | info | warn | error',
      '--upstream is required',
      '--listen: expected HOST:PORT, got "nope"',
      '--admin: expected HOST:PORT, got "x:99999"',
      '--outbound: expected HOST:PORT, got "15001"',
      '--labels: expected k=v, got "bad"',
    ]);
  });

  test('--mesh: a file with --outbound, standalone only', () => {
    const c = parse([...REQUIRED, '--outbound', '0.0.0.0:15001', '--mesh', '/etc/tollgate/mesh.yaml']);
    assert.equal(c.meshFile, '/etc/tollgate/mesh.yaml');
    assert.equal(parse(REQUIRED).meshFile, null);
    assert.deepEqual(problems([...REQUIRED, '--mesh', '/m.yaml']), [
      '--mesh needs --outbound (it says which outbound destinations get mTLS)',
    ]);
    assert.deepEqual(problems([...REQUIRED, '--outbound', '0.0.0.0:15001', '--mesh=']), [
      '--mesh: a file is required',
    ]);
  });

  const argErrors: [what: string, args: string[], problem: RegExp][] = [
    ['an unknown flag', [...REQUIRED, '--bogus'], /Unknown option '--bogus'/],
    ['a positional argument', [...REQUIRED, 'extra'], /positional/],
    ['a flag without its value', ['--upstream', 'http://127.0.0.1:8080', '--policy'], /--policy/],
  ];
  for (const [what, args, problem] of argErrors) {
    test(`${what} is a ConfigError`, () => {
      const found = problems(args);
      // The parse error comes first; a missing value may also be reported as a missing flag.
      assert.ok(found.length >= 1);
      assert.match(found[0] ?? '', problem);
    });
  }

  test('an unknown flag is listed together with the other problems', () => {
    assert.equal(problems(['--bogus']).length, 3);
  });

  test('an empty --policy is a problem', () => {
    assert.equal(problems(['--policy=', '--upstream', 'http://127.0.0.1:8080']).length, 1);
  });

  test('--help returns null, even with other flags or problems', () => {
    assert.equal(parseAgentConfig(['--help']), null);
    assert.equal(parseAgentConfig([...REQUIRED, '--help']), null);
    assert.equal(parseAgentConfig(['--listen', 'nope', '--help']), null);
  });

  test('the result is frozen', () => {
    const c = parse([...REQUIRED, '--labels', 'app=orders']);
    assert.ok(Object.isFrozen(c));
    assert.throws(() => {
      (c as { policyPath: string }).policyPath = 'other';
    }, TypeError);
  });

  test('the nested values of the result are frozen too', () => {
    const c = parse([...REQUIRED, '--labels', 'app=orders']);
    assert.ok(Object.isFrozen(c.listen));
    assert.ok(Object.isFrozen(c.admin));
    assert.ok(Object.isFrozen(c.labels));
  });

  test('parsing does not mutate the arguments', () => {
    const args = [...REQUIRED, '--labels', 'a=b'];
    const copy = [...args];
    parse(args);
    assert.deepEqual(args, copy);
  });
});

describe('parseAgentConfig: operator mode', () => {
  const OPERATOR = [
    '--operator',
    'tollgate-operator.tollgate-system.svc:15010',
    '--operator-ca',
    '/etc/tollgate/ca.crt',
    '--upstream',
    'http://127.0.0.1:8080',
  ];
  const POD = { POD_NAME: 'orders-7d9f', POD_NAMESPACE: 'shop' };
  const parseOp = (args: string[], env: Record<string, string | undefined> = POD) => {
    const c = parseAgentConfig(args, env);
    assert.ok(c);
    return c;
  };
  const problemsOp = (args: string[], env: Record<string, string | undefined> = POD) => {
    try {
      parseAgentConfig(args, env);
      return [];
    } catch (e) {
      assert.ok(e instanceof ConfigError);
      return e.problems;
    }
  };

  test('--mesh is refused in operator mode: the operator streams the mesh', () => {
    assert.deepEqual(problemsOp([...OPERATOR, '--outbound', '0.0.0.0:15001', '--mesh', '/m.yaml']), [
      '--mesh: in operator mode the operator streams the mesh',
    ]);
  });

  test('defaults: pod from the environment, server name from the address, the standard token path', () => {
    const c = parseOp(OPERATOR);
    assert.deepEqual(c.operator, {
      target: 'tollgate-operator.tollgate-system.svc:15010',
      caFile: '/etc/tollgate/ca.crt',
      serverName: 'tollgate-operator.tollgate-system.svc',
      tokenFile: '/var/run/secrets/tollgate/serviceaccount/token',
      podName: 'orders-7d9f',
      podNamespace: 'shop',
      stateDir: null,
      backoffMs: { min: 500, max: 30_000 },
      mtls: true,
    });
    assert.equal(c.policyPath, '');
    assert.ok(Object.isFrozen(c.operator));
    assert.ok(Object.isFrozen(c.operator?.backoffMs));
  });

  test('every operator flag; flags win over the environment', () => {
    const c = parseOp([
      ...OPERATOR,
      '--operator-server-name',
      'operator.internal',
      '--token-file',
      '/t/token',
      '--pod-name',
      'p1',
      '--pod-namespace',
      'ns1',
      '--state-dir',
      '/var/lib/tollgate',
      '--operator-backoff-ms',
      '20,400',
    ]);
    assert.deepEqual(c.operator, {
      target: 'tollgate-operator.tollgate-system.svc:15010',
      caFile: '/etc/tollgate/ca.crt',
      serverName: 'operator.internal',
      tokenFile: '/t/token',
      podName: 'p1',
      podNamespace: 'ns1',
      stateDir: '/var/lib/tollgate',
      backoffMs: { min: 20, max: 400 },
      mtls: true,
    });
  });

  test('an IPv6 operator address: the server name is the bare address', () => {
    const args = [...OPERATOR.slice(2), '--operator', '[::1]:15010'];
    assert.equal(parseOp(args).operator?.serverName, '::1');
  });

  test('--mtls: on by default, off when asked or when certificate files give the identity', () => {
    assert.equal(parseOp(OPERATOR).operator?.mtls, true);
    assert.equal(parseOp([...OPERATOR, '--mtls', 'off']).operator?.mtls, false);
    const files = ['--tls-cert', 'c', '--tls-key', 'k', '--trust-bundle', 'b'];
    const c = parseOp([...OPERATOR, ...files]);
    assert.equal(c.operator?.mtls, false);
    assert.deepEqual(c.tls, { cert: 'c', key: 'k', trustBundle: 'b' });
    assert.deepEqual(problemsOp([...OPERATOR, ...files, '--mtls', 'on']), [
      '--mtls on and --tls-cert/--tls-key/--trust-bundle exclude each other (one identity)',
    ]);
    assert.deepEqual(problemsOp([...OPERATOR, '--mtls', 'yes']), ['--mtls: on | off, got "yes"']);
  });

  test('standalone: no operator config, POD_NAME ignored', () => {
    assert.equal(parseOp(['--policy', 'p.yaml', '--upstream', 'http://127.0.0.1:8080']).operator, null);
  });

  const bad: [what: string, args: string[], env: Record<string, string>, expected: string[]][] = [
    [
      '--policy with --operator',
      [...OPERATOR, '--policy', 'p.yaml'],
      POD,
      ['--policy and --operator exclude each other'],
    ],
    [
      'no CA, no pod',
      ['--operator', 'op:15010', '--upstream', 'http://127.0.0.1:8080'],
      {},
      [
        '--operator-ca is required with --operator',
        '--pod-name (or $POD_NAME) is required with --operator',
        '--pod-namespace (or $POD_NAMESPACE) is required with --operator',
      ],
    ],
    ['a bad address', [...OPERATOR, '--operator', 'op'], POD, ['--operator: expected HOST:PORT, got "op"']],
    [
      '--labels with --operator',
      [...OPERATOR, '--labels', 'app=orders'],
      POD,
      ['--labels is for --policy (the operator selects the policies)'],
    ],
    [
      'operator flags without --operator',
      [
        '--policy',
        'p.yaml',
        '--upstream',
        'http://127.0.0.1:8080',
        '--state-dir',
        '/s',
        '--token-file',
        '/t',
        '--operator-ca',
        '/ca',
        '--mtls',
        'on',
      ],
      POD,
      [
        '--operator-ca needs --operator',
        '--token-file needs --operator',
        '--state-dir needs --operator',
        '--mtls needs --operator',
      ],
    ],
    [
      'empty values',
      [...OPERATOR, '--state-dir=', '--token-file=', '--operator-server-name='],
      POD,
      [
        '--token-file: a file is required',
        '--state-dir: a folder is required',
        '--operator-server-name: a name is required',
      ],
    ],
  ];
  for (const [what, args, env, expected] of bad) {
    test(`${what} → problems`, () => {
      assert.deepEqual(problemsOp(args, env), expected);
    });
  }

  for (const text of ['0,100', '100,50', '100', 'a,b', '1,2,3', '-1,5', '']) {
    test(`--operator-backoff-ms ${JSON.stringify(text)} → a problem`, () => {
      assert.deepEqual(problemsOp([...OPERATOR, `--operator-backoff-ms=${text}`]), [
        `--operator-backoff-ms: expected MIN,MAX in ms with 1 <= MIN <= MAX, got ${JSON.stringify(text)}`,
      ]);
    });
  }

  test('neither --policy nor --operator', () => {
    assert.deepEqual(problemsOp(['--upstream', 'http://127.0.0.1:8080']), [
      '--policy (standalone) or --operator is required',
    ]);
  });
});

describe('agentHelp', () => {
  const help = agentHelp();

  test('starts with the usage line', () => {
    assert.match(help, /^Usage: tollgate agent --policy PATH --upstream URL \[options\]\n/);
    assert.match(
      help,
      /\n {7}tollgate agent --operator HOST:PORT --operator-ca FILE --upstream URL \[options\]\n/,
    );
  });

  test('lists every flag with its description and default', () => {
    for (const [name, spec] of Object.entries(AGENT_FLAGS)) {
      const line = help
        .split('\n')
        .find((l) => l.trimStart().startsWith(`--${name} `) || l.trim() === `--${name}`);
      assert.ok(line, `--${name} listed`);
      assert.ok(line.includes(spec.description), `--${name} described`);
      if (spec.default !== undefined)
        assert.ok(line.includes(`(default ${spec.default})`), `--${name} default`);
      if (spec.env !== undefined) assert.ok(line.includes(`(default $${spec.env})`), `--${name} env`);
      if (spec.type === 'string') assert.match(line, new RegExp(`--${name} [A-Z_:,]+ `));
    }
  });

  test('every declared flag is accepted by the parser', () => {
    const flags = Object.keys(AGENT_FLAGS).filter((f) => f !== 'help');
    assert.deepEqual(flags.sort(), [
      'access-log',
      'access-log-otlp',
      'admin',
      'labels',
      'listen',
      'log-level',
      'log-subject',
      'mesh',
      'mtls',
      'operator',
      'operator-backoff-ms',
      'operator-ca',
      'operator-server-name',
      'outbound',
      'pod-name',
      'pod-namespace',
      'policy',
      'redis-timeout',
      'redis-url',
      'state-dir',
      'tls-cert',
      'tls-key',
      'token-file',
      'trust-bundle',
      'upstream',
    ]);
  });
});

describe('mTLS flags', () => {
  const base = ['--policy', 'p.yaml', '--upstream', 'http://127.0.0.1:8080'];
  test('all three together', () => {
    const c = parseAgentConfig([...base, '--tls-cert', 'c', '--tls-key', 'k', '--trust-bundle', 'b']);
    assert.deepEqual(c?.tls, { cert: 'c', key: 'k', trustBundle: 'b' });
    assert.equal(parseAgentConfig(base)?.tls, null);
  });
  test('one or two of them is a usage error', () => {
    assert.throws(
      () => parseAgentConfig([...base, '--tls-cert', 'c']),
      (e: Error & { problems?: string[] }) =>
        (e.problems ?? []).includes('--tls-cert, --tls-key and --trust-bundle go together'),
    );
  });
});
