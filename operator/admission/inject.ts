/**
 * Sidecar injection as a pure function: a Pod (as the AdmissionReview carries
 * it), its namespace's labels and the injector's settings in; a JSON patch
 * (RFC 6902) and warnings out, or the reason nothing is injected. No I/O, no
 * clock: the same input always gives the same patch (golden-tested).
 *
 * Probes: the agent has no endpoint that forwards kubelet probes to the app,
 * so probes are never rewritten. A probe on a captured port other than the
 * enforced (first) one has that port excluded from capture; a probe on the
 * enforced port keeps passing through the sidecar (never excluded: that
 * would switch enforcement off) and a warning says so.
 */
import type { V1Container, V1Pod, V1Probe } from '@kubernetes/client-node';
import type { OtlpProtocol } from '../../telemetry/otel/config.ts';
import {
  ANNOTATIONS,
  type AnnotationSettings,
  type LogLevel,
  type PullPolicy,
  readAnnotations,
  type SidecarResources,
  sidecarResources,
} from './inject-settings.ts';
import {
  AGENT_CONTAINER,
  AGENT_UID,
  agentContainer,
  initContainer,
  PORTS,
  sidecarVolumes,
} from './sidecar-containers.ts';

/** One RFC 6902 operation (injection only adds). */
export interface JsonPatchOperation {
  op: 'add';
  path: string;
  value: unknown;
}

/** Settings of the injector; the defaults are stated per field. */
export interface InjectOptions {
  agentImage: string;
  /** `imagePullPolicy` of `tollgate-agent`. Default: unset (Kubernetes' default for the tag). */
  agentImagePullPolicy?: PullPolicy;
  /** Image of `tollgate-init`. Default: `agentImage`. */
  initImage?: string;
  /** `imagePullPolicy` of `tollgate-init`. Default: `agentImagePullPolicy`. */
  initImagePullPolicy?: PullPolicy;
  /** The operator's gRPC address the agent dials. Default `tollgate-operator.tollgate-system.svc:15010`. */
  operatorAddress?: string;
  /** Sidecar resources before annotations. Default {@link DEFAULT_SIDECAR_RESOURCES}. */
  resources?: SidecarResources;
  /** Sidecar log level unless the pod annotates one. Default `info`. */
  logLevel?: LogLevel;
  /** Inject the agent as a native sidecar (Kubernetes ≥ 1.29) instead of a regular container. */
  nativeSidecars: boolean;
  /** Written to `tollgate.dev/injector-version`. Default `unknown`. */
  version?: string;
  /**
   * OTLP collector of every agent (`OTEL_EXPORTER_OTLP_ENDPOINT`, `_PROTOCOL`, and
   * `OTEL_SERVICE_NAME` from the pod's labels, see {@link agentServiceName}). Default: no export.
   */
  otlp?: { endpoint: string; protocol: OtlpProtocol };
  /** Every agent's `--redis-url` (Global rate limits). Default: none (per-sidecar buckets). */
  redisUrl?: string;
}

export type InjectResult =
  | { injected: true; patch: JsonPatchOperation[]; warnings: string[] }
  | { injected: false; reason: string; warnings: string[] };

export const DEFAULT_OPERATOR_ADDRESS = 'tollgate-operator.tollgate-system.svc:15010';
export const DEFAULT_SIDECAR_RESOURCES: SidecarResources = Object.freeze({
  requests: { cpu: '100m', memory: '64Mi' },
  limits: { memory: '256Mi' },
});
export const INJECTED = 'injected';

const RESERVED_PORTS: readonly number[] = [PORTS.inbound, PORTS.outbound, PORTS.admin];
const PROBES = ['startupProbe', 'readinessProbe', 'livenessProbe'] as const;

/** `tollgate.dev/x` → `/metadata/annotations/tollgate.dev~1x` (RFC 6901 escaping). */
function annotationPath(key: string): string {
  return `/metadata/annotations/${key.replaceAll('~', '~0').replaceAll('/', '~1')}`;
}

