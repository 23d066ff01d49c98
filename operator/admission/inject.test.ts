import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { V1Container, V1Pod, V1Probe } from '@kubernetes/client-node';
import { parseAgentConfig } from '../../agent/config.ts';
import { readOtelConfig } from '../../telemetry/otel/config.ts';
import { applyJsonPatch } from '../../test/kube/patch.ts';
import { agentServiceName, type InjectOptions, type InjectResult, injectSidecar } from './inject.ts';
import { parseCidrList, parsePortList, parseQuantity, sidecarResources } from './inject-settings.ts';

const OPTIONS: InjectOptions = { agentImage: 'tollgate:test', nativeSidecars: false };
const ENABLED = { 'tollgate.dev/inject': 'enabled' };

function pod(annotations: Record<string, string> | undefined, containers: V1Container[], extra = {}): V1Pod {
  return {
    metadata: { name: 'p', namespace: 'shop', ...(annotations ? { annotations } : {}) },
    spec: { containers, ...extra },
  };
}

const app = (ports: number[] = [8080], more: Partial<V1Container> = {}): V1Container => ({
  name: 'app',
  image: 'example/app:1',
  ports: ports.map((containerPort) => ({ containerPort })),
  ...more,
});

function injected(result: InjectResult, original: V1Pod): V1Pod {
  assert.ok(result.injected, result.injected ? '' : result.reason);
  return applyJsonPatch(original, result.patch) as V1Pod;
}

const agentOf = (p: V1Pod) =>
  [...(p.spec?.containers ?? []), ...(p.spec?.initContainers ?? [])].find((c) => c.name === 'tollgate-agent');
const initArgs = (p: V1Pod) => p.spec?.initContainers?.find((c) => c.name === 'tollgate-init')?.args ?? [];
const flag = (args: string[], name: string) => {
  const i = args.indexOf(name);
  return i < 0 ? undefined : args[i + 1];
};

describe('injectSidecar: the decision', () => {
  const cases: [string, Record<string, string> | undefined, Record<string, string>, boolean, string?][] = [
    ['pod annotation', ENABLED, {}, true],
    ['namespace label', undefined, ENABLED, true],
    ['namespace label, pod opts out', { 'tollgate.dev/inject': 'disabled' }, ENABLED, false, 'opted out'],
    ['neither', undefined, {}, false, 'not requested'],
    ['namespace label disabled', undefined, { 'tollgate.dev/inject': 'disabled' }, false, 'not requested'],
    ['pod annotation beats a namespace without label', ENABLED, { other: 'x' }, true],
  ];
  for (const [name, annotations, labels, want, reason] of cases) {
    test(name, () => {
      const r = injectSidecar(pod(annotations, [app()]), labels, OPTIONS);
      assert.equal(r.injected, want);
      if (!r.injected && reason) assert.match(r.reason, new RegExp(reason));
    });
  }

  test('an unknown inject value is a warning and the namespace decides', () => {
    const odd = pod({ 'tollgate.dev/inject': 'yes' }, [app()]);
    const off = injectSidecar(odd, {}, OPTIONS);
    assert.equal(off.injected, false);
    assert.match(off.warnings[0] ?? '', /"yes" is neither enabled nor disabled/);
    assert.equal(injectSidecar(odd, ENABLED, OPTIONS).injected, true);
  });

  test('a pod with a tollgate-agent container but no status annotation counts as injected', () => {
    const r = injectSidecar(pod(ENABLED, [app(), { name: 'tollgate-agent' }]), {}, OPTIONS);
    assert.deepEqual(r, { injected: false, reason: 'already injected', warnings: [] });
  });

  test('no port to capture: not injected, with a warning', () => {
    for (const p of [
      pod(ENABLED, [app([])]),
      pod(ENABLED, [{ name: 'a', ports: [{ containerPort: 53, protocol: 'UDP' }] }]),
      pod({ ...ENABLED, 'tollgate.dev/exclude-inbound-ports': '8080' }, [app()]),
      { metadata: { annotations: ENABLED } },
    ]) {
      const r = injectSidecar(p, {}, OPTIONS);
      assert.equal(r.injected, false);
      assert.match(r.warnings.at(-1) ?? '', /not injected: no port to capture/);
    }
  });

  test('host network: not injected, with a warning', () => {
    const r = injectSidecar(pod(ENABLED, [app()], { hostNetwork: true }), {}, OPTIONS);
    assert.equal(r.injected, false);
    assert.match(r.warnings[0] ?? '', /host network/);
  });
});

