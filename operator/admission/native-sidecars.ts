/**
 * Whether the cluster runs native sidecars (init containers with
 * `restartPolicy: Always`): on by default from Kubernetes 1.29
 * (SidecarContainers beta), read from the API server's `/version`.
 */
import { type KubeConfig, VersionApi } from '@kubernetes/client-node';
import { errorFields, type KubeLogger } from '../kube/log.ts';

/** True for Kubernetes ≥ 1.29; `minor` may carry a vendor suffix (`29+` on EKS and GKE). */
export function supportsNativeSidecars(version: { major?: string; minor?: string }): boolean {
  const major = Number.parseInt(version.major ?? '', 10);
  const minor = Number.parseInt(version.minor ?? '', 10);
  if (!Number.isInteger(major) || !Number.isInteger(minor)) return false;
  return major > 1 || (major === 1 && minor >= 29);
}

/** Resolves `auto` from the API server's version; an unreadable version means regular containers. */
export async function resolveNativeSidecars(
  setting: boolean | 'auto',
  kubeConfig: KubeConfig,
  log: KubeLogger,
): Promise<boolean> {
  if (setting !== 'auto') return setting;
  try {
    const version = await kubeConfig.makeApiClient(VersionApi).getCode();
    const native = supportsNativeSidecars(version);
    log.info({ kubernetes: version.gitVersion, nativeSidecars: native }, 'sidecar mode chosen');
    return native;
  } catch (error) {
    log.warn({ ...errorFields(error) }, 'API server version unknown: injecting regular sidecar containers');
    return false;
  }
}
