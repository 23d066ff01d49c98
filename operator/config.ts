/**
 * The operator's process configuration: every flag declared once (name,
 * default, description), parsed once with all problems listed, then frozen.
 * Defaults for the lease identity and namespace come from the downward-API
 * environment (POD_NAME, POD_NAMESPACE) the chart sets; the default image of
 * the injected containers is `ghcr.io/tollgate-dev/tollgate:<version>` (the
 * chart's default repository), the version the CLI passes in. Every setting
 * of the injected sidecar is an `--agent-*` flag (`--init-*` for tollgate-init).
 */

import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { parseHostPort } from '../agent/config.ts';
import { parseRedisTarget } from '../agent/pipeline/ratelimit/redis-client.ts';
import { parseDuration } from '../policy/units.ts';
import { OTLP_PROTOCOLS, type OtlpProtocol } from '../telemetry/otel/config.ts';
import {
  LOG_LEVELS,
  type LogLevel,
  PULL_POLICIES,
  type PullPolicy,
  parseQuantity,
  type SidecarResources,
} from './admission/inject-settings.ts';

/** The image repository of every Tollgate command (the chart's `images.*.repository` default). */
export const DEFAULT_IMAGE_REPOSITORY = 'ghcr.io/tollgate-dev/tollgate';

export interface OperatorConfig {
  kubeconfig: string | null;
  grpcListen: { host: string; port: number };
  healthListen: { host: string; port: number };
  /** `namespace/name` of the kubernetes.io/tls Secret with the gRPC and webhook serving certificate. */
  servingSecret: { namespace: string; name: string };
  /** Namespace of the leader-election Lease. */
  namespace: string;
  leaseName: string;
  identity: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  logLevel: 'debug' | 'info' | 'warn' | 'error';
  /** The admission webhooks' HTTPS listener (`/inject`, `/validate`). */
  webhookListen: { host: string; port: number };
  /** Image of the injected `tollgate-agent`. */
  agentImage: string;
  /** Its `imagePullPolicy`; null: unset (Kubernetes' default for the tag). */
  agentImagePullPolicy: PullPolicy | null;
  /** Image of the injected `tollgate-init`. */
  initImage: string;
  /** Its `imagePullPolicy`; null: unset. */
  initImagePullPolicy: PullPolicy | null;
  /** Inject native sidecars; `auto`: when the API server is Kubernetes ≥ 1.29. */
  nativeSidecars: boolean | 'auto';
  /** Create and renew the CA and serving Secrets and the webhooks' caBundle (false: cert-manager does). */
  manageCertificates: boolean;
  /** SPIFFE trust domain: the CA's URI SAN `spiffe://<trustDomain>` (workload identities will be under it). */
  trustDomain: string;
  /** Lifetime of workload certificates signed for sidecars (IdentityService.Sign). */
  workloadCertTtlMs: number;
  /** Managed CA: a staged rotation starts when it has less than this left (0: only on request). */
  caRotateBeforeMs: number;
  /** Resources of injected agents unless a pod annotates its own. */
  agentResources: SidecarResources;
  /** Log level of injected agents unless a pod annotates its own. */
  agentLogLevel: LogLevel;
  /** OTLP export of injected agents; null: none. */
  agentOtlp: { endpoint: string; protocol: OtlpProtocol } | null;
  /** `--redis-url` of injected agents (it may hold a password: never log it); null: none. */
  agentRedisUrl: string | null;
}

interface FlagSpec {
  type: 'string' | 'boolean';
  default?: string;
  description: string;
}

