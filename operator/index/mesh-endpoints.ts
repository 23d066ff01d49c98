/**
 * The mesh the operator streams to every sidecar: one endpoint per running
 * pod that has a sidecar and captured inbound ports, with its IPs, those
 * ports and the SPIFFE ID its certificate carries
 * (`spiffe://<trust domain>/ns/<namespace>/sa/<service account>`, as the
 * workload signer issues); and one per Service whose every selected pod is
 * such a pod: its cluster IPs, the service ports whose target port all of
 * them capture, and their SPIFFE IDs (kube-proxy picks the pod, any of them
 * may answer). Ordered, and versioned by content hash, so an unchanged mesh
 * is never sent twice. Pure.
 */
import { contentHash } from '../../policy/compile/hash.ts';
import type { Mesh, MeshEndpointMessage } from '../../proto/policy-service.ts';
import type { PodInfo, ServiceInfo } from './policy-index.ts';

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

/** True when `pod` sends `port` to its agent. */
function captures(pod: PodInfo, port: number): boolean {
  const capture = pod.capture;
  if (!capture) return false;
  return capture.ports === '*' ? !capture.excluded.includes(port) : capture.ports.includes(port);
}

/**
 * A Service's endpoint, or null when it is not meshed: no selector or cluster
 * IP, no running pod selected, one selected pod not meshed, or no port whose
 * target every selected pod captures.
 */
export function meshEndpointOfService(
  service: ServiceInfo,
  podsOfNamespace: readonly PodInfo[],
  trustDomain: string,
): MeshEndpointMessage | null {
  const selector = service.selector;
  if (selector === null || service.clusterIPs.length === 0) return null;
  const selected = podsOfNamespace.filter(
    (p) => !p.terminating && Object.entries(selector).every(([k, v]) => p.labels[k] === v),
  );
  if (selected.length === 0 || selected.some((p) => meshEndpointOfPod(p, trustDomain) === null)) return null;
  const ports = service.ports
    .filter((sp) => sp.protocol === 'TCP')
    .filter((sp) =>
      selected.every((p) => {
        const target = typeof sp.targetPort === 'number' ? sp.targetPort : p.namedPorts[sp.targetPort];
        return target !== undefined && captures(p, target);
      }),
    )
    .map((sp) => sp.port);
  if (ports.length === 0) return null;
  return {
    addresses: [...service.clusterIPs],
    ports: [...new Set(ports)].sort((a, b) => a - b),
    excludedPorts: [],
    identities: [...new Set(selected.map((p) => spiffeIdOfPod(trustDomain, p)))].sort(),
  };
}

export function meshOf(pods: Iterable<PodInfo>, services: Iterable<ServiceInfo>, trustDomain: string): Mesh {
  const keyed: [string, MeshEndpointMessage][] = [];
  const byNamespace = new Map<string, PodInfo[]>();
  for (const pod of pods) {
    const endpoint = meshEndpointOfPod(pod, trustDomain);
    if (endpoint) keyed.push([`pod/${pod.namespace}/${pod.name}`, endpoint]);
    const list = byNamespace.get(pod.namespace);
    if (list) list.push(pod);
    else byNamespace.set(pod.namespace, [pod]);
  }
  for (const service of services) {
    const endpoint = meshEndpointOfService(service, byNamespace.get(service.namespace) ?? [], trustDomain);
    if (endpoint) keyed.push([`service/${service.namespace}/${service.name}`, endpoint]);
  }
  keyed.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const endpoints = keyed.map(([, e]) => e);
  return { version: contentHash(endpoints), endpoints };
}
