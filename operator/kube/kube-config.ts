/**
 * Where the operator's Kubernetes credentials come from, decided once at
 * start-up: an explicit kubeconfig file, else the pod's service account when
 * running in a cluster, else the default loading rules (`KUBECONFIG`, then
 * `~/.kube/config`). The environment is a parameter so every branch is
 * testable; this is the one operator file that reads it.
 */
import { existsSync, readFileSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import { delimiter, join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';

/** Where a pod's service-account credentials are mounted. */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** Options of {@link loadKubeConfig}. */
export interface LoadKubeConfigOptions {
  /** A kubeconfig file to use; wins over everything else. */
  kubeconfig?: string;
  /** The environment to read. Default `process.env`. */
  env?: Readonly<Record<string, string | undefined>>;
  /** The service-account mount (token, ca.crt, namespace). Default {@link SERVICE_ACCOUNT_DIR}. */
  serviceAccountDir?: string;
}

/** The credentials could not be loaded; `code` is `ERR_KUBE_CONFIG`. */
export class KubeConfigError extends Error {
  readonly code = 'ERR_KUBE_CONFIG';
}

/**
 * Loads the KubeConfig the operator talks to the API server with:
 * 1. `kubeconfig` when given;
 * 2. else, when `KUBERNETES_SERVICE_HOST` is set, the in-cluster config:
 *    `https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT` (port default
 *    443), the mounted CA, the mounted token (re-read as it rotates) and the
 *    mounted namespace as the context's namespace;
 * 3. else the files listed in `KUBECONFIG` (merged, the first one's current
 *    context wins), else `$HOME/.kube/config`.
 * Throws {@link KubeConfigError} when none applies or the result has no
 * current cluster, so a misconfigured operator fails at start-up.
 */
export function loadKubeConfig(options: LoadKubeConfigOptions = {}): KubeConfig {
  const env = options.env ?? process.env;
  if (options.kubeconfig !== undefined) return checked(fromFiles([options.kubeconfig]), options.kubeconfig);
  const host = env.KUBERNETES_SERVICE_HOST;
  if (host !== undefined && host !== '') {
    return checked(inCluster(host, env.KUBERNETES_SERVICE_PORT, options.serviceAccountDir), 'in-cluster');
  }
  const listed = (env.KUBECONFIG ?? '').split(delimiter).filter((file) => file !== '');
  if (listed.length > 0) return checked(fromFiles(listed), listed.join(delimiter));
  const home = env.HOME ?? env.USERPROFILE;
  const file = home === undefined || home === '' ? undefined : join(home, '.kube', 'config');
  if (file !== undefined && existsSync(file)) return checked(fromFiles([file]), file);
  throw new KubeConfigError(
    'no Kubernetes configuration: pass --kubeconfig, set KUBECONFIG, provide ~/.kube/config or run in a cluster',
  );
}

function fromFiles(files: string[]): KubeConfig {
  const [first, ...rest] = files;
  const kc = new KubeConfig();
  if (first === undefined) return kc;
  load(kc, first);
  for (const file of rest) {
    const more = new KubeConfig();
    load(more, file);
    try {
      kc.mergeConfig(more, true);
    } catch (error) {
      throw new KubeConfigError(`cannot merge kubeconfig ${file}: ${messageOf(error)}`, { cause: error });
    }
  }
  return kc;
}

function load(kc: KubeConfig, file: string): void {
  try {
    kc.loadFromFile(file);
  } catch (error) {
    throw new KubeConfigError(`cannot load kubeconfig ${file}: ${messageOf(error)}`, { cause: error });
  }
}

function inCluster(host: string, port: string | undefined, dir = SERVICE_ACCOUNT_DIR): KubeConfig {
  const server = `https://${isIPv6(host) ? `[${host}]` : host}:${port === undefined || port === '' ? '443' : port}`;
  const namespaceFile = join(dir, 'namespace');
  const namespace = existsSync(namespaceFile) ? readFileSync(namespaceFile, 'utf8').trim() : undefined;
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'in-cluster', server, caFile: join(dir, 'ca.crt'), skipTLSVerify: false }],
    users: [
      // The tokenFile provider re-reads the projected token, which the kubelet rotates.
      {
        name: 'service-account',
        authProvider: { name: 'tokenFile', config: { tokenFile: join(dir, 'token') } },
      },
    ],
    contexts: [
      {
        name: 'in-cluster',
        cluster: 'in-cluster',
        user: 'service-account',
        ...(namespace === undefined || namespace === '' ? {} : { namespace }),
      },
    ],
    currentContext: 'in-cluster',
  });
  return kc;
}

function checked(kc: KubeConfig, source: string): KubeConfig {
  const cluster = kc.getCurrentCluster();
  if (cluster === null || cluster.server === '') {
    throw new KubeConfigError(`kubeconfig ${source} has no current context with a cluster server`);
  }
  return kc;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