export const OPERATOR_FLAGS: Readonly<Record<string, FlagSpec>> = {
  kubeconfig: { type: 'string', description: 'kubeconfig file (default: in-cluster, else ~/.kube/config)' },
  'grpc-listen': {
    type: 'string',
    default: '0.0.0.0:15010',
    description: 'policy stream (gRPC over TLS) HOST:PORT',
  },
  'health-listen': {
    type: 'string',
    default: '0.0.0.0:8080',
    description: '/healthz /readyz /metrics HOST:PORT',
  },
  'serving-secret': {
    type: 'string',
    default: 'tollgate-system/tollgate-operator-tls',
    description: 'NAMESPACE/NAME of the kubernetes.io/tls Secret the gRPC and webhook servers present',
  },
  namespace: {
    type: 'string',
    description: 'namespace of the leader Lease (default $POD_NAMESPACE, else tollgate-system)',
  },
  'lease-name': {
    type: 'string',
    default: 'tollgate-operator',
    description: 'name of the leader-election Lease',
  },
  identity: {
    type: 'string',
    description: 'this replica in the Lease (default $POD_NAME, else the host name)',
  },
  'lease-duration': {
    type: 'string',
    default: '15s',
    description: 'how long a leader holds the Lease unrenewed',
  },
  'renew-deadline': {
    type: 'string',
    default: '10s',
    description: 'a leader that cannot renew this long steps down',
  },
  'retry-period': { type: 'string', default: '2s', description: 'interval of Lease attempts and renewals' },
  'log-level': { type: 'string', default: 'info', description: 'debug | info | warn | error' },
  'webhook-listen': {
    type: 'string',
    default: '0.0.0.0:9443',
    description: 'admission webhooks (HTTPS: /inject, /validate) HOST:PORT',
  },
  'manage-certificates': {
    type: 'string',
    default: 'true',
    description: 'make and renew the CA, serving Secret and webhook caBundle (false: cert-manager does)',
  },
  'trust-domain': {
    type: 'string',
    default: 'cluster.local',
    description: 'SPIFFE trust domain (a DNS name): the CA certificate carries spiffe://TRUST_DOMAIN',
  },
  'workload-cert-ttl': {
    type: 'string',
    default: '24h',
    description: 'lifetime of the workload certificates signed for sidecars (they renew at half-life)',
  },
  'ca-rotate-before': {
    type: 'string',
    default: '8760h',
    description:
      'managed CA: rotate it in stages when it has less than this left (0s: only when Secret tollgate-ca is annotated tollgate.dev/rotate-ca)',
  },
  'native-sidecars': {
    type: 'string',
    default: 'auto',
    description: 'inject the agent as a native sidecar: auto (Kubernetes >= 1.29) | true | false',
  },
  'agent-image': {
    type: 'string',
    description: `image of the injected tollgate-agent (default ${DEFAULT_IMAGE_REPOSITORY}:VERSION)`,
  },
  'agent-image-pull-policy': {
    type: 'string',
    description: "its imagePullPolicy: Always | IfNotPresent | Never (default Kubernetes' for the tag)",
  },
  'init-image': {
    type: 'string',
    description: 'image of the injected tollgate-init (default --agent-image)',
  },
  'init-image-pull-policy': {
    type: 'string',
    description: 'its imagePullPolicy (default --agent-image-pull-policy)',
  },
  'agent-cpu-request': { type: 'string', default: '100m', description: 'injected agent CPU request' },
  'agent-memory-request': { type: 'string', default: '64Mi', description: 'injected agent memory request' },
  'agent-cpu-limit': { type: 'string', description: 'injected agent CPU limit (default none)' },
  'agent-memory-limit': { type: 'string', default: '256Mi', description: 'injected agent memory limit' },
  'agent-log-level': {
    type: 'string',
    default: 'info',
    description: 'injected agent log level: debug | info | warn | error',
  },
  'agent-otlp-endpoint': {
    type: 'string',
    description: 'OTLP collector of injected agents, http(s)://HOST:PORT (default none: no export)',
  },
  'agent-otlp-protocol': {
    type: 'string',
    default: 'http/protobuf',
    description: 'its protocol: grpc | http/protobuf | http/json',
  },
  'agent-redis-url': {
    type: 'string',
    description:
      "injected agents' --redis-url for Global rate limits (written in their pod spec; default none)",
  },
  help: { type: 'boolean', description: 'show this help' },
};

export class OperatorConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(problems.join('; '));
    this.problems = problems;
  }
}

export function operatorHelp(): string {
  const lines = ['Usage: tollgate operator [options]', '', 'Options:'];
  for (const [name, spec] of Object.entries(OPERATOR_FLAGS)) {
    const arg = spec.type === 'string' ? ` ${name.toUpperCase().replaceAll('-', '_')}` : '';
    const def = spec.default === undefined ? '' : ` (default ${spec.default})`;
    lines.push(`${`  --${name}${arg}`.padEnd(30)} ${spec.description}${def}`);
  }
  return lines.join('\n');
}

