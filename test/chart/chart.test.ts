/**
 * The Helm chart charts/tollgate, driven by the real helm (v4): `helm lint`
 * (also --strict), `helm template` with the default values, with non-default
 * ones (testdata/custom-values.yaml: cert-manager, native sidecars, mirrored
 * images, OTLP, Redis from a Secret, 3 replicas) and in another namespace;
 * every rendered object is checked against its kind's Kubernetes schema
 * (manifests.ts), bad values fail on values.schema.json with the field named,
 * the chart's CRDs are the repository's byte for byte, and the operator's
 * Deployment, Service and PDB hold the fixed names, ports, probes and
 * replica settings. The Deployment's args and environment are parsed by the
 * operator's own parseOperatorConfig (every flag declared, every value
 * accepted and read as the values mean it), and what the injector then adds
 * to a pod follows the values. RBAC, webhooks and cert-manager:
 * chart-security.test.ts; RBAC against the operator's requests:
 * chart-rbac.test.ts.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { V1Pod } from '@kubernetes/client-node';
import { parse } from 'yaml';
import { injectSidecar } from '../../operator/admission/inject.ts';
import { injectorOptions } from '../../operator/admission/injector-options.ts';
import {
  DEFAULT_IMAGE_REPOSITORY,
  OPERATOR_FLAGS,
  type OperatorConfig,
  parseOperatorConfig,
} from '../../operator/config.ts';
import { applyJsonPatch } from '../kube/patch.ts';
import { chartDir, cleanupHelm, helm, helmUnavailable, type Manifest, render, repoRoot } from './helm.ts';
import { manifestProblems, unknownFields } from './manifests.ts';
import { find, flag, list, type Obj, obj, operatorPod } from './objects.ts';

const skip = helmUnavailable() ?? false;
const CUSTOM = join(repoRoot, 'test/chart/testdata/custom-values.yaml');
const CERT_MANAGER_API = ['--api-versions', 'cert-manager.io/v1'];

describe('Helm chart charts/tollgate', { skip }, () => {
  let defaults: Manifest[];
  let custom: Manifest[];

  before(async () => {
    defaults = await render();
    custom = await render({ namespace: 'security', args: ['-f', CUSTOM, ...CERT_MANAGER_API] });
  });
  after(cleanupHelm);

  it('has the package version as version and appVersion', () => {
    const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string };
    const chart = parse(readFileSync(join(chartDir, 'Chart.yaml'), 'utf8')) as Obj;
    assert.equal(chart.apiVersion, 'v2');
    assert.equal(chart.version, pkg.version);
    assert.equal(chart.appVersion, pkg.version);
  });

  it('ships the CRDs of crds/ byte for byte', () => {
    const names = readdirSync(join(repoRoot, 'crds')).sort();
    assert.deepEqual(
      readdirSync(join(chartDir, 'crds')).sort(),
      names,
      'charts/tollgate/crds/ lists other files',
    );
    for (const name of names) {
      const chart = readFileSync(join(chartDir, 'crds', name));
      assert.ok(
        chart.equals(readFileSync(join(repoRoot, 'crds', name))),
        `charts/tollgate/crds/${name} differs from crds/${name}: run \`npm run gen:crd\``,
      );
    }
  });

  for (const [what, args] of [
    ['default values', []],
    ['default values, --strict', ['--strict']],
    [
      'non-default values, --strict',
      ['--strict', '-f', CUSTOM, '--set', 'certificates.certManager.enabled=false'],
    ],
  ] as const) {
    it(`passes helm lint with ${what}`, async () => {
      const result = await helm(['lint', chartDir, ...args]);
      assert.equal(result.code, 0, result.stdout + result.stderr);
      assert.match(result.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
    });
  }

  it('renders only objects that validate against their kind with default values', () => {
    const problems = defaults.flatMap(manifestProblems);
    assert.deepEqual(problems, []);
    assert.deepEqual(defaults.map((d) => `${d.kind}/${d.metadata.name}`).sort(), [
      'ClusterRole/tollgate-operator',
      'ClusterRoleBinding/tollgate-operator',
      'CustomResourceDefinition/apipolicies.tollgate.dev',
      'Deployment/tollgate-operator',
      'MutatingWebhookConfiguration/tollgate-sidecar-injector',
      'PodDisruptionBudget/tollgate-operator',
      'Role/tollgate-operator',
      'RoleBinding/tollgate-operator',
      'Service/tollgate-operator',
      'ServiceAccount/tollgate-operator',
      'ValidatingWebhookConfiguration/tollgate-policy-validator',
    ]);
  });

  it('renders only objects that validate against their kind with non-default values', () => {
    assert.deepEqual(custom.flatMap(manifestProblems), []);
    const certManager = custom.filter((d) => d.apiVersion === 'cert-manager.io/v1');
    assert.deepEqual(certManager.map((d) => `${d.kind}/${d.metadata.name}`).sort(), [
      'Certificate/tollgate-ca',
      'Certificate/tollgate-operator-tls',
      'Issuer/tollgate-ca',
    ]);
  });

  it('puts every namespaced object in the release namespace', () => {
    const clusterScoped = new Set([
      'ClusterRole',
      'ClusterRoleBinding',
      'CustomResourceDefinition',
      'MutatingWebhookConfiguration',
      'ValidatingWebhookConfiguration',
    ]);
    for (const [docs, ns] of [
      [defaults, 'tollgate-system'],
      [custom, 'security'],
    ] as const) {
      for (const d of docs) {
        assert.equal(
          d.metadata.namespace,
          clusterScoped.has(d.kind) ? undefined : ns,
          `${d.kind}/${d.metadata.name}`,
        );
      }
    }
  });

  it('finds unknown fields and wrong types (the validator itself)', () => {
    const deployment = structuredClone(find(defaults, 'Deployment', 'tollgate-operator'));
    const { container } = operatorPod([deployment]);
    obj(container.securityContext).readOnlyRootFS = true;
    obj(deployment.spec).replicas = 'two';
    assert.deepEqual(manifestProblems(deployment), [
      'Deployment/tollgate-operator: data/spec/replicas must be integer',
      'Deployment/tollgate-operator: unknown field "spec.template.spec.containers[0].securityContext.readOnlyRootFS"',
    ]);
    assert.deepEqual(
      unknownFields({ metadata: { labels: { any: 'x' } }, data: { k: 'v' } }, 'V1ConfigMap'),
      [],
    );
  });

  it('runs the operator with 2 replicas, rolling without losing one, spread over nodes', () => {
    const deployment = find(defaults, 'Deployment', 'tollgate-operator');
    const spec = obj(deployment.spec);
    assert.equal(spec.replicas, 2);
    assert.deepEqual(obj(spec.strategy).rollingUpdate, { maxUnavailable: 0, maxSurge: 1 });
    const { spec: pod } = operatorPod(defaults);
    const preferred = list(
      obj(obj(pod.affinity).podAntiAffinity).preferredDuringSchedulingIgnoredDuringExecution,
    );
    const term = obj(obj(preferred[0]).podAffinityTerm);
    assert.equal(term.topologyKey, 'kubernetes.io/hostname');
    assert.deepEqual(obj(term.labelSelector).matchLabels, obj(spec.selector).matchLabels);

    const pdb = obj(find(defaults, 'PodDisruptionBudget', 'tollgate-operator').spec);
    assert.equal(pdb.minAvailable, 1);
    assert.deepEqual(obj(pdb.selector).matchLabels, obj(spec.selector).matchLabels);

    assert.equal(obj(find(custom, 'Deployment', 'tollgate-operator').spec).replicas, 3);
    assert.equal(obj(find(custom, 'PodDisruptionBudget', 'tollgate-operator').spec).minAvailable, 2);
    const required = obj(operatorPod(custom).spec.affinity).podAntiAffinity;
    assert.ok(list(obj(required).requiredDuringSchedulingIgnoredDuringExecution).length === 1);
  });

  it('renders no PodDisruptionBudget for a single replica (it would block node drains)', async () => {
    const docs = await render({ args: ['--set', 'operator.replicas=1'] });
    assert.equal(
      docs.find((d) => d.kind === 'PodDisruptionBudget'),
      undefined,
    );
  });

  it('serves gRPC, webhooks and health on the fixed ports, probed on /healthz and /readyz', () => {
    const { container } = operatorPod(defaults);
    assert.deepEqual(
      list(container.ports).map((p) => [obj(p).name, obj(p).containerPort]),
      [
        ['grpc', 15010],
        ['webhook', 9443],
        ['http-metrics', 8080],
      ],
    );
    assert.deepEqual(obj(container.livenessProbe).httpGet, { path: '/healthz', port: 'http-metrics' });
    assert.deepEqual(obj(container.readinessProbe).httpGet, { path: '/readyz', port: 'http-metrics' });
    assert.deepEqual(obj(container.resources), {
      requests: { cpu: '100m', memory: '128Mi' },
      limits: { memory: '512Mi' },
    });

    const service = obj(find(defaults, 'Service', 'tollgate-operator').spec);
    assert.deepEqual(
      list(service.ports).map((p) => [obj(p).name, obj(p).port, obj(p).targetPort]),
      [
        ['grpc', 15010, 'grpc'],
        ['webhook', 443, 'webhook'],
        ['http-metrics', 8080, 'http-metrics'],
      ],
    );
    const podLabels = obj(
      obj(obj(find(defaults, 'Deployment', 'tollgate-operator').spec).template).metadata,
    ).labels;
    for (const [k, v] of Object.entries(obj(service.selector))) assert.equal(obj(podLabels)[k], v, k);
  });

  it('runs `tollgate operator` with the contract flags and the downward-API environment', () => {
    const { container, args } = operatorPod(defaults);
    assert.equal(container.command, undefined, 'the image ENTRYPOINT is tollgate');
    assert.equal(args[0], 'operator');
    assert.deepEqual(
      {
        grpc: flag(args, 'grpc-listen'),
        health: flag(args, 'health-listen'),
        webhook: flag(args, 'webhook-listen'),
        secret: flag(args, 'serving-secret'),
        namespace: flag(args, 'namespace'),
        lease: flag(args, 'lease-name'),
        logLevel: flag(args, 'log-level'),
        agent: flag(args, 'agent-image'),
        agentPullPolicy: flag(args, 'agent-image-pull-policy'),
        init: flag(args, 'init-image'),
        initPullPolicy: flag(args, 'init-image-pull-policy'),
        native: flag(args, 'native-sidecars'),
        manage: flag(args, 'manage-certificates'),
        trustDomain: flag(args, 'trust-domain'),
        agentLogLevel: flag(args, 'agent-log-level'),
        resources: ['cpu-request', 'memory-request', 'cpu-limit', 'memory-limit'].map((f) =>
          flag(args, `agent-${f}`),
        ),
        redis: flag(args, 'agent-redis-url'),
        otlp: flag(args, 'agent-otlp-endpoint'),
      },
      {
        grpc: '0.0.0.0:15010',
        health: '0.0.0.0:8080',
        webhook: '0.0.0.0:9443',
        secret: 'tollgate-system/tollgate-operator-tls',
        namespace: 'tollgate-system',
        lease: 'tollgate-operator',
        logLevel: 'info',
        agent: 'ghcr.io/tollgate-dev/tollgate:0.1.0',
        agentPullPolicy: 'IfNotPresent',
        init: 'ghcr.io/tollgate-dev/tollgate:0.1.0',
        initPullPolicy: 'IfNotPresent',
        native: 'auto',
        manage: 'true',
        trustDomain: 'cluster.local',
        agentLogLevel: 'info',
        resources: ['100m', '64Mi', '1', '256Mi'],
        redis: undefined,
        otlp: undefined,
      },
    );
    const env = Object.fromEntries(
      list(container.env).map((e) => [obj(e).name, obj(obj(obj(e).valueFrom).fieldRef).fieldPath]),
    );
    assert.deepEqual(env, {
      POD_NAME: 'metadata.name',
      POD_NAMESPACE: 'metadata.namespace',
      POD_UID: 'metadata.uid',
      NODE_NAME: 'spec.nodeName',
    });
  });

  it('passes non-default values to the operator and, through it, to the sidecars', () => {
    const { spec, container, args } = operatorPod(custom);
    assert.equal(container.image, 'registry.example.com:5000/mirror/tollgate:0.1.0-rc.1');
    assert.equal(container.imagePullPolicy, 'Always');
    assert.deepEqual(spec.imagePullSecrets, [{ name: 'mirror-credentials' }]);
    assert.equal(
      flag(args, 'agent-image'),
      'registry.example.com:5000/mirror/tollgate@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',
    );
    assert.equal(flag(args, 'init-image'), 'registry.example.com:5000/mirror/tollgate-init:0.1.0');
    assert.equal(flag(args, 'init-image-pull-policy'), 'Never');
    assert.equal(flag(args, 'native-sidecars'), 'true');
    assert.equal(flag(args, 'manage-certificates'), 'false');
    assert.equal(flag(args, 'serving-secret'), 'security/tollgate-operator-tls');
    assert.equal(flag(args, 'log-level'), 'debug');
    assert.equal(flag(args, 'agent-log-level'), 'warn');
    assert.equal(flag(args, 'trust-domain'), 'prod.example.com');
    // limits.cpu: null drops the chart's default: an empty flag, no limit.
    assert.deepEqual(
      ['cpu-request', 'memory-request', 'cpu-limit', 'memory-limit'].map((f) => flag(args, `agent-${f}`)),
      ['50m', '48Mi', '', '128Mi'],
    );
    assert.equal(flag(args, 'agent-otlp-endpoint'), 'http://otel-collector.observability:4318');
    assert.equal(flag(args, 'agent-otlp-protocol'), 'http/protobuf');
    // Kubernetes expands $(VAR) in args: the URL never appears in the Deployment.
    assert.equal(flag(args, 'agent-redis-url'), '$(TOLLGATE_AGENT_REDIS_URL)');
    const env = new Map(list(container.env).map((e) => [obj(e).name, obj(e)]));
    assert.deepEqual(obj(env.get('TOLLGATE_AGENT_REDIS_URL')).valueFrom, {
      secretKeyRef: { name: 'tollgate-redis', key: 'redis-url' },
    });
    assert.equal(
      obj(env.get('OTEL_EXPORTER_OTLP_ENDPOINT')).value,
      'http://otel-collector.observability:4318',
    );
    assert.equal(obj(env.get('OTEL_EXPORTER_OTLP_PROTOCOL')).value, 'http/protobuf');
    assert.equal(obj(env.get('OTEL_SERVICE_NAME')).value, 'tollgate-operator');
    assert.equal(obj(env.get('OTEL_TRACES_SAMPLER_ARG')).value, '0.1');
    assert.equal(spec.priorityClassName, 'system-cluster-critical');
    assert.deepEqual(spec.nodeSelector, { 'kubernetes.io/os': 'linux' });
  });

  it('passes a plain Redis URL as it is', async () => {
    const { args, container } = operatorPod(
      await render({ args: ['--set', 'redis.url=rediss://redis.shop:6380/0'] }),
    );
    assert.equal(flag(args, 'agent-redis-url'), 'rediss://redis.shop:6380/0');
    assert.ok(!list(container.env).some((e) => obj(e).name === 'TOLLGATE_AGENT_REDIS_URL'));
  });

  /** The Deployment's environment as the kubelet gives it (downward API, the Redis Secret's value). */
  function deploymentEnv(docs: Manifest[], namespace: string, secretValue: string): Record<string, string> {
    const fields: Record<string, string> = {
      'metadata.name': 'tollgate-operator-5d8f9-x2x7k',
      'metadata.namespace': namespace,
      'metadata.uid': '6f1c1a52-3bde-4f4e-9a53-1c1d6b1e2f10',
      'spec.nodeName': 'node-1',
    };
    const env: Record<string, string> = {};
    for (const e of list(operatorPod(docs).container.env).map(obj)) {
      const from = obj(e.valueFrom);
      const field = obj(from.fieldRef).fieldPath;
      if (typeof e.value === 'string') env[String(e.name)] = e.value;
      else if (typeof field === 'string') env[String(e.name)] = fields[field] ?? '';
      else if (from.secretKeyRef) env[String(e.name)] = secretValue;
    }
    return env;
  }

  /** The operator's config from the rendered args, `$(VAR)` expanded from `env` as Kubernetes does. */
  function operatorConfig(docs: Manifest[], env: Record<string, string>): OperatorConfig {
    const args = operatorPod(docs)
      .args.slice(1)
      .map((a) => a.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, name: string) => env[name] ?? m));
    const config = parseOperatorConfig(args, env, '0.1.0');
    assert.ok(config, 'not --help');
    return config;
  }

  it('passes only flags that `tollgate operator` declares, with values it accepts', async () => {
    const plain = await render({
      args: [
        '--set',
        'redis.url=rediss://sidecar@redis.shop:6380/0',
        '--set',
        'telemetry.otlp.endpoint=http://otel-collector.observability:4317',
        '--set',
        'images.agent.pullPolicy=Never',
      ],
    });
    for (const docs of [defaults, custom, plain]) {
      const { args } = operatorPod(docs);
      assert.equal(args[0], 'operator');
      for (const a of args.slice(1)) {
        const m = /^--([a-z-]+)=/.exec(a);
        assert.ok(m?.[1] && OPERATOR_FLAGS[m[1]], `${a}: not a flag of operator/config.ts`);
      }
    }
    const d = operatorConfig(defaults, deploymentEnv(defaults, 'tollgate-system', ''));
    assert.deepEqual(
      {
        namespace: d.namespace,
        identity: d.identity,
        servingSecret: d.servingSecret,
        lease: [d.leaseName, d.leaseDurationMs, d.renewDeadlineMs, d.retryPeriodMs],
        logLevel: d.logLevel,
        manageCertificates: d.manageCertificates,
        trustDomain: d.trustDomain,
        images: [d.agentImage, d.agentImagePullPolicy, d.initImage, d.initImagePullPolicy],
        nativeSidecars: d.nativeSidecars,
        agentLogLevel: d.agentLogLevel,
        agentResources: d.agentResources,
        agentOtlp: d.agentOtlp,
        agentRedisUrl: d.agentRedisUrl,
      },
      {
        namespace: 'tollgate-system',
        identity: 'tollgate-operator-5d8f9-x2x7k',
        servingSecret: { namespace: 'tollgate-system', name: 'tollgate-operator-tls' },
        lease: ['tollgate-operator', 15_000, 10_000, 2_000],
        logLevel: 'info',
        manageCertificates: true,
        trustDomain: 'cluster.local',
        images: [
          'ghcr.io/tollgate-dev/tollgate:0.1.0',
          'IfNotPresent',
          'ghcr.io/tollgate-dev/tollgate:0.1.0',
          'IfNotPresent',
        ],
        nativeSidecars: 'auto',
        agentLogLevel: 'info',
        agentResources: { requests: { cpu: '100m', memory: '64Mi' }, limits: { cpu: '1', memory: '256Mi' } },
        agentOtlp: null,
        agentRedisUrl: null,
      },
    );

    const secretUrl = 'redis://sidecar:s3cret@redis.shop:6379/0';
    const c = operatorConfig(custom, deploymentEnv(custom, 'security', secretUrl));
    assert.deepEqual(
      {
        namespace: c.namespace,
        servingSecret: c.servingSecret,
        lease: [c.leaseDurationMs, c.renewDeadlineMs, c.retryPeriodMs],
        manageCertificates: c.manageCertificates,
        trustDomain: c.trustDomain,
        images: [c.agentImage, c.agentImagePullPolicy, c.initImage, c.initImagePullPolicy],
        nativeSidecars: c.nativeSidecars,
        agentLogLevel: c.agentLogLevel,
        agentResources: c.agentResources,
        agentOtlp: c.agentOtlp,
        agentRedisUrl: c.agentRedisUrl,
      },
      {
        namespace: 'security',
        servingSecret: { namespace: 'security', name: 'tollgate-operator-tls' },
        lease: [30_000, 20_000, 4_000],
        manageCertificates: false,
        trustDomain: 'prod.example.com',
        images: [
          'registry.example.com:5000/mirror/tollgate@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',
          'IfNotPresent',
          'registry.example.com:5000/mirror/tollgate-init:0.1.0',
          'Never',
        ],
        nativeSidecars: true,
        agentLogLevel: 'warn',
        // limits.cpu: null in the values drops the chart's default limit: none, not the operator's default.
        agentResources: { requests: { cpu: '50m', memory: '48Mi' }, limits: { memory: '128Mi' } },
        agentOtlp: { endpoint: 'http://otel-collector.observability:4318', protocol: 'http/protobuf' },
        agentRedisUrl: secretUrl,
      },
    );

    const p = operatorConfig(plain, deploymentEnv(plain, 'tollgate-system', ''));
    assert.equal(p.agentRedisUrl, 'rediss://sidecar@redis.shop:6380/0');
    assert.deepEqual(p.agentOtlp, { endpoint: 'http://otel-collector.observability:4317', protocol: 'grpc' });
    assert.deepEqual([p.agentImagePullPolicy, p.initImagePullPolicy], ['Never', 'IfNotPresent']);
  });

  it('reads numeric quantities and dropped defaults as the operator does', async () => {
    const docs = await render({
      args: [
        '--set-json',
        'sidecar.resources={"requests":{"cpu":0.25,"memory":null},"limits":{"cpu":2,"memory":"1Gi"}}',
      ],
    });
    const { args } = operatorPod(docs);
    assert.deepEqual(
      ['cpu-request', 'memory-request', 'cpu-limit', 'memory-limit'].map((f) => flag(args, `agent-${f}`)),
      ['0.25', '', '2', '1Gi'],
    );
    assert.deepEqual(operatorConfig(docs, deploymentEnv(docs, 'tollgate-system', '')).agentResources, {
      requests: { cpu: '0.25' },
      limits: { cpu: '2', memory: '1Gi' },
    });
  });

  it('gives the injected sidecar what the values say, through the operator', () => {
    const sample = {
      metadata: {
        name: 'orders-1',
        namespace: 'shop',
        labels: { app: 'orders' },
        annotations: { 'tollgate.dev/inject': 'enabled' },
      },
      spec: { containers: [{ name: 'app', image: 'example/orders:1', ports: [{ containerPort: 8080 }] }] },
    };
    const secretUrl = 'redis://sidecar@redis.shop:6379/0';
    const config = operatorConfig(custom, deploymentEnv(custom, 'security', secretUrl));
    const options = injectorOptions(config, '0.1.0');
    const result = injectSidecar(structuredClone(sample), {}, { ...options, nativeSidecars: true });
    assert.ok(result.injected);
    const pod = applyJsonPatch(sample, result.patch) as V1Pod;
    const init = pod.spec?.initContainers ?? [];
    const agent = init.find((c) => c.name === 'tollgate-agent');
    const initContainer = init.find((c) => c.name === 'tollgate-init');
    const values = parse(readFileSync(CUSTOM, 'utf8')) as {
      images: { init: { pullPolicy: string } };
      telemetry: { otlp: { endpoint: string; protocol: string } };
      sidecar: { logLevel: string };
    };
    assert.equal(agent?.image, flag(operatorPod(custom).args, 'agent-image'));
    assert.equal(agent?.imagePullPolicy, 'IfNotPresent');
    assert.equal(initContainer?.image, 'registry.example.com:5000/mirror/tollgate-init:0.1.0');
    assert.equal(initContainer?.imagePullPolicy, values.images.init.pullPolicy);
    const args = agent?.args ?? [];
    assert.equal(args[args.indexOf('--log-level') + 1], values.sidecar.logLevel);
    assert.equal(args[args.indexOf('--redis-url') + 1], secretUrl);
    assert.equal(
      args[args.indexOf('--operator') + 1],
      'tollgate-operator.security.svc:15010',
      'the release namespace',
    );
    assert.deepEqual(agent?.resources, {
      requests: { cpu: '50m', memory: '48Mi' },
      limits: { memory: '128Mi' },
    });
    const env = Object.fromEntries((agent?.env ?? []).map((e) => [e.name, e.value]));
    assert.equal(env.OTEL_EXPORTER_OTLP_ENDPOINT, values.telemetry.otlp.endpoint);
    assert.equal(env.OTEL_EXPORTER_OTLP_PROTOCOL, values.telemetry.otlp.protocol);
    assert.equal(env.OTEL_SERVICE_NAME, 'orders');

    const plain = injectSidecar(
      structuredClone(sample),
      {},
      {
        ...injectorOptions(operatorConfig(defaults, deploymentEnv(defaults, 'tollgate-system', '')), '0.1.0'),
        nativeSidecars: false,
      },
    );
    assert.ok(plain.injected);
    const defaultAgent = (applyJsonPatch(sample, plain.patch) as V1Pod).spec?.containers[0];
    assert.equal(defaultAgent?.name, 'tollgate-agent');
    assert.equal(defaultAgent?.imagePullPolicy, 'IfNotPresent');
    assert.ok(!(defaultAgent?.args ?? []).includes('--redis-url'));
    assert.ok(!(defaultAgent?.env ?? []).some((e) => e.name.startsWith('OTEL_')));
    assert.deepEqual(defaultAgent?.resources, {
      requests: { cpu: '100m', memory: '64Mi' },
      limits: { cpu: '1', memory: '256Mi' },
    });
  });

  it("defaults the operator's images to the chart's repository", () => {
    const values = parse(readFileSync(join(chartDir, 'values.yaml'), 'utf8')) as {
      images: Record<string, { repository: string }>;
    };
    for (const image of ['operator', 'agent', 'init'])
      assert.equal(values.images[image]?.repository, DEFAULT_IMAGE_REPOSITORY, image);
  });

  for (const [what, args, message] of [
    [
      'a string replica count',
      ['--set', 'operator.replicas=two'],
      /at '\/operator\/replicas': got string, want integer/,
    ],
    [
      'an unknown key',
      ['--set', 'operator.replica=2'],
      /at '\/operator': additional properties 'replica' not allowed/,
    ],
    ['an unknown top-level key', ['--set', 'image.tag=x'], /additional properties 'image' not allowed/],
    [
      'a bad failurePolicy',
      ['--set', 'webhooks.inject.failurePolicy=Open'],
      /\/webhooks\/inject\/failurePolicy/,
    ],
    ['a webhook timeout over 30 s', ['--set', 'webhooks.validate.timeoutSeconds=31'], /timeoutSeconds/],
    [
      'an unquoted numeric image tag',
      ['--set-json', 'images.agent.tag=1.2'],
      /\/images\/agent\/tag': got number, want string/,
    ],
    ['a bad log level', ['--set', 'sidecar.logLevel=verbose'], /\/sidecar\/logLevel/],
    [
      'a bad quantity',
      ['--set', 'sidecar.resources.limits.memory=lots'],
      /\/sidecar\/resources\/limits\/memory/,
    ],
    [
      'a sidecar resource the operator cannot set',
      ['--set', 'sidecar.resources.requests.ephemeral-storage=1Gi'],
      /\/sidecar\/resources\/requests': additional properties 'ephemeral-storage' not allowed/,
    ],
    [
      'a zero sidecar quantity',
      ['--set', 'sidecar.resources.requests.cpu=0m'],
      /\/sidecar\/resources\/requests\/cpu/,
    ],
    [
      'a negative sidecar quantity',
      ['--set-json', 'sidecar.resources.limits.cpu=-1'],
      /\/sidecar\/resources\/limits\/cpu/,
    ],
    ['a trust domain that is not a DNS name', ['--set', 'trustDomain=Prod_Example'], /\/trustDomain/],
    ['a bad native sidecar mode', ['--set', 'sidecar.nativeSidecars=sometimes'], /\/sidecar\/nativeSidecars/],
    ['a Redis URL of another scheme', ['--set', 'redis.url=http://redis:6379'], /\/redis\/url/],
    [
      'both a Redis URL and a Secret',
      ['--set', 'redis.url=redis://r:6379', '--set', 'redis.existingSecret.name=s'],
      /redis\.url and redis\.existingSecret\.name are exclusive/,
    ],
    [
      'cert-manager while the operator manages certificates',
      ['--set', 'certificates.certManager.enabled=true', ...CERT_MANAGER_API],
      /certificates\.certManager\.enabled needs certificates\.manage=false/,
    ],
    [
      'cert-manager absent from the cluster',
      ['--set', 'certificates.certManager.enabled=true', '--set', 'certificates.manage=false'],
      /needs cert-manager \(cert-manager\.io\/v1\) in the cluster/,
    ],
  ] as const) {
    it(`refuses ${what} with a clear error`, async () => {
      const result = await helm(['template', 'tollgate', chartDir, ...args]);
      assert.notEqual(result.code, 0, 'helm template succeeded');
      assert.match(result.stderr, message);
    });
  }

  it('describes every value in the chart README', () => {
    const values = parse(readFileSync(join(chartDir, 'values.yaml'), 'utf8')) as Obj;
    const readme = readFileSync(join(chartDir, 'README.md'), 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('| `'));
    // Free-form maps are described as a whole.
    const whole = new Set([
      'resources',
      'affinity',
      'nodeSelector',
      'podAnnotations',
      'podLabels',
      'issuerRef',
    ]);
    const leaves = (o: Obj, prefix: string): string[] =>
      Object.entries(o).flatMap(([k, v]) =>
        typeof v === 'object' && v !== null && !Array.isArray(v) && !whole.has(k)
          ? leaves(v as Obj, `${prefix}${k}.`)
          : [`${prefix}${k}`],
      );
    for (const path of leaves(values, '')) {
      const parent = path.slice(0, path.lastIndexOf('.'));
      const last = path.slice(path.lastIndexOf('.'));
      const row = readme.find(
        (l) => l.includes(`\`${path}\``) || (l.includes(`\`${parent}.`) && l.includes(`\`${last}\``)),
      );
      assert.ok(row, `charts/tollgate/README.md does not describe ${path}`);
    }
  });

  it('prints the next two steps after install (NOTES.txt)', async () => {
    const result = await helm(['install', 'tollgate', chartDir, '--dry-run=client', '-n', 'tollgate-system']);
    assert.equal(result.code, 0, result.stderr);
    const notes = result.stdout.slice(result.stdout.indexOf('NOTES:'));
    assert.match(notes, /kubectl -n tollgate-system rollout status deployment\/tollgate-operator/);
    assert.match(notes, /1\. Write an ApiPolicy/);
    assert.match(notes, /kubectl apply -f /);
    assert.match(notes, /2\. Add the sidecar/);
    assert.match(notes, /kubectl label namespace \S+ tollgate\.dev\/inject=enabled/);
    assert.match(notes, /"tollgate\.dev\/inject":"enabled"/);
  });
});