describe('injectSidecar: the patch', () => {
  test('creates annotations, initContainers and volumes when absent and prepends the agent', () => {
    const original = pod(undefined, [app()]);
    const r = injectSidecar(original, ENABLED, OPTIONS);
    assert.ok(r.injected);
    assert.deepEqual(
      r.patch.map((op) => op.path),
      [
        '/metadata/annotations',
        '/metadata/annotations/tollgate.dev~1status',
        '/metadata/annotations/tollgate.dev~1injector-version',
        '/spec/initContainers',
        '/spec/containers/0',
        '/spec/volumes',
      ],
    );
    const out = injected(r, original);
    assert.deepEqual(
      out.spec?.containers.map((c) => c.name),
      ['tollgate-agent', 'app'],
    );
    assert.equal(out.metadata?.annotations?.['tollgate.dev/injector-version'], 'unknown');
  });

  test('native sidecars: tollgate-init then the agent (restartPolicy Always) before the app init containers', () => {
    const original = pod(ENABLED, [app()], { initContainers: [{ name: 'setup' }] });
    const out = injected(injectSidecar(original, {}, { ...OPTIONS, nativeSidecars: true }), original);
    assert.deepEqual(
      out.spec?.initContainers?.map((c) => [c.name, c.restartPolicy]),
      [
        ['tollgate-init', undefined],
        ['tollgate-agent', 'Always'],
        ['setup', undefined],
      ],
    );
    assert.deepEqual(
      out.spec?.containers.map((c) => c.name),
      ['app'],
    );
    assert.equal(agentOf(out)?.startupProbe?.httpGet?.path, '/healthz');
  });

  test('images, operator address, log level and version come from the options', () => {
    const original = pod(ENABLED, [app([9000])]);
    const out = injected(
      injectSidecar(
        original,
        {},
        {
          ...OPTIONS,
          initImage: 'tollgate-init:test',
          operatorAddress: 'op.example:15010',
          logLevel: 'warn',
          version: '1.2.3',
        },
      ),
      original,
    );
    const agent = agentOf(out);
    assert.equal(agent?.image, 'tollgate:test');
    assert.equal(out.spec?.initContainers?.[0]?.image, 'tollgate-init:test');
    assert.equal(flag(agent?.args ?? [], '--operator'), 'op.example:15010');
    assert.equal(flag(agent?.args ?? [], '--log-level'), 'warn');
    assert.equal(flag(agent?.args ?? [], '--upstream'), 'http://127.0.0.1:9000');
    assert.equal(out.metadata?.annotations?.['tollgate.dev/injector-version'], '1.2.3');
  });

  test('image pull policies: unset by default, the init container following the agent', () => {
    const original = pod(ENABLED, [app()]);
    const policies = (options: InjectOptions) => {
      const out = injected(injectSidecar(original, {}, options), original);
      return [agentOf(out)?.imagePullPolicy, out.spec?.initContainers?.[0]?.imagePullPolicy];
    };
    assert.deepEqual(policies(OPTIONS), [undefined, undefined]);
    const agent = agentOf(injected(injectSidecar(original, {}, OPTIONS), original)) ?? {};
    assert.ok(!('imagePullPolicy' in agent), 'no key at all: Kubernetes defaults it by tag');
    assert.deepEqual(policies({ ...OPTIONS, agentImagePullPolicy: 'Always' }), ['Always', 'Always']);
    assert.deepEqual(
      policies({ ...OPTIONS, agentImagePullPolicy: 'IfNotPresent', initImagePullPolicy: 'Never' }),
      ['IfNotPresent', 'Never'],
    );
    assert.deepEqual(policies({ ...OPTIONS, initImagePullPolicy: 'Never' }), [undefined, 'Never']);
  });

  test('OTLP: the agent gets the collector, protocol and a service name; nothing without', () => {
    const env = (p: V1Pod, options: InjectOptions) =>
      Object.fromEntries(
        (agentOf(injected(injectSidecar(p, {}, options), p))?.env ?? [])
          .filter((e) => e.name.startsWith('OTEL_'))
          .map((e) => [e.name, e.value]),
      );
    const otlp = { endpoint: 'http://otel-collector.observability:4317', protocol: 'grpc' } as const;
    const labelled = (labels: Record<string, string>) => ({
      ...pod(ENABLED, [app()]),
      metadata: { name: 'p', namespace: 'shop', annotations: ENABLED, labels },
    });
    assert.deepEqual(env(pod(ENABLED, [app()]), OPTIONS), {});
    assert.deepEqual(env(pod(ENABLED, [app()]), { ...OPTIONS, otlp }), {
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://otel-collector.observability:4317',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
      OTEL_SERVICE_NAME: 'tollgate-agent',
    });
    assert.equal(env(labelled({ app: 'orders' }), { ...OPTIONS, otlp }).OTEL_SERVICE_NAME, 'orders');
    assert.equal(
      agentServiceName(labelled({ app: 'orders', 'app.kubernetes.io/name': 'orders-api' })),
      'orders-api',
    );
    assert.equal(agentServiceName(labelled({ 'app.kubernetes.io/name': '', app: '' })), 'tollgate-agent');
  });

  test('Redis: the agent gets --redis-url; nothing without', () => {
    const original = pod(ENABLED, [app()]);
    const args = (options: InjectOptions) =>
      agentOf(injected(injectSidecar(original, {}, options), original))?.args ?? [];
    assert.ok(!args(OPTIONS).includes('--redis-url'));
    const url = 'rediss://sidecar:s3cret@redis.shop:6380/0';
    assert.equal(flag(args({ ...OPTIONS, redisUrl: url }), '--redis-url'), url);
  });

  test('the agent accepts what it is given: its own flag and OTEL_* parsers read the injected container', () => {
    const original = {
      ...pod(ENABLED, [app([8080])]),
      metadata: { name: 'p', namespace: 'shop', annotations: ENABLED, labels: { app: 'orders' } },
    };
    const options: InjectOptions = {
      ...OPTIONS,
      agentImagePullPolicy: 'IfNotPresent',
      logLevel: 'debug',
      otlp: { endpoint: 'http://otel:4318', protocol: 'http/json' },
      redisUrl: 'redis-sentinel://s1:26379,s2:26379/mymaster',
    };
    const agent = agentOf(injected(injectSidecar(original, {}, options), original));
    assert.equal(agent?.args?.[0], 'agent');
    // The kubelet resolves the downward-API variables; the literal ones are passed as they are.
    const env: Record<string, string> = {
      POD_NAME: 'p',
      POD_NAMESPACE: 'shop',
      POD_UID: 'u',
      NODE_NAME: 'n',
    };
    for (const e of agent?.env ?? []) if (e.value !== undefined) env[e.name] = e.value;
    const config = parseAgentConfig(agent?.args?.slice(1) ?? [], env);
    assert.equal(config?.redisUrl, 'redis-sentinel://s1:26379,s2:26379/mymaster');
    assert.equal(config?.logLevel, 'debug');
    assert.equal(config?.operator?.podName, 'p');
    const otel = readOtelConfig(env, 'tollgate-agent');
    assert.deepEqual([otel?.traces, otel?.metrics, otel?.logs], ['http/json', 'http/json', 'http/json']);
    assert.equal(otel?.resource['service.name'], 'orders');
    assert.equal(otel?.resource['k8s.namespace.name'], 'shop');
  });

  test('the agent runs as 1337, read-only, no privilege, every capability dropped', () => {
    const original = pod(ENABLED, [app()]);
    const sc = agentOf(injected(injectSidecar(original, {}, OPTIONS), original))?.securityContext;
    assert.deepEqual(
      [
        sc?.runAsUser,
        sc?.runAsGroup,
        sc?.runAsNonRoot,
        sc?.readOnlyRootFilesystem,
        sc?.allowPrivilegeEscalation,
      ],
      [1337, 1337, true, true, false],
    );
    assert.deepEqual(sc?.capabilities, { drop: ['ALL'] });
  });

  test('tollgate-init gets NET_ADMIN and NET_RAW only', () => {
    const original = pod(ENABLED, [app()]);
    const init = injected(injectSidecar(original, {}, OPTIONS), original).spec?.initContainers?.[0];
    assert.deepEqual(init?.securityContext?.capabilities, { drop: ['ALL'], add: ['NET_ADMIN', 'NET_RAW'] });
    assert.equal(init?.securityContext?.runAsUser, 0);
    assert.equal(init?.securityContext?.runAsNonRoot, false);
  });

  test('several ports: all captured, the first enforced, a warning', () => {
    const original = pod(ENABLED, [app([8080]), { name: 'metrics', ports: [{ containerPort: 9090 }] }]);
    const r = injectSidecar(original, {}, OPTIONS);
    const out = injected(r, original);
    assert.equal(flag(initArgs(out), '--inbound-ports'), '8080,9090');
    assert.equal(flag(agentOf(out)?.args ?? [], '--upstream'), 'http://127.0.0.1:8080');
    assert.match(r.warnings.join('\n'), /enforces policy on 8080 only/);
  });

  test('an app running as UID 1337 is warned about', () => {
    const r = injectSidecar(pod(ENABLED, [app()], { securityContext: { runAsUser: 1337 } }), {}, OPTIONS);
    assert.match(r.warnings.join('\n'), /runs as UID 1337/);
  });
});

