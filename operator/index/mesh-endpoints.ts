/**
 * The mesh the operator streams to every sidecar: one endpoint per running
 * pod that has a sidecar and captured inbound ports, with its IPs, those
 * ports and the SPIFFE ID its certificate carries
 * (`spiffe://<trust domain>/ns/<namespace>/sa/<service account>`, as the
 * workload signer issues). Ordered, and versioned by content hash, so an
 * unchanged mesh is never sent twice. Pure.
 */
import { contentHash } from '../../policy/compile/hash.ts';
import type { Mesh, MeshEndpointMessage } from '../../proto/policy-service.ts';
import type { PodInfo } from './policy-index.ts';

export function spiffeIdOfPod(
  trustDomain: string,
  pod: Pick<PodInfo, 'namespace' | 'serviceAccount'>,
): string {
  return `spiffe://${trustDomain}/ns/${pod.namespace}/sa/${pod.serviceAccount}`;
}

/** The endpoint of a pod, or null when it is not (or no longer) a meshed destination. */
export function meshEndpointOfPod(pod: PodInfo, trustDomain: string): MeshEndpointMessage | null {
  if (!pod.meshed || pod.terminating || pod.ips.length === 0 || pod.capture === null) return null;
  const { ports, excluded } = pod.capture;
  return {
    addresses: [...pod.ips],
    ports: ports === '*' ? [] : [...ports],
    excludedPorts: ports === '*' ? [...excluded] : [],
    identities: [spiffeIdOfPod(trustDomain, pod)],
  };
}

export function meshOf(pods: Iterable<PodInfo>, trustDomain: string): Mesh {
  const keyed: [string, MeshEndpointMessage][] = [];
  for (const pod of pods) {
    const endpoint = meshEndpointOfPod(pod, trustDomain);
    if (endpoint) keyed.push([`${pod.namespace}/${pod.name}`, endpoint]);
  }
  keyed.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const endpoints = keyed.map(([, e]) => e);
  return { version: contentHash(endpoints), endpoints };
}
