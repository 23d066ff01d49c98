/**
 * The operator's in-memory index: the ApiPolicies, Pods and Namespaces the
 * informers see, which pods each policy selects, and the per-workload bundle
 * compiled for a pod. Informer callbacks only update it (no I/O here); the push
 * queue and the status reconciler read it.
 *
 * A policy is validated once per generation. When a new generation is invalid,
 * the last valid one keeps running (its compiled form stays in the bundles);
 * the status says `Accepted=False`. A bundle is compiled once per workload
 * (namespace + pod labels) and per change of the namespace's policies.
 */
import {
  BUNDLE_KIND,
  BUNDLE_SCHEMA_VERSION,
  type CompiledPolicy,
  type PolicyBundle,
} from '../../policy/compile/bundle.ts';
import { type Conflict, compilePolicy, selectPolicies } from '../../policy/compile/compile.ts';
import { contentHash } from '../../policy/compile/hash.ts';
import { selectorMatches } from '../../policy/compile/selector.ts';
import type { Diagnostic } from '../../policy/diagnostics.ts';
import type { ApiPolicy } from '../../policy/schema/api-policy.ts';
import { validatePolicy } from '../../policy/validate/validate-policy.ts';

/** What the index keeps of a Pod. */
export interface PodInfo {
  namespace: string;
  name: string;
  uid: string;
  labels: Readonly<Record<string, string>>;
  serviceAccount: string;
  /** Runs a Tollgate sidecar (a container or init container named `tollgate-agent`). */
  meshed: boolean;
  /** Being deleted, or finished (Succeeded/Failed): no longer counted. */
  terminating: boolean;
  /** The bundle version its sidecar last ACKed (the `tollgate.dev/policy-version` annotation), "" if none. */
  ackedVersion: string;
  /** Its sidecar's last NACK (`tollgate.dev/policy-error` annotation: "version: error"), "" if none. */
  nack: string;
  /** Its IPs (`status.podIPs`, else `status.podIP`); empty until it has one. */
  ips: string[];
  /** The inbound ports its `tollgate-init` captures (to its agent); null when it has no such init container. */
  capture: PodCapture | null;
  /** Its containers' named ports (`ports[].name` → `containerPort`), for Services' named target ports. */
  namedPorts: Readonly<Record<string, number>>;
}

/** What the index keeps of a Service (for the mesh). */
export interface ServiceInfo {
  namespace: string;
  name: string;
  /** `spec.selector`; null when it has none (its endpoints are managed by hand: never meshed). */
  selector: Readonly<Record<string, string>> | null;
  /** `spec.clusterIPs` (else `spec.clusterIP`), without `None`. */
  clusterIPs: string[];
  ports: { port: number; targetPort: number | string; protocol: string }[];
}

/** What `tollgate init` captures inbound: the listed ports, or every port (`*`) but the excluded ones. */
export interface PodCapture {
  ports: number[] | '*';
  /** With `*`: the ports left alone (the exclusions and the agent's own ports). */
  excluded: number[];
}

/** What the index keeps of an ApiPolicy. */
export interface PolicyRecord {
  namespace: string;
  name: string;
  uid: string;
  generation: number;
  /** The object as the API server has it (its status is read to avoid useless writes). */
  object: Readonly<Record<string, unknown>>;
  /** Validation of this generation. */
  diagnostics: Diagnostic[];
  valid: boolean;
  /** The last valid generation: what runs (null when no generation was ever valid). */
  running: { policy: ApiPolicy; generation: number; compiled: CompiledPolicy } | null;
}

/** A pod's bundle, compiled once per workload and namespace change. */
export interface WorkloadBundle {
  bundle: PolicyBundle;
  /** `bundle` as JSON text, serialized once for every sidecar of the workload. */
  json: string;
  version: string;
  conflicts: Conflict[];
}