describe('injectSidecar: probes', () => {
  const probed = (probe: V1Probe, ports = [8080, 8081]) =>
    pod(ENABLED, [
      app(ports, {
        ports: ports.map((containerPort, i) => ({ containerPort, name: i === 0 ? 'http' : 'admin' })),
        readinessProbe: probe,
      }),
    ]);

  test('a probe on another captured port excludes that port (named ports resolved)', () => {
    const original = probed({ httpGet: { path: '/ready', port: 'admin' } });
    const r = injectSidecar(original, {}, OPTIONS);
    const args = initArgs(injected(r, original));
    assert.equal(flag(args, '--inbound-ports'), '8080');
    assert.equal(flag(args, '--exclude-inbound-ports'), '8081');
    assert.equal(r.warnings.length, 1);
  });

  test('a probe on the enforced port is kept and warned about', () => {
    const original = probed({ httpGet: { path: '/ready', port: 8080 } });
    const r = injectSidecar(original, {}, OPTIONS);
    const out = injected(r, original);
    assert.equal(flag(initArgs(out), '--exclude-inbound-ports'), undefined);
    assert.deepEqual(out.spec?.containers[1]?.readinessProbe, { httpGet: { path: '/ready', port: 8080 } });
    assert.match(r.warnings.join('\n'), /passes through the sidecar/);
  });

  test('probes that do not reach a captured port change nothing', () => {
    for (const probe of [
      { httpGet: { path: '/x', port: 'nope' } },
      { httpGet: { path: '/x', port: 8081, host: '10.0.0.1' } },
      { exec: { command: ['true'] } },
      { tcpSocket: { port: 7000 } },
    ]) {
      const r = injectSidecar(probed(probe, [8080]), {}, OPTIONS);
      assert.deepEqual(r.warnings, [], JSON.stringify(probe));
    }
  });
});