function duration(flag: string, text: string, problems: string[]): number {
  const ms = parseDuration(text);
  if (ms === null || ms <= 0) {
    problems.push(`--${flag}: expected a duration such as 15s, got ${JSON.stringify(text)}`);
    return 1000;
  }
  return ms;
}

function choice<T extends string>(flag: string, text: string, allowed: readonly T[], problems: string[]): T {
  const found = allowed.find((a) => a === text);
  if (found === undefined) problems.push(`--${flag}: ${allowed.join(' | ')}, got ${JSON.stringify(text)}`);
  return found ?? (allowed[0] as T);
}

function resources(str: (k: string) => string, problems: string[]): SidecarResources {
  const read = (flag: string): string | undefined => {
    const text = str(flag);
    if (text === '') return undefined;
    if (parseQuantity(text) === null)
      problems.push(`--${flag}: expected a quantity such as 100m or 64Mi, got ${JSON.stringify(text)}`);
    return text;
  };
  const requests = { cpu: read('agent-cpu-request'), memory: read('agent-memory-request') };
  const limits = { cpu: read('agent-cpu-limit'), memory: read('agent-memory-limit') };
  for (const kind of ['cpu', 'memory'] as const) {
    const [req, lim] = [requests[kind], limits[kind]];
    if (req && lim && (parseQuantity(req) ?? 0) > (parseQuantity(lim) ?? 0))
      problems.push(`--agent-${kind}-request ${req} exceeds --agent-${kind}-limit ${lim}`);
  }
  const defined = (o: { cpu: string | undefined; memory: string | undefined }) =>
    Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as {
      cpu?: string;
      memory?: string;
    };
  const out: SidecarResources = {};
  if (requests.cpu || requests.memory) out.requests = defined(requests);
  if (limits.cpu || limits.memory) out.limits = defined(limits);
  return out;
}

/** `--X-image-pull-policy`: one of PULL_POLICIES, or null when not given. */
function pullPolicy(flag: string, text: string, problems: string[]): PullPolicy | null {
  return text === '' ? null : choice(flag, text, PULL_POLICIES, problems);
}

/** A DNS name as Kubernetes reads one (RFC 1123 subdomain, lowercase), as SPIFFE trust domains are. */
const DNS_NAME = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$/;

function trustDomain(text: string, problems: string[]): string {
  if (!DNS_NAME.test(text))
    problems.push(
      `--trust-domain: expected a lowercase DNS name such as cluster.local, got ${JSON.stringify(text)}`,
    );
  return text;
}

/** At least 10 s (agents renew at half-life), at most a year. */
function workloadTtl(text: string, problems: string[]): number {
  const ms = parseDuration(text);
  if (ms === null || ms < 10_000 || ms > 365 * 86_400_000) {
    problems.push(`--workload-cert-ttl: expected a duration from 10s to 8760h, got ${JSON.stringify(text)}`);
    return 86_400_000;
  }
  return ms;
}

/** From 0 (only on request) to 10 years (the managed CA's lifetime). */
function rotateBefore(text: string, problems: string[]): number {
  const ms = parseDuration(text);
  if (ms === null || ms < 0 || ms > 3650 * 86_400_000) {
    problems.push(`--ca-rotate-before: expected a duration from 0s to 87600h, got ${JSON.stringify(text)}`);
    return 0;
  }
  return ms;
}

function otlp(str: (k: string) => string, problems: string[]): OperatorConfig['agentOtlp'] {
  const endpoint = str('agent-otlp-endpoint');
  const protocol = choice('agent-otlp-protocol', str('agent-otlp-protocol'), OTLP_PROTOCOLS, problems);
  if (endpoint === '') return null;
  let url: URL | undefined;
  try {
    url = new URL(endpoint);
  } catch {}
  if (!url || !['http:', 'https:'].includes(url.protocol) || url.hostname === '' || /\s/.test(endpoint))
    problems.push(
      `--agent-otlp-endpoint: expected an http:// or https:// URL, got ${JSON.stringify(endpoint)}`,
    );
  return { endpoint, protocol };
}