export const AGENT_CONTAINER = 'tollgate-agent';
/** The capture init container the injector adds (operator/admission/sidecar-containers.ts). */
export const INIT_CONTAINER = 'tollgate-init';
/** The agent's own ports `tollgate init` never captures, when the args do not name them. */
const AGENT_PORT_FLAGS: Readonly<Record<string, number>> = {
  '--inbound-port': 15006,
  '--outbound-port': 15001,
  '--admin-port': 15020,
};
export const ACKED_VERSION_ANNOTATION = 'tollgate.dev/policy-version';
export const NACK_ANNOTATION = 'tollgate.dev/policy-error';

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function meta(obj: unknown): Obj {
  return isObj(obj) && isObj(obj.metadata) ? obj.metadata : {};
}

function str(v: unknown, fallback = ''): string {
  return typeof v === 'string' ? v : fallback;
}

function strings(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (isObj(v)) for (const [k, x] of Object.entries(v)) if (typeof x === 'string') out[k] = x;
  return out;
}

function names(list: unknown): string[] {
  return Array.isArray(list) ? list.map((c) => (isObj(c) ? str(c.name) : '')) : [];
}

/** The value of `--flag V` or `--flag=V` in an argument list. */
function flagValue(args: readonly string[], flag: string): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    if (a === flag) return args[i + 1];
    if (a.startsWith(`${flag}=`)) return a.slice(flag.length + 1);
  }
  return undefined;
}

function portList(text: string | undefined): number[] {
  return (text ?? '')
    .split(',')
    .map((p) => Number(p.trim()))
    .filter((p) => Number.isInteger(p) && p >= 1 && p <= 65535);
}

/** What the pod's `tollgate-init` container captures inbound, from its arguments. */
function captureOf(spec: Obj): PodCapture | null {
  const inits = Array.isArray(spec.initContainers) ? spec.initContainers : [];
  const init = inits.find((c) => isObj(c) && c.name === INIT_CONTAINER) as Obj | undefined;
  if (!init) return null;
  const args = [
    ...(Array.isArray(init.command) ? init.command : []),
    ...(Array.isArray(init.args) ? init.args : []),
  ].filter((a): a is string => typeof a === 'string');
  const inbound = flagValue(args, '--inbound-ports');
  if (inbound === undefined) return null;
  if (inbound.trim() !== '*') {
    const ports = portList(inbound);
    return ports.length === 0 ? null : { ports, excluded: [] };
  }
  const own = Object.entries(AGENT_PORT_FLAGS).map(
    ([flag, port]) => portList(flagValue(args, flag))[0] ?? port,
  );
  const excluded = [...new Set([...portList(flagValue(args, '--exclude-inbound-ports')), ...own])];
  return { ports: '*', excluded: excluded.sort((a, b) => a - b) };
}

function ipsOf(status: Obj): string[] {
  const listed = Array.isArray(status.podIPs)
    ? status.podIPs.map((p) => (isObj(p) ? str(p.ip) : '')).filter((ip) => ip !== '')
    : [];
  if (listed.length > 0) return listed;
  return str(status.podIP) === '' ? [] : [str(status.podIP)];
}

function namedPortsOf(spec: Obj): Record<string, number> {
  const out: Record<string, number> = {};
  for (const c of [
    ...(Array.isArray(spec.containers) ? spec.containers : []),
    ...(Array.isArray(spec.initContainers) ? spec.initContainers : []),
  ]) {
    if (!isObj(c) || !Array.isArray(c.ports)) continue;
    for (const p of c.ports)
      if (isObj(p) && typeof p.name === 'string' && typeof p.containerPort === 'number')
        out[p.name] = p.containerPort;
  }
  return out;
}

