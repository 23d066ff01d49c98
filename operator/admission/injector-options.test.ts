import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseOperatorConfig } from '../config.ts';
import { injectorOptions } from './injector-options.ts';

describe('injectorOptions', () => {
  test('defaults: the images, the Service of the operator in its namespace, the default resources', () => {
    const config = parseOperatorConfig([], { POD_NAMESPACE: 'tollgate-system' }, '1.2.3');
    assert.ok(config);
    assert.deepEqual(injectorOptions(config, '1.2.3'), {
      agentImage: 'ghcr.io/tollgate-dev/tollgate:1.2.3',
      initImage: 'ghcr.io/tollgate-dev/tollgate:1.2.3',
      operatorAddress: 'tollgate-operator.tollgate-system.svc:15010',
      nativeSidecars: 'auto',
      resources: { requests: { cpu: '100m', memory: '64Mi' }, limits: { memory: '256Mi' } },
      logLevel: 'info',
      version: '1.2.3',
    });
  });

  test('every --agent-* and --init-* flag reaches the injector', () => {
    const config = parseOperatorConfig(
      [
        '--serving-secret=security/tollgate-operator-tls',
        '--agent-image=a:1',
        '--agent-image-pull-policy=Always',
        '--init-image=i:1',
        '--init-image-pull-policy=Never',
        '--native-sidecars=true',
        '--agent-cpu-request=50m',
        '--agent-memory-request=48Mi',
        '--agent-cpu-limit=',
        '--agent-memory-limit=128Mi',
        '--agent-log-level=warn',
        '--agent-otlp-endpoint=http://otel:4317',
        '--agent-otlp-protocol=grpc',
        '--agent-redis-url=redis://redis:6379',
      ],
      {},
      '1.2.3',
    );
    assert.ok(config);
    assert.deepEqual(injectorOptions(config, 'v'), {
      agentImage: 'a:1',
      agentImagePullPolicy: 'Always',
      initImage: 'i:1',
      initImagePullPolicy: 'Never',
      operatorAddress: 'tollgate-operator.security.svc:15010',
      nativeSidecars: true,
      resources: { requests: { cpu: '50m', memory: '48Mi' }, limits: { memory: '128Mi' } },
      logLevel: 'warn',
      otlp: { endpoint: 'http://otel:4317', protocol: 'grpc' },
      redisUrl: 'redis://redis:6379',
      version: 'v',
    });
  });
});
