import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { supportsNativeSidecars } from './admission/native-sidecars.ts';
import { OperatorConfigError, operatorHelp, parseOperatorConfig } from './config.ts';

function parse(args: string[]) {
  const config = parseOperatorConfig(args, {}, '1.2.3');
  assert.ok(config);
  return config;
}

function problems(args: string[]): string[] {
  try {
    parseOperatorConfig(args, {}, '1.2.3');
  } catch (e) {
    if (e instanceof OperatorConfigError) return e.problems;
    throw e;
  }
  return [];
}

describe('operator config: admission flags', () => {
  test('defaults', () => {
    const c = parse([]);
    assert.deepEqual(c.webhookListen, { host: '0.0.0.0', port: 9443 });
    assert.equal(c.agentImage, 'ghcr.io/tollgate-dev/tollgate:1.2.3');
    assert.equal(c.initImage, 'ghcr.io/tollgate-dev/tollgate:1.2.3');
    assert.equal(c.agentImagePullPolicy, null);
    assert.equal(c.initImagePullPolicy, null);
    assert.equal(c.nativeSidecars, 'auto');
    assert.equal(c.manageCertificates, true);
    assert.equal(c.trustDomain, 'cluster.local');
    assert.deepEqual(c.agentResources, {
      requests: { cpu: '100m', memory: '64Mi' },
      limits: { memory: '256Mi' },
    });
    assert.equal(c.agentLogLevel, 'info');
    assert.equal(c.agentOtlp, null);
    assert.equal(c.agentRedisUrl, null);
    assert.ok(Object.isFrozen(c));
    assert.equal(
      parseOperatorConfig([], {})?.agentImage,
      'ghcr.io/tollgate-dev/tollgate:latest',
      'no version: latest',
    );
  });

  test('every flag set', () => {
    const c = parse([
      '--webhook-listen=127.0.0.1:10443',
      '--agent-image=ghcr.io/x/tollgate:9',
      '--agent-image-pull-policy=Always',
      '--native-sidecars=false',
      '--manage-certificates=false',
      '--trust-domain=prod.example.com',
      '--agent-cpu-request=50m',
      '--agent-cpu-limit=1',
      '--agent-memory-request=32Mi',
      '--agent-memory-limit=',
      '--agent-log-level=warn',
      '--agent-otlp-endpoint=http://otel-collector.observability:4317',
      '--agent-otlp-protocol=grpc',
      '--agent-redis-url=rediss://sidecar:s3cret@redis.shop:6380/0',
    ]);
    assert.deepEqual(c.webhookListen, { host: '127.0.0.1', port: 10443 });
    assert.equal(c.agentImage, 'ghcr.io/x/tollgate:9');
    assert.equal(c.initImage, 'ghcr.io/x/tollgate:9', 'the init image follows the agent image');
    assert.equal(c.agentImagePullPolicy, 'Always');
    assert.equal(c.initImagePullPolicy, 'Always', 'and its pull policy too');
    assert.equal(c.nativeSidecars, false);
    assert.equal(c.manageCertificates, false);
    assert.equal(c.trustDomain, 'prod.example.com');
    assert.deepEqual(c.agentResources, { requests: { cpu: '50m', memory: '32Mi' }, limits: { cpu: '1' } });
    assert.equal(c.agentLogLevel, 'warn');
    assert.deepEqual(c.agentOtlp, { endpoint: 'http://otel-collector.observability:4317', protocol: 'grpc' });
    assert.equal(c.agentRedisUrl, 'rediss://sidecar:s3cret@redis.shop:6380/0');
    const init = parse([
      '--init-image=i:1',
      '--init-image-pull-policy=Never',
      '--agent-image-pull-policy=Always',
    ]);
    assert.deepEqual(
      [init.initImage, init.initImagePullPolicy, init.agentImagePullPolicy],
      ['i:1', 'Never', 'Always'],
    );
    assert.equal(parse(['--native-sidecars=true']).nativeSidecars, true);
    assert.deepEqual(parse(['--agent-otlp-endpoint=https://otel:4318']).agentOtlp, {
      endpoint: 'https://otel:4318',
      protocol: 'http/protobuf',
    });
    for (const url of ['redis://r:6379', 'redis-sentinel://s1:26379,s2/mymaster', 'redis-cluster://a,b:7000'])
      assert.equal(parse([`--agent-redis-url=${url}`]).agentRedisUrl, url);
  });

  test('quantities as Kubernetes writes them', () => {
    const c = parse([
      '--agent-cpu-request=0.5',
      '--agent-cpu-limit=1e3',
      '--agent-memory-request=1.5Gi',
      '--agent-memory-limit=2G',
    ]);
    assert.deepEqual(c.agentResources, {
      requests: { cpu: '0.5', memory: '1.5Gi' },
      limits: { cpu: '1e3', memory: '2G' },
    });
    assert.deepEqual(
      parse(['--agent-cpu-request=', '--agent-memory-request=', '--agent-memory-limit=']).agentResources,
      {},
    );
  });

  test('bad values are all listed', () => {
    assert.deepEqual(
      problems([
        '--webhook-listen=9443',
        '--native-sidecars=yes',
        '--manage-certificates=1',
        '--agent-image-pull-policy=always',
        '--init-image-pull-policy=Sometimes',
        '--trust-domain=Cluster.Local',
        '--agent-cpu-request=fast',
        '--agent-memory-request=512Mi',
        '--agent-log-level=trace',
        '--agent-otlp-endpoint=otel:4317',
        '--agent-otlp-protocol=http',
      ]),
      [
        '--agent-image-pull-policy: Always | IfNotPresent | Never, got "always"',
        '--webhook-listen: expected HOST:PORT, got "9443"',
        '--init-image-pull-policy: Always | IfNotPresent | Never, got "Sometimes"',
        '--native-sidecars: auto | true | false, got "yes"',
        '--manage-certificates: true | false, got "1"',
        '--trust-domain: expected a lowercase DNS name such as cluster.local, got "Cluster.Local"',
        '--agent-cpu-request: expected a quantity such as 100m or 64Mi, got "fast"',
        '--agent-memory-request 512Mi exceeds --agent-memory-limit 256Mi',
        '--agent-log-level: debug | info | warn | error, got "trace"',
        '--agent-otlp-protocol: grpc | http/protobuf | http/json, got "http"',
        '--agent-otlp-endpoint: expected an http:// or https:// URL, got "otel:4317"',
      ],
    );
  });

  test('trust domains are DNS names', () => {
    for (const good of ['cluster.local', 'prod.example.com', 'td', 'a-b.c0', `${'a'.repeat(63)}.io`])
      assert.deepEqual(problems([`--trust-domain=${good}`]), [], good);
    for (const bad of [
      '',
      'spiffe://cluster.local',
      'cluster.local.',
      '-a.b',
      'a_b.c',
      'a..b',
      `${'a'.repeat(64)}.io`,
    ])
      assert.equal(problems([`--trust-domain=${bad}`]).length, 1, bad);
  });

  test('--workload-cert-ttl: 24h by default, from 10s to 8760h', () => {
    assert.equal(parseOperatorConfig([], {})?.workloadCertTtlMs, 86_400_000);
    assert.equal(parseOperatorConfig(['--workload-cert-ttl=30s'], {})?.workloadCertTtlMs, 30_000);
    for (const bad of ['5s', '9000h', 'a day', ''])
      assert.deepEqual(
        problems([`--workload-cert-ttl=${bad}`]),
        [`--workload-cert-ttl: expected a duration from 10s to 8760h, got ${JSON.stringify(bad)}`],
        bad,
      );
  });

  test('--ca-rotate-before: 8760h by default, 0s (only on request) to 87600h', () => {
    assert.equal(parseOperatorConfig([], {})?.caRotateBeforeMs, 8760 * 3_600_000);
    assert.equal(parseOperatorConfig(['--ca-rotate-before=0s'], {})?.caRotateBeforeMs, 0);
    for (const bad of ['90000h', 'soon', ''])
      assert.deepEqual(
        problems([`--ca-rotate-before=${bad}`]),
        [`--ca-rotate-before: expected a duration from 0s to 87600h, got ${JSON.stringify(bad)}`],
        bad,
      );
  });

  test('a bad Redis URL is refused without quoting it (it may hold a password)', () => {
    for (const url of [
      'http://user:s3cret@redis:6379',
      'redis-sentinel://user:s3cret@s1:26379',
      'rediss://user:s3cret@/0',
    ]) {
      const found = problems([`--agent-redis-url=${url}`]);
      assert.equal(found.length, 1, url);
      assert.match(found[0] ?? '', /^--agent-redis-url: /);
      assert.doesNotMatch(found.join(' '), /s3cret/);
    }
  });

  test('the old flag names are gone (every setting declared once)', () => {
    for (const old of ['--sidecar-cpu-request=1', '--sidecar-log-level=info', '--agent-resources={}'])
      assert.match(problems([old]).join(' '), /Unknown option/);
  });

  test('help lists the flags with their defaults', () => {
    const help = operatorHelp();
    for (const flag of [
      '--webhook-listen',
      '--agent-image',
      '--agent-image-pull-policy',
      '--init-image-pull-policy',
      '--native-sidecars',
      '--manage-certificates',
      '--agent-otlp-endpoint',
      '--agent-redis-url',
    ])
      assert.match(help, new RegExp(flag));
    assert.match(help, /--trust-domain TRUST_DOMAIN .*\(default cluster\.local\)/);
    assert.match(help, /ghcr\.io\/tollgate-dev\/tollgate:VERSION/);
  });
});

describe('supportsNativeSidecars', () => {
  const table: [string, string, boolean][] = [
    ['1', '28', false],
    ['1', '29', true],
    ['1', '29+', true],
    ['1', '33', true],
    ['2', '0', true],
    ['', '', false],
    ['1', 'x', false],
  ];
  for (const [major, minor, want] of table)
    test(`${major}.${minor} → ${want}`, () => assert.equal(supportsNativeSidecars({ major, minor }), want));
});
