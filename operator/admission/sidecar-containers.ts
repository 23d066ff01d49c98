/**
 * The containers and volumes injection adds to a pod: the `tollgate-agent`
 * sidecar (operator mode), the `tollgate-init` container that installs the
 * traffic-capture rules, the projected ServiceAccount token, the operator's
 * CA and the state directory. The names, paths and ports here are a contract
 * with the agent, `tollgate init`, the operator's index and the Helm chart.
 * Pure: no I/O.
 */
import type { V1Container, V1EnvVar, V1Volume } from '@kubernetes/client-node';
import type { OtlpProtocol } from '../../telemetry/otel/config.ts';
import { AGENT_CONTAINER, INIT_CONTAINER } from '../index/policy-index.ts';
import type { LogLevel, PullPolicy, SidecarResources } from './inject-settings.ts';

// One name for each, shared with the index (which recognizes injected pods by them).
export { AGENT_CONTAINER, INIT_CONTAINER } from '../index/policy-index.ts';
export const AGENT_UID = 1337;
export const PORTS = Object.freeze({ inbound: 15006, outbound: 15001, admin: 15020 });

export const TOKEN_AUDIENCE = 'tollgate';
export const CA_ROOT_CONFIGMAP = 'tollgate-ca-root';
export const VOLUMES = Object.freeze({
  token: { name: 'tollgate-token', mountPath: '/var/run/secrets/tollgate/serviceaccount' },
  ca: { name: 'tollgate-ca', mountPath: '/var/run/secrets/tollgate/ca' },
  state: { name: 'tollgate-state', mountPath: '/var/lib/tollgate' },
});
export const TOKEN_FILE = `${VOLUMES.token.mountPath}/token`;
export const CA_FILE = `${VOLUMES.ca.mountPath}/ca.crt`;
/** Lifetime of the projected token; the kubelet renews it at 80 %. */
export const TOKEN_EXPIRATION_SECONDS = 3600;

/** Where the agent exports OpenTelemetry (its `OTEL_EXPORTER_OTLP_*` variables). */
export interface AgentOtlp {
  endpoint: string;
  protocol: OtlpProtocol;
  /** `OTEL_SERVICE_NAME`. */
  serviceName: string;
}

/** What the agent container is built from. */
/** Every address: outbound capture off. */
const NO_OUTBOUND_CAPTURE = '0.0.0.0/0,::/0';

export interface AgentSpec {
  image: string;
  /** Unset: Kubernetes' default (`Always` for `:latest` or no tag, else `IfNotPresent`). */
  imagePullPolicy?: PullPolicy | undefined;
  operatorAddress: string;
  /** The app port the agent forwards to (`--upstream http://127.0.0.1:PORT`). */
  upstreamPort: number;
  logLevel: LogLevel;
  resources: SidecarResources;
  /** A native sidecar: an init container with `restartPolicy: Always` and a startup probe. */
  native: boolean;
  /** Unset: no OpenTelemetry export. */
  otlp?: AgentOtlp | undefined;
  /** The agent's `--redis-url` (Global rate limits); unset: per-sidecar buckets. */
  redisUrl?: string | undefined;
  /** Outbound capture is on: the agent listens for it (REDIRECT sends the app's connections to loopback). */
  outbound?: boolean;
}

/** What the init container is built from. */
export interface InitSpec {
  image: string;
  /** Unset: Kubernetes' default. */
  imagePullPolicy?: PullPolicy | undefined;
  inboundPorts: readonly number[];
  excludeInboundPorts: readonly number[];
  /** null: outbound traffic is not captured (every CIDR excluded). */
  excludeOutboundCidrs: readonly string[] | null;
}

const fieldEnv = (name: string, fieldPath: string) => ({ name, valueFrom: { fieldRef: { fieldPath } } });

function adminProbe(path: string, periodSeconds: number, failureThreshold: number) {
  return {
    httpGet: { path, port: PORTS.admin, scheme: 'HTTP' },
    periodSeconds,
    timeoutSeconds: 3,
    failureThreshold,
  };
}

function otlpEnv(otlp: AgentOtlp | undefined): V1EnvVar[] {
  if (otlp === undefined) return [];
  return [
    { name: 'OTEL_EXPORTER_OTLP_ENDPOINT', value: otlp.endpoint },
    { name: 'OTEL_EXPORTER_OTLP_PROTOCOL', value: otlp.protocol },
    { name: 'OTEL_SERVICE_NAME', value: otlp.serviceName },
  ];
}