/** The index's view of a Service object. */
export function serviceInfo(service: unknown): ServiceInfo {
  const m = meta(service);
  const spec = isObj(service) && isObj(service.spec) ? service.spec : {};
  const listed = Array.isArray(spec.clusterIPs)
    ? spec.clusterIPs.map((ip) => str(ip))
    : [str(spec.clusterIP)];
  const selector = strings(spec.selector);
  return {
    namespace: str(m.namespace, 'default'),
    name: str(m.name),
    selector: Object.keys(selector).length === 0 ? null : selector,
    clusterIPs: listed.filter((ip) => ip !== '' && ip !== 'None'),
    ports: (Array.isArray(spec.ports) ? spec.ports : []).flatMap((p) => {
      if (!isObj(p) || typeof p.port !== 'number') return [];
      const target =
        typeof p.targetPort === 'number' || typeof p.targetPort === 'string' ? p.targetPort : p.port;
      return [{ port: p.port, targetPort: target, protocol: str(p.protocol, 'TCP') }];
    }),
  };
}

/** The index's view of a Pod object (client-node's V1Pod or plain JSON). */
export function podInfo(pod: unknown): PodInfo {
  const m = meta(pod);
  const spec = isObj(pod) && isObj(pod.spec) ? pod.spec : {};
  const status = isObj(pod) && isObj(pod.status) ? pod.status : {};
  const annotations = strings(m.annotations);
  const phase = str(status.phase);
  return {
    namespace: str(m.namespace, 'default'),
    name: str(m.name),
    uid: str(m.uid),
    labels: strings(m.labels),
    serviceAccount: str(spec.serviceAccountName, 'default'),
    meshed: [...names(spec.containers), ...names(spec.initContainers)].includes(AGENT_CONTAINER),
    terminating: m.deletionTimestamp != null || phase === 'Succeeded' || phase === 'Failed',
    ackedVersion: annotations[ACKED_VERSION_ANNOTATION] ?? '',
    nack: annotations[NACK_ANNOTATION] ?? '',
    ips: ipsOf(status),
    capture: captureOf(spec),
    namedPorts: namedPortsOf(spec),
  };
}

