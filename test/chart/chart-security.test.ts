/**
 * What the chart grants and guards, from `helm template` with the real helm:
 * the operator's RBAC rule by rule (exactly the least-privilege set
 * charts/tollgate/README.md lists, no wildcard; chart-rbac.test.ts checks it
 * against the requests the operator makes), its pod and container
 * security context, the admission webhooks (explicit failurePolicy and
 * timeoutSeconds, kube-system and the release namespace never sent, and
 * which pods reach the injector: namespace selectors evaluated on sample
 * namespaces, matchConditions evaluated with CEL on sample pods), and the
 * cert-manager mode (Certificates, CA injection, narrower RBAC).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { evaluate } from '@marcbachmann/cel-js';
import { cleanupHelm, helmUnavailable, type Manifest, render, repoRoot } from './helm.ts';
import { find, flag, list, type Obj, obj, operatorPod } from './objects.ts';

const skip = helmUnavailable() ?? false;
const CUSTOM = join(repoRoot, 'test/chart/testdata/custom-values.yaml');

interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}

const rule = (apiGroups: string[], resources: string[], verbs: string[], resourceNames?: string[]): Rule => ({
  apiGroups,
  resources,
  verbs,
  ...(resourceNames ? { resourceNames } : {}),
});

const WEBHOOK_RULES = [
  rule(
    ['admissionregistration.k8s.io'],
    ['mutatingwebhookconfigurations'],
    ['get', 'patch'],
    ['tollgate-sidecar-injector'],
  ),
  rule(
    ['admissionregistration.k8s.io'],
    ['validatingwebhookconfigurations'],
    ['get', 'patch'],
    ['tollgate-policy-validator'],
  ),
];

/** The ClusterRole's rules as charts/tollgate/README.md lists them (certificates.manage=true). */
const CLUSTER_RULES: Rule[] = [
  rule(['tollgate.dev'], ['apipolicies'], ['list', 'watch']),
  rule(['tollgate.dev'], ['apipolicies/status'], ['patch']),
  rule([''], ['pods'], ['get', 'list', 'watch', 'patch']),
  rule([''], ['namespaces'], ['get', 'list', 'watch']),
  rule([''], ['services'], ['list', 'watch']),
  rule(['authentication.k8s.io'], ['tokenreviews'], ['create']),
  rule([''], ['events'], ['create', 'patch']),
  rule([''], ['configmaps'], ['get', 'update'], ['tollgate-ca-root']),
  rule([''], ['configmaps'], ['create']),
  ...WEBHOOK_RULES,
];

/** The Role's rules in the release namespace (certificates.manage=true). */
const NAMESPACE_RULES: Rule[] = [
  rule(['coordination.k8s.io'], ['leases'], ['get', 'update'], ['tollgate-operator']),
  rule(['coordination.k8s.io'], ['leases'], ['create']),
  rule([''], ['secrets'], ['get'], ['tollgate-ca', 'tollgate-operator-tls']),
  rule([''], ['secrets'], ['update'], ['tollgate-ca', 'tollgate-operator-tls']),
  rule([''], ['secrets'], ['create']),
];

function rules(docs: Manifest[], kind: 'ClusterRole' | 'Role'): Rule[] {
  return list(find(docs, kind, 'tollgate-operator').rules) as Rule[];
}

function webhooks(docs: Manifest[], kind: string, name: string): Obj[] {
  return list(find(docs, kind, name).webhooks).map(obj);
}

interface Requirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  values?: string[];
}

/** A label selector's matchExpressions, as the API server evaluates them. */
function selects(selector: Obj, labels: Record<string, string>): boolean {
  assert.equal(selector.matchLabels, undefined);
  return (list(selector.matchExpressions) as Requirement[]).every((r) => {
    const value = labels[r.key];
    const listed = value !== undefined && (r.values ?? []).includes(value);
    const outcome: Record<Requirement['operator'], boolean> = {
      In: listed,
      NotIn: !listed,
      Exists: value !== undefined,
      DoesNotExist: value === undefined,
    };
    return outcome[r.operator];
  });
}