/** The `tollgate-agent` container. */
export function agentContainer(spec: AgentSpec): V1Container {
  return {
    name: AGENT_CONTAINER,
    image: spec.image,
    ...(spec.imagePullPolicy === undefined ? {} : { imagePullPolicy: spec.imagePullPolicy }),
    args: [
      'agent',
      '--operator',
      spec.operatorAddress,
      '--operator-ca',
      CA_FILE,
      '--token-file',
      TOKEN_FILE,
      '--state-dir',
      VOLUMES.state.mountPath,
      '--upstream',
      `http://127.0.0.1:${spec.upstreamPort}`,
      '--listen',
      `0.0.0.0:${PORTS.inbound}`,
      // The kubelet probes the pod IP, so the admin port cannot stay on loopback.
      '--admin',
      `0.0.0.0:${PORTS.admin}`,
      '--log-level',
      spec.logLevel,
      // The URL (and any password in it) is in the pod spec: docs/operator.md says how to keep it credential-free.
      ...(spec.redisUrl === undefined ? [] : ['--redis-url', spec.redisUrl]),
      ...(spec.outbound ? ['--outbound', `127.0.0.1:${PORTS.outbound}`] : []),
    ],
    env: [
      fieldEnv('POD_NAME', 'metadata.name'),
      fieldEnv('POD_NAMESPACE', 'metadata.namespace'),
      fieldEnv('POD_UID', 'metadata.uid'),
      fieldEnv('NODE_NAME', 'spec.nodeName'),
      ...otlpEnv(spec.otlp),
    ],
    ports: [
      { name: 'tollgate-in', containerPort: PORTS.inbound, protocol: 'TCP' },
      { name: 'tollgate-admin', containerPort: PORTS.admin, protocol: 'TCP' },
    ],
    ...(spec.native ? { restartPolicy: 'Always', startupProbe: adminProbe('/healthz', 1, 60) } : {}),
    readinessProbe: adminProbe('/readyz', 5, 3),
    livenessProbe: adminProbe('/healthz', 10, 3),
    resources: structuredClone(spec.resources),
    securityContext: {
      runAsUser: AGENT_UID,
      runAsGroup: AGENT_UID,
      runAsNonRoot: true,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      privileged: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    },
    volumeMounts: [
      { name: VOLUMES.token.name, mountPath: VOLUMES.token.mountPath, readOnly: true },
      { name: VOLUMES.ca.name, mountPath: VOLUMES.ca.mountPath, readOnly: true },
      { name: VOLUMES.state.name, mountPath: VOLUMES.state.mountPath },
    ],
  };
}

/** The `tollgate-init` container: `tollgate init` with the pod's capture settings. */
export function initContainer(spec: InitSpec): V1Container {
  const args = ['init', '--inbound-ports', spec.inboundPorts.join(',')];
  if (spec.excludeInboundPorts.length > 0)
    args.push('--exclude-inbound-ports', spec.excludeInboundPorts.join(','));
  if (spec.excludeOutboundCidrs === null) args.push('--exclude-outbound-cidrs', NO_OUTBOUND_CAPTURE);
  else if (spec.excludeOutboundCidrs.length > 0)
    args.push('--exclude-outbound-cidrs', spec.excludeOutboundCidrs.join(','));
  args.push(
    '--agent-uid',
    String(AGENT_UID),
    '--inbound-port',
    String(PORTS.inbound),
    '--outbound-port',
    String(PORTS.outbound),
    '--admin-port',
    String(PORTS.admin),
  );
  return {
    name: INIT_CONTAINER,
    image: spec.image,
    ...(spec.imagePullPolicy === undefined ? {} : { imagePullPolicy: spec.imagePullPolicy }),
    args,
    resources: { requests: { cpu: '10m', memory: '16Mi' }, limits: { cpu: '100m', memory: '64Mi' } },
    securityContext: {
      // iptables needs root with NET_ADMIN and NET_RAW, and nothing else.
      runAsUser: 0,
      runAsGroup: 0,
      runAsNonRoot: false,
      // iptables takes its lock in /run/xtables.lock.
      readOnlyRootFilesystem: false,
      allowPrivilegeEscalation: false,
      privileged: false,
      capabilities: { drop: ['ALL'], add: ['NET_ADMIN', 'NET_RAW'] },
    },
  };
}

/** The pod volumes the agent mounts. */
export function sidecarVolumes(): V1Volume[] {
  return [
    {
      name: VOLUMES.token.name,
      projected: {
        sources: [
          {
            serviceAccountToken: {
              audience: TOKEN_AUDIENCE,
              expirationSeconds: TOKEN_EXPIRATION_SECONDS,
              path: 'token',
            },
          },
        ],
      },
    },
    { name: VOLUMES.ca.name, configMap: { name: CA_ROOT_CONFIGMAP } },
    { name: VOLUMES.state.name, emptyDir: {} },
  ];
}
