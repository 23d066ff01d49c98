/**
 * The Helm chart charts/tollgate, driven by the real helm (v4): `helm lint`
 * (also --strict), `helm template` with the default values, with non-default
 * ones (testdata/custom-values.yaml: cert-manager, native sidecars, mirrored
 * images, OTLP, Redis from a Secret, 3 replicas) and in another namespace;
 * every rendered object is checked against its kind's Kubernetes schema
 * (manifests.ts), bad values fail on values.schema.json with the field named,
 * the chart's CRDs are the repository's byte for byte, and the operator's
 * Deployment, Service and PDB hold the fixed names, ports, probes and
 * replica settings. RBAC, webhooks and cert-manager: chart-security.test.ts.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse } from 'yaml';
import { OPERATOR_FLAGS, parseOperatorConfig } from '../../operator/config.ts';
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
        init: flag(args, 'init-image'),
        native: flag(args, 'native-sidecars'),
        manage: flag(args, 'manage-certificates'),
        trustDomain: flag(args, 'trust-domain'),
        resources: JSON.parse(flag(args, 'agent-resources') ?? 'null'),
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
        init: 'ghcr.io/tollgate-dev/tollgate:0.1.0',
        native: 'auto',
        manage: 'true',
        trustDomain: 'cluster.local',
        resources: { requests: { cpu: '100m', memory: '64Mi' }, limits: { cpu: '1', memory: '256Mi' } },
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
    assert.deepEqual(JSON.parse(flag(args, 'agent-resources') ?? 'null'), {
      requests: { cpu: '50m', memory: '48Mi', 'ephemeral-storage': '100Mi' },
      limits: { memory: '128Mi' },
    });
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

  // The operator's flags are being extended (webhooks, injection, certificates): until
  // every flag the chart passes is declared in operator/config.ts this is a TODO.
  const declared = new Set(Object.keys(OPERATOR_FLAGS));
  const passed = [
    'grpc-listen',
    'health-listen',
    'webhook-listen',
    'serving-secret',
    'namespace',
    'lease-name',
    'lease-duration',
    'renew-deadline',
    'retry-period',
    'log-level',
    'manage-certificates',
    'trust-domain',
    'agent-image',
    'agent-image-pull-policy',
    'init-image',
    'init-image-pull-policy',
    'native-sidecars',
    'agent-log-level',
    'agent-resources',
    'agent-otlp-endpoint',
    'agent-otlp-protocol',
    'agent-redis-url',
  ];
  const undeclared = passed.filter((f) => !declared.has(f));
  it('passes only flags that `tollgate operator` declares, with values it accepts', {
    todo:
      undeclared.length > 0 ? `not yet declared in operator/config.ts: --${undeclared.join(', --')}` : false,
  }, () => {
    for (const docs of [defaults, custom]) {
      const chartArgs = operatorPod(docs).args.slice(1);
      for (const a of chartArgs)
        assert.ok(passed.includes(a.slice(2).split('=')[0] ?? ''), `unlisted flag ${a}`);
      assert.deepEqual(undeclared, []);
      const expanded = chartArgs.map((a) => a.replace('$(TOLLGATE_AGENT_REDIS_URL)', 'redis://redis:6379'));
      assert.ok(parseOperatorConfig(expanded, { POD_NAME: 'p', POD_NAMESPACE: 'tollgate-system' }));
    }
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
