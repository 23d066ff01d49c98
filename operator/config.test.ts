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
    assert.equal(c.agentImage, 'tollgate:1.2.3');
    assert.equal(c.initImage, 'tollgate:1.2.3');
    assert.equal(c.nativeSidecars, 'auto');
    assert.equal(c.manageCertificates, true);
    assert.deepEqual(c.sidecarResources, {
      requests: { cpu: '100m', memory: '64Mi' },
      limits: { memory: '256Mi' },
    });
    assert.equal(c.sidecarLogLevel, 'info');
    assert.ok(Object.isFrozen(c));
  });

  test('every flag set', () => {
    const c = parse([
      '--webhook-listen=127.0.0.1:10443',
      '--agent-image=ghcr.io/x/tollgate:9',
      '--native-sidecars=false',
      '--manage-certificates=false',
      '--sidecar-cpu-request=50m',
      '--sidecar-cpu-limit=1',
      '--sidecar-memory-request=32Mi',
      '--sidecar-memory-limit=',
      '--sidecar-log-level=warn',
    ]);
    assert.deepEqual(c.webhookListen, { host: '127.0.0.1', port: 10443 });
    assert.equal(c.agentImage, 'ghcr.io/x/tollgate:9');
    assert.equal(c.initImage, 'ghcr.io/x/tollgate:9', 'the init image follows the agent image');
    assert.equal(c.nativeSidecars, false);
    assert.equal(c.manageCertificates, false);
    assert.deepEqual(c.sidecarResources, { requests: { cpu: '50m', memory: '32Mi' }, limits: { cpu: '1' } });
    assert.equal(c.sidecarLogLevel, 'warn');
    assert.equal(parse(['--init-image=i:1', '--native-sidecars=true']).initImage, 'i:1');
    assert.equal(parse(['--native-sidecars=true']).nativeSidecars, true);
  });

  test('bad values are all listed', () => {
    assert.deepEqual(
      problems([
        '--webhook-listen=9443',
        '--native-sidecars=yes',
        '--manage-certificates=1',
        '--sidecar-cpu-request=fast',
        '--sidecar-memory-request=512Mi',
        '--sidecar-log-level=trace',
      ]),
      [
        '--webhook-listen: expected HOST:PORT, got "9443"',
        '--native-sidecars: auto | true | false, got "yes"',
        '--manage-certificates: true | false, got "1"',
        '--sidecar-cpu-request: expected a quantity such as 100m or 64Mi, got "fast"',
        '--sidecar-memory-request 512Mi exceeds --sidecar-memory-limit 256Mi',
        '--sidecar-log-level: debug | info | warn | error, got "trace"',
      ],
    );
  });

  test('help lists the new flags', () => {
    const help = operatorHelp();
    for (const flag of ['--webhook-listen', '--agent-image', '--native-sidecars', '--manage-certificates'])
      assert.match(help, new RegExp(flag));
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