/** Names of the webhooks the API server calls for a pod created in that namespace. */
function calledFor(
  hooks: Obj[],
  ns: { name: string; labels?: Record<string, string> },
  annotations?: Obj,
): string[] {
  const labels = { ...ns.labels, 'kubernetes.io/metadata.name': ns.name };
  const pod = { metadata: { name: 'p', namespace: ns.name, ...(annotations ? { annotations } : {}) } };
  return hooks
    .filter((h) => selects(obj(h.namespaceSelector), labels))
    .filter((h) =>
      list(h.matchConditions).every((c) => evaluate(String(obj(c).expression), { object: pod }) === true),
    )
    .map((h) => String(h.name));
}

describe('Helm chart charts/tollgate: RBAC, security context, webhooks, certificates', { skip }, () => {
  let defaults: Manifest[];
  let custom: Manifest[];

  before(async () => {
    defaults = await render();
    custom = await render({
      namespace: 'security',
      args: ['-f', CUSTOM, '--api-versions', 'cert-manager.io/v1'],
    });
  });
  after(cleanupHelm);

  it('grants the operator exactly the listed permissions', () => {
    assert.deepEqual(rules(defaults, 'ClusterRole'), CLUSTER_RULES);
    assert.deepEqual(rules(defaults, 'Role'), NAMESPACE_RULES);
    assert.equal(find(defaults, 'Role', 'tollgate-operator').metadata.namespace, 'tollgate-system');
  });

  it('grants no wildcard, no delete, no escalation and no secrets outside its namespace', () => {
    for (const docs of [defaults, custom]) {
      for (const r of [...rules(docs, 'ClusterRole'), ...rules(docs, 'Role')]) {
        for (const field of [r.apiGroups, r.resources, r.verbs, r.resourceNames ?? []]) {
          assert.ok(!field.some((v) => v.includes('*')), `wildcard in ${JSON.stringify(r)}`);
        }
        for (const verb of ['delete', 'deletecollection', 'escalate', 'bind', 'impersonate']) {
          assert.ok(!r.verbs.includes(verb), `${verb} in ${JSON.stringify(r)}`);
        }
      }
      assert.ok(!rules(docs, 'ClusterRole').some((r) => r.resources.includes('secrets')));
      // Secrets are read and written by name: never listed or watched, and created only when managed.
      for (const r of rules(docs, 'Role').filter((r) => r.resources.includes('secrets')))
        assert.ok(
          r.verbs.every((v) => ['get', 'update', 'create'].includes(v)),
          JSON.stringify(r),
        );
    }
  });

  it('binds both roles to the operator ServiceAccount only', () => {
    for (const [docs, ns] of [
      [defaults, 'tollgate-system'],
      [custom, 'security'],
    ] as const) {
      for (const kind of ['ClusterRoleBinding', 'RoleBinding']) {
        const binding = find(docs, kind, 'tollgate-operator');
        assert.deepEqual(binding.subjects, [
          { kind: 'ServiceAccount', name: 'tollgate-operator', namespace: ns },
        ]);
        assert.equal(obj(binding.roleRef).name, 'tollgate-operator');
      }
      assert.equal(operatorPod(docs).spec.serviceAccountName, 'tollgate-operator');
    }
  });

  it('runs the operator non-root, read-only, without privileges or capabilities', () => {
    for (const docs of [defaults, custom]) {
      const { spec, container } = operatorPod(docs);
      assert.deepEqual(spec.securityContext, {
        runAsNonRoot: true,
        runAsUser: 1337,
        runAsGroup: 1337,
        seccompProfile: { type: 'RuntimeDefault' },
      });
      assert.deepEqual(container.securityContext, {
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        runAsNonRoot: true,
        capabilities: { drop: ['ALL'] },
      });
      assert.equal(spec.hostNetwork, undefined);
      const annotations = obj(
        obj(obj(obj(find(docs, 'Deployment', 'tollgate-operator').spec).template).metadata).annotations,
      );
      assert.equal(annotations['tollgate.dev/inject'], 'disabled', 'the operator is never injected');
    }
  });

  it('declares every webhook with explicit failurePolicy, timeoutSeconds and no side effects', () => {
    const expect = [
      ['MutatingWebhookConfiguration', 'tollgate-sidecar-injector', '/inject', 'Fail', 10, 'Ignore', 5],
      ['ValidatingWebhookConfiguration', 'tollgate-policy-validator', '/validate', 'Fail', 5, 'Ignore', 3],
    ] as const;
    for (const [kind, name, path, policy, timeout, customPolicy, customTimeout] of expect) {
      for (const [docs, ns, p, t] of [
        [defaults, 'tollgate-system', policy, timeout],
        [custom, 'security', customPolicy, customTimeout],
      ] as const) {
        const hooks = webhooks(docs, kind, name);
        assert.ok(hooks.length > 0);
        for (const h of hooks) {
          assert.equal(h.failurePolicy, p, `${h.name}`);
          assert.equal(h.timeoutSeconds, t, `${h.name}`);
          assert.equal(h.sideEffects, 'None');
          assert.deepEqual(h.admissionReviewVersions, ['v1']);
          assert.deepEqual(obj(h.clientConfig).service, {
            name: 'tollgate-operator',
            namespace: ns,
            path,
            port: 443,
          });
        }
      }
    }
  });

  it('never sends kube-system, the release namespace or the excluded ones to a webhook', () => {
    for (const [docs, ns, extra] of [
      [defaults, 'tollgate-system', []],
      [custom, 'security', ['kube-public', 'kube-node-lease', 'cert-manager']],
    ] as const) {
      const all = [
        ...webhooks(docs, 'MutatingWebhookConfiguration', 'tollgate-sidecar-injector'),
        ...webhooks(docs, 'ValidatingWebhookConfiguration', 'tollgate-policy-validator'),
      ];
      for (const h of all) {
        const exclusion = list(obj(h.namespaceSelector).matchExpressions)
          .map(obj)
          .find((r) => r.key === 'kubernetes.io/metadata.name');
        assert.deepEqual(exclusion, {
          key: 'kubernetes.io/metadata.name',
          operator: 'NotIn',
          values: ['kube-system', ns, ...extra],
        });
        for (const name of ['kube-system', ns, ...extra]) {
          assert.ok(
            !selects(obj(h.namespaceSelector), {
              'kubernetes.io/metadata.name': name,
              'tollgate.dev/inject': 'enabled',
            }),
          );
        }
      }
    }
  });

  it('sends a pod to the injector only when it or its namespace asked, and once', () => {
    const hooks = webhooks(defaults, 'MutatingWebhookConfiguration', 'tollgate-sidecar-injector');
    const enabled = { 'tollgate.dev/inject': 'enabled' };
    const disabled = { 'tollgate.dev/inject': 'disabled' };
    const cases: [string, { name: string; labels?: Record<string, string> }, Obj | undefined, string[]][] = [
      ['labelled namespace', { name: 'shop', labels: enabled }, undefined, ['inject.tollgate.dev']],
      [
        'labelled namespace, other annotations',
        { name: 'shop', labels: enabled },
        { a: 'b' },
        ['inject.tollgate.dev'],
      ],
      [
        'labelled namespace, annotated pod',
        { name: 'shop', labels: enabled },
        enabled,
        ['inject.tollgate.dev'],
      ],
      ['labelled namespace, opted-out pod', { name: 'shop', labels: enabled }, disabled, []],
      ['annotated pod', { name: 'shop' }, enabled, ['pod.inject.tollgate.dev']],
      ['plain pod', { name: 'shop' }, undefined, []],
      ['pod annotated disabled', { name: 'shop' }, disabled, []],
      ['annotated pod, namespace labelled disabled', { name: 'shop', labels: disabled }, enabled, []],
      ['annotated pod in kube-system', { name: 'kube-system', labels: enabled }, enabled, []],
      ['annotated pod in tollgate-system', { name: 'tollgate-system', labels: enabled }, enabled, []],
    ];
    for (const [what, ns, annotations, called] of cases) {
      assert.deepEqual(calledFor(hooks, ns, annotations), called, what);
    }
    for (const h of hooks) {
      assert.deepEqual(h.rules, [
        {
          apiGroups: [''],
          apiVersions: ['v1'],
          operations: ['CREATE'],
          resources: ['pods'],
          scope: 'Namespaced',
        },
      ]);
      assert.equal(h.reinvocationPolicy, 'IfNeeded');
    }
  });

  it('validates ApiPolicy creates and updates (not status writes)', () => {
    const [h, ...rest] = webhooks(defaults, 'ValidatingWebhookConfiguration', 'tollgate-policy-validator');
    assert.deepEqual(rest, []);
    assert.equal(obj(h).name, 'validate.tollgate.dev');
    assert.deepEqual(obj(h).rules, [
      {
        apiGroups: ['tollgate.dev'],
        apiVersions: ['v1alpha1'],
        operations: ['CREATE', 'UPDATE'],
        resources: ['apipolicies'],
        scope: 'Namespaced',
      },
    ]);
  });

  it('lets the operator patch the caBundle by default (no CA injection annotation)', () => {
    for (const [kind, name] of [
      ['MutatingWebhookConfiguration', 'tollgate-sidecar-injector'],
      ['ValidatingWebhookConfiguration', 'tollgate-policy-validator'],
    ] as const) {
      const config = find(defaults, kind, name);
      assert.equal(config.metadata.annotations, undefined);
      for (const h of webhooks(defaults, kind, name)) assert.equal(obj(h.clientConfig).caBundle, undefined);
    }
    assert.ok(!defaults.some((d) => d.apiVersion === 'cert-manager.io/v1'));
  });

  it('has cert-manager issue the certificates and inject the CA in cert-manager mode', () => {
    for (const [kind, name] of [
      ['MutatingWebhookConfiguration', 'tollgate-sidecar-injector'],
      ['ValidatingWebhookConfiguration', 'tollgate-policy-validator'],
    ] as const) {
      assert.deepEqual(find(custom, kind, name).metadata.annotations, {
        'cert-manager.io/inject-ca-from': 'security/tollgate-operator-tls',
      });
    }
    const ca = obj(find(custom, 'Certificate', 'tollgate-ca').spec);
    assert.equal(ca.isCA, true);
    assert.equal(ca.secretName, 'tollgate-ca');
    assert.deepEqual(ca.issuerRef, {
      name: 'corp-intermediate',
      kind: 'ClusterIssuer',
      group: 'cert-manager.io',
    });
    assert.equal(obj(ca.privateKey).rotationPolicy, 'Never');
    assert.deepEqual(ca.uris, ['spiffe://prod.example.com'], 'the trust domain, as the operator’s own CA');
    assert.deepEqual(obj(find(custom, 'Issuer', 'tollgate-ca').spec).ca, { secretName: 'tollgate-ca' });
    const serving = obj(find(custom, 'Certificate', 'tollgate-operator-tls').spec);
    assert.equal(serving.secretName, 'tollgate-operator-tls');
    assert.deepEqual(serving.dnsNames, [
      'tollgate-operator',
      'tollgate-operator.security',
      'tollgate-operator.security.svc',
    ]);
    assert.deepEqual(serving.issuerRef, { name: 'tollgate-ca', kind: 'Issuer', group: 'cert-manager.io' });
    assert.equal(flag(operatorPod(custom).args, 'manage-certificates'), 'false');
  });

  it('makes a self-signed root when no issuer is given', async () => {
    const docs = await render({
      args: [
        '--set',
        'certificates.manage=false',
        '--set',
        'certificates.certManager.enabled=true',
        '--api-versions',
        'cert-manager.io/v1',
      ],
    });
    assert.deepEqual(obj(find(docs, 'Issuer', 'tollgate-selfsigned').spec), { selfSigned: {} });
    assert.deepEqual(obj(find(docs, 'Certificate', 'tollgate-ca').spec).issuerRef, {
      name: 'tollgate-selfsigned',
      kind: 'Issuer',
      group: 'cert-manager.io',
    });
  });

  it('grants no Secret writes and no webhook access when it does not manage certificates', () => {
    assert.deepEqual(
      rules(custom, 'ClusterRole'),
      CLUSTER_RULES.filter((r) => !WEBHOOK_RULES.includes(r)),
    );
    assert.deepEqual(rules(custom, 'Role'), [
      rule(['coordination.k8s.io'], ['leases'], ['get', 'update'], ['tollgate-operator']),
      rule(['coordination.k8s.io'], ['leases'], ['create']),
      rule([''], ['secrets'], ['get'], ['tollgate-ca', 'tollgate-operator-tls']),
    ]);
  });
});
