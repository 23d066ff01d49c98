/**
 * An operator test environment: the Kubernetes API test server with the
 * ApiPolicy CRD, a serving certificate in a Secret, a namespace with a
 * ServiceAccount and meshed pods, and operators started in-process on it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  type V1Pod,
} from '@kubernetes/client-node';
import { createCa as createOperatorCa } from '../../operator/ca/certificates.ts';
import { Operator } from '../../operator/operator.ts';
import { kubeConfigFor } from '../kube/client.ts';
import { KubeTestServer } from '../kube/server.ts';
import { type AgentProcess, eventually } from './agent-process.ts';
import { createCa, issueCertificate, type TestCa } from './certs.ts';
import { RecordingLogger } from './recording-logger.ts';

export const CRD = fileURLToPath(new URL('../../crds/apipolicies.tollgate.dev.yaml', import.meta.url));
export const SYSTEM_NS = 'tollgate-system';

export interface OperatorEnv {
  kube: KubeTestServer;
  kc: KubeConfig;
  core: CoreV1Api;
  custom: CustomObjectsApi;
  ca: TestCa;
  close(): Promise<void>;
}

export async function startOperatorEnv(options: { historyLimit?: number } = {}): Promise<OperatorEnv> {
  const kube = await KubeTestServer.start({ crds: [CRD], ...options });
  const kc = kubeConfigFor(kube.url);
  const core = kc.makeApiClient(CoreV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);
  const ca = await createCa({ commonName: 'tollgate test root' });
  const serving = await issueCertificate(ca, {
    dnsNames: ['tollgate-operator.tollgate-system.svc', 'localhost'],
    ipAddresses: ['127.0.0.1'],
    usages: 'server',
  });
  await core.createNamespace({ body: { metadata: { name: SYSTEM_NS } } });
  await core.createNamespacedSecret({
    namespace: SYSTEM_NS,
    body: {
      metadata: { name: 'tollgate-operator-tls' },
      type: 'kubernetes.io/tls',
      data: {
        'tls.crt': Buffer.from(serving.cert).toString('base64'),
        'tls.key': Buffer.from(serving.key).toString('base64'),
      },
    },
  });
  return { kube, kc, core, custom, ca, close: () => kube.close() };
}

export interface StartedOperator {
  operator: Operator;
  log: RecordingLogger;
  address: string;
  healthPort: number;
}

/**
 * Writes the workload CA Secret (`tollgate-ca`) as cert-manager would: a CA
 * made by the operator's own code, for `trustDomain`. Returns its PEM pair.
 */
export async function createWorkloadCa(
  env: OperatorEnv,
  trustDomain = 'cluster.local',
): Promise<{ cert: string; key: string }> {
  const ca = await createOperatorCa({ commonName: 'tollgate-ca', now: Date.now(), trustDomain });
  const b64 = (t: string) => Buffer.from(t).toString('base64');
  await env.core.createNamespacedSecret({
    namespace: SYSTEM_NS,
    body: {
      metadata: { name: 'tollgate-ca' },
      type: 'kubernetes.io/tls',
      data: { 'tls.crt': b64(ca.cert), 'tls.key': b64(ca.key), 'ca.crt': b64(ca.cert) },
    },
  });
  return ca;
}

/** Starts an operator replica on the environment (short leases and debounces for tests). */
export async function startOperator(
  env: OperatorEnv,
  identity = 'replica-1',
  extra: {
    workloadCertTtlMs?: number;
    trustDomain?: string;
    meshDebounceMs?: number;
    certificateCheckMs?: number;
  } = {},
): Promise<StartedOperator> {
  const log = new RecordingLogger();
  const { meshDebounceMs, certificateCheckMs, ...configExtra } = extra;
  const operator = new Operator({
    kubeConfig: env.kc,
    config: {
      grpcListen: { host: '127.0.0.1', port: 0 },
      healthListen: { host: '127.0.0.1', port: 0 },
      servingSecret: { namespace: SYSTEM_NS, name: 'tollgate-operator-tls' },
      namespace: SYSTEM_NS,
      leaseName: 'tollgate-operator',
      identity,
      leaseDurationMs: 2000,
      renewDeadlineMs: 1500,
      retryPeriodMs: 200,
      ...configExtra,
    },
    log,
    ackFlushMs: 20,
    ...(meshDebounceMs === undefined ? {} : { meshDebounceMs }),
    ...(certificateCheckMs === undefined ? {} : { certificateCheckMs }),
  });
  const { grpcPort, healthPort } = await operator.start();
  return { operator, log, address: `127.0.0.1:${grpcPort}`, healthPort };
}