function requested(
  annotations: Readonly<Record<string, string>>,
  namespaceLabels: Readonly<Record<string, string>>,
  warnings: string[],
): string | null {
  const value = annotations[ANNOTATIONS.inject];
  if (value === 'enabled') return null;
  if (value === 'disabled') return `the pod opted out (${ANNOTATIONS.inject}: disabled)`;
  if (value !== undefined)
    warnings.push(`${ANNOTATIONS.inject}: ${JSON.stringify(value)} is neither enabled nor disabled; ignored`);
  if (namespaceLabels[ANNOTATIONS.inject] === 'enabled') return null;
  return 'injection was not requested';
}

function alreadyInjected(pod: V1Pod, annotations: Readonly<Record<string, string>>): boolean {
  if (annotations[ANNOTATIONS.status] !== undefined) return true;
  const all = [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])];
  return all.some((c) => c.name === AGENT_CONTAINER);
}

function declaredPorts(containers: readonly V1Container[]): number[] {
  const ports: number[] = [];
  for (const c of containers)
    for (const p of c.ports ?? [])
      if ((p.protocol ?? 'TCP') === 'TCP' && !ports.includes(p.containerPort)) ports.push(p.containerPort);
  return ports;
}

function probePort(container: V1Container, probe: V1Probe): number | undefined {
  const port = probe.httpGet?.host
    ? undefined
    : (probe.httpGet?.port ?? probe.tcpSocket?.port ?? probe.grpc?.port);
  if (typeof port === 'number') return port;
  if (typeof port === 'string' && /^\d+$/.test(port)) return Number(port);
  return container.ports?.find((p) => p.name === port)?.containerPort;
}

function probeText(probe: V1Probe, port: number): string {
  if (probe.httpGet) return `GET ${probe.httpGet.path ?? '/'} on port ${port}`;
  if (probe.grpc) return `gRPC on port ${port}`;
  return `TCP port ${port}`;
}

/** Ports whose probes must bypass the sidecar, and warnings for probes that cannot. */
function probeExclusions(
  containers: readonly V1Container[],
  captured: readonly number[],
  upstream: number,
  warnings: string[],
): number[] {
  const excluded: number[] = [];
  for (const c of containers) {
    for (const kind of PROBES) {
      const probe = c[kind];
      const port = probe ? probePort(c, probe) : undefined;
      if (!probe || port === undefined || !captured.includes(port)) continue;
      const what = `container ${JSON.stringify(c.name)} ${kind} (${probeText(probe, port)})`;
      if (port !== upstream) {
        if (!excluded.includes(port)) excluded.push(port);
        warnings.push(`${what}: port ${port} is excluded from capture so the kubelet reaches the app`);
      } else if (probe.tcpSocket) {
        warnings.push(`${what} connects to the sidecar, not to the app`);
      } else {
        warnings.push(`${what} passes through the sidecar: the policy must allow it without credentials`);
      }
    }
  }
  return excluded;
}

interface Capture {
  inbound: number[];
  excluded: number[];
  upstream: number;
}

function capture(pod: V1Pod, settings: AnnotationSettings, warnings: string[]): Capture | null {
  const containers = pod.spec?.containers ?? [];
  const wanted = settings.inboundPorts ?? declaredPorts(containers);
  const reserved = wanted.filter((p) => RESERVED_PORTS.includes(p));
  if (reserved.length > 0)
    warnings.push(
      `port ${reserved.join(', ')} belongs to the sidecar: not captured (an app listening there conflicts)`,
    );
  const ports = wanted.filter(
    (p) => !RESERVED_PORTS.includes(p) && !settings.excludeInboundPorts.includes(p),
  );
  const upstream = ports[0];
  if (upstream === undefined) return null;
  const probes = probeExclusions(containers, ports, upstream, warnings);
  const inbound = ports.filter((p) => !probes.includes(p));
  if (inbound.length > 1) {
    warnings.push(
      `ports ${inbound.join(', ')} are captured but this version enforces policy on ${upstream} only, ` +
        `and forwards every captured request to ${upstream}`,
    );
  }
  const excluded = [
    ...settings.excludeInboundPorts,
    ...probes.filter((p) => !settings.excludeInboundPorts.includes(p)),
  ];
  return { inbound, excluded, upstream };
}

function uidWarning(pod: V1Pod, warnings: string[]): void {
  const podUid = pod.spec?.securityContext?.runAsUser;
  for (const c of pod.spec?.containers ?? []) {
    if ((c.securityContext?.runAsUser ?? podUid) === AGENT_UID)
      warnings.push(
        `container ${JSON.stringify(c.name)} runs as UID ${AGENT_UID}, the sidecar's: its outbound traffic is not captured`,
      );
  }
}