function labelsKey(labels: Readonly<Record<string, string>>): string {
  return JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

export const keyOf = (namespace: string, name: string): string => `${namespace}/${name}`;

export class PolicyIndex {
  readonly #policies = new Map<string, PolicyRecord>();
  readonly #pods = new Map<string, PodInfo>();
  readonly #services = new Map<string, ServiceInfo>();
  readonly #namespaces = new Map<string, Readonly<Record<string, string>>>();
  /** Per namespace: workload key → bundle, dropped whenever a policy of the namespace changes. */
  readonly #bundles = new Map<string, Map<string, WorkloadBundle>>();

  /** Records a policy; returns true when what runs or what is reported changed (not on status-only updates). */
  upsertPolicy(object: unknown): boolean {
    const m = meta(object);
    const namespace = str(m.namespace, 'default');
    const name = str(m.name);
    const key = keyOf(namespace, name);
    const uid = str(m.uid);
    const generation = typeof m.generation === 'number' ? m.generation : 0;
    const previous = this.#policies.get(key);
    if (previous && previous.uid === uid && previous.generation === generation) {
      previous.object = object as Obj;
      return false;
    }
    const { policy, diagnostics } = validatePolicy(object);
    const errors = diagnostics.filter((d) => d.severity === 'error');
    const valid = policy !== null && errors.length === 0;
    const inherited = previous && previous.uid === uid ? previous.running : null;
    const running = valid ? { policy, generation, compiled: compilePolicy(policy) } : inherited;
    this.#policies.set(key, {
      namespace,
      name,
      uid,
      generation,
      object: object as Obj,
      diagnostics,
      valid,
      running,
    });
    this.#bundles.delete(namespace);
    return true;
  }

  /** Forgets a policy; returns true when it was known. */
  deletePolicy(namespace: string, name: string): boolean {
    const known = this.#policies.delete(keyOf(namespace, name));
    if (known) this.#bundles.delete(namespace);
    return known;
  }

  /** Records a pod; returns the previous view (undefined when new). */
  upsertPod(pod: PodInfo): PodInfo | undefined {
    const key = keyOf(pod.namespace, pod.name);
    const previous = this.#pods.get(key);
    this.#pods.set(key, pod);
    return previous;
  }

  deletePod(namespace: string, name: string): PodInfo | undefined {
    const key = keyOf(namespace, name);
    const previous = this.#pods.get(key);
    this.#pods.delete(key);
    return previous;
  }

  upsertNamespace(name: string, labels: Readonly<Record<string, string>>): void {
    this.#namespaces.set(name, labels);
  }

  deleteNamespace(name: string): void {
    this.#namespaces.delete(name);
  }

  namespaceLabels(name: string): Readonly<Record<string, string>> | undefined {
    return this.#namespaces.get(name);
  }

  pod(namespace: string, name: string): PodInfo | undefined {
    return this.#pods.get(keyOf(namespace, name));
  }

  policy(namespace: string, name: string): PolicyRecord | undefined {
    return this.#policies.get(keyOf(namespace, name));
  }

  policies(): IterableIterator<PolicyRecord> {
    return this.#policies.values();
  }

  pods(): IterableIterator<PodInfo> {
    return this.#pods.values();
  }

  /** Records a service; returns the previous view (undefined when new). */
  upsertService(service: ServiceInfo): ServiceInfo | undefined {
    const key = keyOf(service.namespace, service.name);
    const previous = this.#services.get(key);
    this.#services.set(key, service);
    return previous;
  }

  deleteService(namespace: string, name: string): ServiceInfo | undefined {
    const key = keyOf(namespace, name);
    const previous = this.#services.get(key);
    this.#services.delete(key);
    return previous;
  }

  services(): IterableIterator<ServiceInfo> {
    return this.#services.values();
  }

  podsIn(namespace: string): PodInfo[] {
    return [...this.#pods.values()].filter((p) => p.namespace === namespace);
  }

  /** The policies of `namespace` whose selector matches `labels` (valid or not). */
  policiesSelecting(namespace: string, labels: Readonly<Record<string, string>>): PolicyRecord[] {
    return [...this.#policies.values()].filter(
      (p) => p.namespace === namespace && matches(selectorOf(p), labels),
    );
  }

  /** Meshed, live pods the policy selects (by the selector of its current generation). */
  selectedPods(record: PolicyRecord): PodInfo[] {
    const selector = selectorOf(record);
    return this.podsIn(record.namespace).filter(
      (p) => p.meshed && !p.terminating && matches(selector, p.labels),
    );
  }

  /** The bundle for a pod: every running policy of its namespace that selects it, conflicts resolved. */
  bundleFor(pod: Pick<PodInfo, 'namespace' | 'labels'>): WorkloadBundle {
    let cache = this.#bundles.get(pod.namespace);
    if (!cache) {
      cache = new Map();
      this.#bundles.set(pod.namespace, cache);
    }
    const key = labelsKey(pod.labels);
    let result = cache.get(key);
    if (!result) {
      result = this.#compile(pod.namespace, pod.labels);
      cache.set(key, result);
    }
    return result;
  }

  #compile(namespace: string, labels: Readonly<Record<string, string>>): WorkloadBundle {
    const running = new Map<ApiPolicy, CompiledPolicy>();
    for (const r of this.#policies.values()) {
      if (r.namespace === namespace && r.running) running.set(r.running.policy, r.running.compiled);
    }
    const { winners, conflicts } = selectPolicies([...running.keys()], { namespace, labels });
    const policies = winners.map((p) => running.get(p) as CompiledPolicy);
    const bundle: PolicyBundle = {
      kind: BUNDLE_KIND,
      schemaVersion: BUNDLE_SCHEMA_VERSION,
      version: contentHash(policies),
      policies,
    };
    return { bundle, json: JSON.stringify(bundle), version: bundle.version, conflicts };
  }
}

/**
 * The selector of the pods a policy governs: its running generation's. A
 * policy that was never valid governs nothing, so it selects nothing.
 */
function selectorOf(record: PolicyRecord): ApiPolicy['spec']['selector'] | null {
  return record.running ? record.running.policy.spec.selector : null;
}

function matches(
  selector: ApiPolicy['spec']['selector'] | null,
  labels: Readonly<Record<string, string>>,
): boolean {
  return selector !== null && selectorMatches(selector, labels);
}