/** Creates a namespace with a ServiceAccount. */
export async function createNamespace(
  env: OperatorEnv,
  namespace: string,
  serviceAccount: string,
): Promise<void> {
  await env.core.createNamespace({ body: { metadata: { name: namespace } } });
  await env.core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: serviceAccount } } });
}

/** Creates a pod running the Tollgate sidecar (unless `meshed: false`); returns it as stored. */
export async function createPod(
  env: OperatorEnv,
  namespace: string,
  name: string,
  labels: Record<string, string>,
  opts: {
    serviceAccount?: string;
    meshed?: boolean;
    /** The ports its `tollgate-init` captures (as the injector writes them); none: no init container. */
    capturedPorts?: readonly number[];
    /** Its IP, set through the status subresource as the kubelet would. */
    ip?: string;
  } = {},
): Promise<V1Pod> {
  const created = await env.core.createNamespacedPod({
    namespace,
    body: {
      metadata: { name, labels },
      spec: {
        ...(opts.serviceAccount ? { serviceAccountName: opts.serviceAccount } : {}),
        ...(opts.capturedPorts
          ? {
              initContainers: [
                {
                  name: 'tollgate-init',
                  image: 'tollgate:dev',
                  args: ['init', '--inbound-ports', opts.capturedPorts.join(',')],
                },
              ],
            }
          : {}),
        containers: [
          { name: 'app', image: 'example/app:1' },
          ...(opts.meshed === false ? [] : [{ name: 'tollgate-agent', image: 'tollgate:dev' }]),
        ],
      },
    },
  });
  if (opts.ip === undefined) return created;
  return env.core.patchNamespacedPodStatus(
    { namespace, name, body: { status: { phase: 'Running', podIP: opts.ip, podIPs: [{ ip: opts.ip }] } } },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );
}

/** A projected-style token (audience `tollgate`) bound to the pod. */
export async function podToken(
  env: OperatorEnv,
  pod: V1Pod,
  overrides: {
    audiences?: string[];
    expirationSeconds?: number;
    signingKey?: 'server' | 'foreign';
    serviceAccount?: string;
  } = {},
): Promise<string> {
  return env.kube.issueToken({
    namespace: pod.metadata?.namespace ?? '',
    serviceAccount: overrides.serviceAccount ?? pod.spec?.serviceAccountName ?? 'default',
    pod: { name: pod.metadata?.name ?? '', uid: pod.metadata?.uid ?? '' },
    audiences: overrides.audiences ?? ['tollgate'],
    ...(overrides.expirationSeconds === undefined ? {} : { expirationSeconds: overrides.expirationSeconds }),
    ...(overrides.signingKey === undefined ? {} : { signingKey: overrides.signingKey }),
  });
}

/** An ApiPolicy manifest with one public GET route per path. */
export function policyManifest(
  name: string,
  opts: { selector?: Record<string, string>; paths?: string[]; port?: number } = {},
): Record<string, unknown> {
  return {
    apiVersion: 'tollgate.dev/v1alpha1',
    kind: 'ApiPolicy',
    metadata: { name },
    spec: {
      ...(opts.selector ? { selector: { matchLabels: opts.selector } } : {}),
      ...(opts.port === undefined ? {} : { port: opts.port }),
      routes: (opts.paths ?? ['/ok']).map((path, i) => ({
        name: `r${i}`,
        path,
        methods: ['GET'],
        public: true,
      })),
    },
  };
}

/** A kubeconfig file for the test server (plain HTTP on loopback). */
export function writeKubeconfig(env: OperatorEnv, file: string): void {
  writeFileSync(
    file,
    `apiVersion: v1
kind: Config
clusters: [{name: test, cluster: {server: "${env.kube.url}", insecure-skip-tls-verify: true}}]
users: [{name: test, user: {token: tollgate-test-token}}]
contexts: [{name: test, context: {cluster: test, user: test, namespace: default}}]
current-context: test
`,
  );
}

/** A loopback port that was free a moment ago. */
export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as { port: number };
  await new Promise((r) => srv.close(r));
  return port;
}