/**
 * The agent's OpenTelemetry `service.name`: the pod's `app.kubernetes.io/name`
 * label, else its `app` label (so traces group by workload, as in Istio), else
 * `tollgate-agent` (the agent's own default). Pod name, namespace and node come as `k8s.*` attributes.
 */
export function agentServiceName(pod: V1Pod): string {
  const labels = pod.metadata?.labels ?? {};
  return labels['app.kubernetes.io/name'] || labels.app || 'tollgate-agent';
}

function patchOf(pod: V1Pod, options: InjectOptions, settings: AnnotationSettings, cap: Capture) {
  const native = options.nativeSidecars;
  const agent = agentContainer({
    image: options.agentImage,
    imagePullPolicy: options.agentImagePullPolicy,
    operatorAddress: options.operatorAddress ?? DEFAULT_OPERATOR_ADDRESS,
    upstreamPort: cap.upstream,
    logLevel: settings.logLevel ?? options.logLevel ?? 'info',
    resources: sidecarResources(options.resources ?? DEFAULT_SIDECAR_RESOURCES, settings),
    native,
    otlp: options.otlp && { ...options.otlp, serviceName: agentServiceName(pod) },
    redisUrl: options.redisUrl,
    outbound: settings.excludeOutboundCidrs !== null,
  });
  const init = initContainer({
    image: options.initImage ?? options.agentImage,
    imagePullPolicy: options.initImagePullPolicy ?? options.agentImagePullPolicy,
    inboundPorts: cap.inbound,
    excludeInboundPorts: cap.excluded,
    excludeOutboundCidrs: settings.excludeOutboundCidrs,
  });
  const ops: JsonPatchOperation[] = [];
  const add = (path: string, value: unknown) => ops.push({ op: 'add', path, value });
  if (pod.metadata?.annotations === undefined) add('/metadata/annotations', {});
  add(annotationPath(ANNOTATIONS.status), INJECTED);
  add(annotationPath(ANNOTATIONS.injectorVersion), options.version ?? 'unknown');
  // tollgate-init first (the capture rules exist before anything else runs), then a native agent.
  const inits = native ? [init, agent] : [init];
  if (pod.spec?.initContainers === undefined) add('/spec/initContainers', inits);
  else for (const [i, c] of inits.entries()) add(`/spec/initContainers/${i}`, c);
  if (!native) add('/spec/containers/0', agent);
  if (pod.spec?.volumes === undefined) add('/spec/volumes', sidecarVolumes());
  else for (const v of sidecarVolumes()) add('/spec/volumes/-', v);
  return ops;
}

/**
 * Decides whether `pod` gets the sidecar and returns the patch that adds it.
 * Injected when the pod annotates `tollgate.dev/inject: enabled`, or its
 * namespace is labelled `tollgate.dev/inject=enabled` and the pod does not
 * annotate `disabled`. Never for a pod already injected (idempotent), nor one
 * on the host network, nor one with no port to capture. Bad annotation values
 * become warnings and their defaults apply.
 */
export function injectSidecar(
  pod: V1Pod,
  namespaceLabels: Readonly<Record<string, string>>,
  options: InjectOptions,
): InjectResult {
  const warnings: string[] = [];
  const annotations = pod.metadata?.annotations ?? {};
  if (alreadyInjected(pod, annotations)) return { injected: false, reason: 'already injected', warnings };
  const notWanted = requested(annotations, namespaceLabels, warnings);
  if (notWanted !== null) return { injected: false, reason: notWanted, warnings };
  if (pod.spec?.hostNetwork === true) {
    const reason = 'the pod uses the host network: the sidecar cannot capture its traffic';
    return { injected: false, reason, warnings: [...warnings, `not injected: ${reason}`] };
  }
  const settings = readAnnotations(annotations, warnings);
  const cap = capture(pod, settings, warnings);
  if (cap === null) {
    const reason = `no port to capture: declare a containerPort or set ${ANNOTATIONS.inboundPorts}`;
    return { injected: false, reason, warnings: [...warnings, `not injected: ${reason}`] };
  }
  uidWarning(pod, warnings);
  return { injected: true, patch: patchOf(pod, options, settings, cap), warnings };
}
