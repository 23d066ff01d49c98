/**
 * RBAC as kube-apiserver's authorizer decides it, over rendered chart objects:
 * the rules of every ClusterRole a ClusterRoleBinding gives the subject (in
 * every namespace), and of every Role or ClusterRole a RoleBinding gives it
 * (in the binding's namespace only). A rule allows a request when its API
 * group, resource (`resource/subresource`), verb and, when it lists
 * `resourceNames`, the request's name match; a request without a name (a
 * create, a list or watch without `metadata.name=` field selector) never
 * matches a rule with `resourceNames`. Non-resource requests are allowed for
 * what Kubernetes' default roles give every authenticated user
 * (system:discovery, system:public-info-viewer).
 */
import type { RequestInfo } from '../kube/request-info.ts';
import type { Manifest } from './helm.ts';
import { list, type Obj, obj } from './objects.ts';

export interface PolicyRule {
  apiGroups?: string[];
  resources?: string[];
  verbs: string[];
  resourceNames?: string[];
}

/** A rule as granted to a subject, and where. */
export interface Grant {
  /** `ClusterRole/NAME` or `Role/NAMESPACE/NAME`. */
  role: string;
  /** Undefined: every namespace and cluster-scoped objects. */
  namespace: string | undefined;
  rule: PolicyRule;
}

export interface Subject {
  kind: 'ServiceAccount';
  name: string;
  namespace: string;
}

/** Paths every authenticated user may GET (system:discovery and system:public-info-viewer). */
const PUBLIC_PATHS = [/^\/(api|apis|openapi)(\/.*)?$/, /^\/(healthz|livez|readyz|version)\/?$/];

function bound(binding: Obj, subject: Subject): boolean {
  return list(binding.subjects).some((s) => {
    const o = obj(s);
    return o.kind === subject.kind && o.name === subject.name && o.namespace === subject.namespace;
  });
}

/** Every rule the rendered objects grant `subject`. */
export function grantsOf(docs: Manifest[], subject: Subject): Grant[] {
  const roles = new Map(
    docs
      .filter((d) => d.kind === 'ClusterRole' || d.kind === 'Role')
      .map((d) => [`${d.kind}/${d.metadata.namespace ?? ''}/${d.metadata.name}`, d]),
  );
  const grants: Grant[] = [];
  for (const binding of docs.filter((d) => d.kind === 'ClusterRoleBinding' || d.kind === 'RoleBinding')) {
    if (!bound(binding, subject)) continue;
    const ref = obj(binding.roleRef);
    const namespace = binding.kind === 'RoleBinding' ? binding.metadata.namespace : undefined;
    const key =
      ref.kind === 'Role'
        ? `Role/${namespace ?? ''}/${String(ref.name)}`
        : `ClusterRole//${String(ref.name)}`;
    const role = roles.get(key);
    if (!role) continue;
    const name =
      ref.kind === 'Role' ? `Role/${namespace}/${String(ref.name)}` : `ClusterRole/${String(ref.name)}`;
    for (const rule of list(role.rules)) grants.push({ role: name, namespace, rule: rule as PolicyRule });
  }
  return grants;
}

const has = (values: string[] | undefined, value: string) =>
  (values ?? []).includes(value) || (values ?? []).includes('*');

/** Whether `rule` allows the request. */
export function ruleAllows(rule: PolicyRule, info: RequestInfo): boolean {
  const resource = info.subresource ? `${info.resource}/${info.subresource}` : info.resource;
  if (!has(rule.apiGroups, info.apiGroup) || !has(rule.resources, resource) || !has(rule.verbs, info.verb))
    return false;
  const names = rule.resourceNames ?? [];
  return names.length === 0 || names.includes(info.name);
}

/** The grant that allows the request, `public` for a public non-resource path, or undefined (403). */
export function authorize(grants: Grant[], info: RequestInfo): Grant | 'public' | undefined {
  if (!info.resourceRequest)
    return info.verb === 'get' && PUBLIC_PATHS.some((p) => p.test(info.path)) ? 'public' : undefined;
  return grants.find(
    (g) => (g.namespace === undefined || g.namespace === info.namespace) && ruleAllows(g.rule, info),
  );
}