export interface OperatorProcess {
  proc: ChildProcess;
  output(): string;
  /** SIGKILL, resolved when it exited. */
  kill(): Promise<void>;
}

/** Runs `tollgate operator` as a real process; resolves once /readyz answers 200. */
export async function startOperatorProcess(
  kubeconfig: string,
  grpcPort: number,
  healthPort: number,
  identity = 'replica-1',
): Promise<OperatorProcess> {
  const proc = spawn(
    fileURLToPath(new URL('../../bin/tollgate', import.meta.url)),
    [
      'operator',
      '--kubeconfig',
      kubeconfig,
      '--grpc-listen',
      `127.0.0.1:${grpcPort}`,
      '--health-listen',
      `127.0.0.1:${healthPort}`,
      '--serving-secret',
      `${SYSTEM_NS}/tollgate-operator-tls`,
      '--namespace',
      SYSTEM_NS,
      '--identity',
      identity,
      '--lease-duration',
      '2s',
      '--renew-deadline',
      '1500ms',
      '--retry-period',
      '200ms',
      // The environment's serving Secret comes from the test CA, as cert-manager's would.
      '--manage-certificates',
      'false',
      '--webhook-listen',
      '127.0.0.1:0',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  proc.stdout?.setEncoding('utf8').on('data', (c: string) => {
    out += c;
  });
  proc.stderr?.setEncoding('utf8').on('data', (c: string) => {
    out += c;
  });
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`operator exited ${proc.exitCode}: ${out}`);
    const ready = await fetch(`http://127.0.0.1:${healthPort}/readyz`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ready) break;
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`operator not ready: ${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    proc,
    output: () => out,
    kill: async () => {
      proc.kill('SIGKILL');
      await exited;
    },
  };
}

/** An ApiPolicy condition, as the operator writes it. */
export interface PolicyCondition {
  type: string;
  status: string;
  reason: string;
  message: string;
  observedGeneration: number;
}

/** An ApiPolicy as read back from the API server: what the tests check of it. */
export interface PolicyObject {
  metadata: { generation: number; uid: string } & Record<string, unknown>;
  status?: {
    observedGeneration?: number;
    conditions?: PolicyCondition[];
    workloads?: { selected: number; programmed: number };
    policyHash?: string;
  };
}

/** Creates the ApiPolicy `name` in `namespace` with `spec`. */
export async function createApiPolicy(
  env: OperatorEnv,
  namespace: string,
  name: string,
  spec: Record<string, unknown>,
): Promise<void> {
  await env.custom.createNamespacedCustomObject({
    group: 'tollgate.dev',
    version: 'v1alpha1',
    plural: 'apipolicies',
    namespace,
    body: { apiVersion: 'tollgate.dev/v1alpha1', kind: 'ApiPolicy', metadata: { name }, spec },
  });
}

/**
 * The arguments and environment of `tollgate agent --operator` for `pod`:
 * the operator's CA and the pod's token written into `dir` (the token file
 * named after the pod), a quick reconnect backoff.
 */
export async function operatorAgentLaunch(
  env: OperatorEnv,
  operatorAddress: string,
  pod: V1Pod,
  dir: string,
): Promise<{ args: string[]; options: { env: Record<string, string> } }> {
  const name = pod.metadata?.name ?? '';
  const namespace = pod.metadata?.namespace ?? '';
  const ca = join(dir, 'operator-ca.crt');
  const token = join(dir, `${name}.token`);
  writeFileSync(ca, env.ca.cert);
  writeFileSync(token, await podToken(env, pod));
  return {
    args: [
      '--operator',
      operatorAddress,
      '--operator-ca',
      ca,
      '--operator-server-name',
      'localhost',
      '--token-file',
      token,
      '--operator-backoff-ms',
      '50,400',
    ],
    options: { env: { POD_NAME: name, POD_NAMESPACE: namespace } },
  };
}

/** Resolves once an operator-mode agent holds its first workload certificate and is ready. */
export async function untilWorkloadIdentity(agent: AgentProcess, ms = 10_000): Promise<void> {
  await eventually(
    async () =>
      agent.output().includes('workload certificate issued') &&
      (await fetch(`http://127.0.0.1:${agent.admin}/readyz`)).status === 200,
    ms,
  );
}