function redisUrl(text: string, problems: string[]): string | null {
  if (text === '') return null;
  const target = parseRedisTarget(text);
  // The URL may hold a password: the problem never quotes it.
  if (typeof target === 'string') problems.push(`--agent-redis-url: ${target}`);
  return text;
}

/**
 * Parses operator flags; throws OperatorConfigError listing every problem.
 * Returns null for --help. `version` tags the default image.
 */
export function parseOperatorConfig(
  args: string[],
  env: Readonly<Record<string, string | undefined>> = process.env,
  version = 'latest',
): OperatorConfig | null {
  const problems: string[] = [];
  const options = Object.fromEntries(
    Object.entries(OPERATOR_FLAGS).map(([k, s]) => [
      k,
      { type: s.type, ...(s.default ? { default: s.default } : {}) },
    ]),
  );
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({ args, options, strict: true, allowPositionals: false }).values;
  } catch (e) {
    problems.push((e as Error).message.split('\n')[0] ?? 'bad arguments');
    values = parseArgs({ args, options, strict: false, allowPositionals: true }).values;
  }
  if (values.help === true && problems.length === 0) return null;
  const str = (k: string) => (typeof values[k] === 'string' ? (values[k] as string) : '');
  const secret = /^([a-z0-9-]{1,63})\/([a-z0-9.-]{1,253})$/.exec(str('serving-secret'));
  if (!secret)
    problems.push(`--serving-secret: expected NAMESPACE/NAME, got ${JSON.stringify(str('serving-secret'))}`);
  const logLevel = str('log-level');
  if (!['debug', 'info', 'warn', 'error'].includes(logLevel))
    problems.push('--log-level: debug | info | warn | error');
  const defaultImage = `${DEFAULT_IMAGE_REPOSITORY}:${version}`;
  const agentPullPolicy = pullPolicy('agent-image-pull-policy', str('agent-image-pull-policy'), problems);
  const config: OperatorConfig = {
    kubeconfig: str('kubeconfig') || null,
    grpcListen: parseHostPort('grpc-listen', str('grpc-listen'), problems),
    healthListen: parseHostPort('health-listen', str('health-listen'), problems),
    servingSecret: { namespace: secret?.[1] ?? '', name: secret?.[2] ?? '' },
    namespace: str('namespace') || env.POD_NAMESPACE || 'tollgate-system',
    leaseName: str('lease-name'),
    identity: str('identity') || env.POD_NAME || hostname(),
    leaseDurationMs: duration('lease-duration', str('lease-duration'), problems),
    renewDeadlineMs: duration('renew-deadline', str('renew-deadline'), problems),
    retryPeriodMs: duration('retry-period', str('retry-period'), problems),
    logLevel: logLevel as OperatorConfig['logLevel'],
    webhookListen: parseHostPort('webhook-listen', str('webhook-listen'), problems),
    agentImage: str('agent-image') || defaultImage,
    agentImagePullPolicy: agentPullPolicy,
    initImage: str('init-image') || str('agent-image') || defaultImage,
    initImagePullPolicy:
      pullPolicy('init-image-pull-policy', str('init-image-pull-policy'), problems) ?? agentPullPolicy,
    nativeSidecars: { auto: 'auto', true: true, false: false }[
      choice('native-sidecars', str('native-sidecars'), ['auto', 'true', 'false'], problems)
    ] as boolean | 'auto',
    manageCertificates:
      choice('manage-certificates', str('manage-certificates'), ['true', 'false'], problems) === 'true',
    trustDomain: trustDomain(str('trust-domain'), problems),
    workloadCertTtlMs: workloadTtl(str('workload-cert-ttl'), problems),
    caRotateBeforeMs: rotateBefore(str('ca-rotate-before'), problems),
    agentResources: resources(str, problems),
    agentLogLevel: choice('agent-log-level', str('agent-log-level'), LOG_LEVELS, problems),
    agentOtlp: otlp(str, problems),
    agentRedisUrl: redisUrl(str('agent-redis-url'), problems),
  };
  if (config.renewDeadlineMs >= config.leaseDurationMs)
    problems.push('--renew-deadline must be shorter than --lease-duration');
  if (config.retryPeriodMs >= config.renewDeadlineMs)
    problems.push('--retry-period must be shorter than --renew-deadline');
  if (problems.length > 0) throw new OperatorConfigError(problems);
  return Object.freeze(config);
}