describe('annotation parsing', () => {
  test('port lists', () => {
    const warnings: string[] = [];
    assert.deepEqual(parsePortList('a', ' 80, 443,80,,0, 65536, x, 1e3', warnings), [80, 443]);
    assert.equal(warnings.length, 4);
  });

  test('CIDR lists are normalized', () => {
    const warnings: string[] = [];
    assert.deepEqual(parseCidrList('a', '10.0.0.0/8, fd00::/8, 1.2.3.4, 10.0.0.0/8', warnings), [
      '10.0.0.0/8',
      'fd00::/8',
    ]);
    assert.equal(warnings.length, 1);
  });

  test('quantities (the Kubernetes grammar, as values.schema.json of the chart)', () => {
    const table: [string, number | null][] = [
      ['250m', 0.25],
      ['1', 1],
      ['0.5', 0.5],
      ['.5', 0.5],
      ['1.', 1],
      ['+2', 2],
      ['128Mi', 128 * 2 ** 20],
      ['1G', 1e9],
      ['1E', 1e18],
      ['1e3', 1000],
      ['1E3', 1000],
      ['5e-1', 0.5],
      ['500u', 5e-4],
      ['0', null],
      ['1e', null],
      ['1Mi2', null],
      ['1 GB', null],
      ['-1', null],
      ['lots', null],
      ['', null],
    ];
    for (const [text, want] of table) assert.equal(parseQuantity(text), want, text);
  });

  test('an annotated request above a default limit raises the limit', () => {
    const defaults = { requests: { cpu: '100m', memory: '64Mi' }, limits: { cpu: '500m', memory: '256Mi' } };
    assert.deepEqual(sidecarResources(defaults, { cpu: '1', memory: '128Mi' }), {
      requests: { cpu: '1', memory: '128Mi' },
      limits: { cpu: '1', memory: '256Mi' },
    });
    assert.deepEqual(sidecarResources({}, { cpu: null, memory: null }), {});
  });

  test('every unusable annotation is a warning, never a throw', () => {
    const annotations = {
      ...ENABLED,
      'tollgate.dev/inbound-ports': '',
      'tollgate.dev/exclude-inbound-ports': 'a,b',
      'tollgate.dev/exclude-outbound-cidrs': '::::/200',
      'tollgate.dev/proxy-cpu': '1.5.5',
      'tollgate.dev/proxy-memory': 'Mi',
      'tollgate.dev/log-level': 'INFO',
    };
    const r = injectSidecar(pod(annotations, [app()]), {}, OPTIONS);
    assert.ok(r.injected);
    assert.equal(r.warnings.length, 7, r.warnings.join('\n'));
  });
});
