/**
 * The meshed destinations: the addresses and ports where a Tollgate agent
 * answers inbound, and the SPIFFE IDs it may present there. The outbound
 * proxy originates mTLS to these (and verifies the identity) and passes every
 * other destination through in plaintext. Filled from the operator's policy
 * stream (`Mesh`) or, standalone, from a `--mesh` file:
 *
 *     endpoints:
 *       - addresses: [10.0.0.2]
 *         ports: [8080]             # omitted or []: every port but excludedPorts
 *         excludedPorts: [9090]
 *         identities: [spiffe://cluster.local/ns/shop/sa/orders]
 *
 * Parsing is pure; a document with any problem is refused whole.
 */
import ipaddr from 'ipaddr.js';
import { parse as parseYaml } from 'yaml';

export interface MeshEndpoint {
  /** Pod IPs (IPv4 or IPv6). */
  addresses: readonly string[];
  /** The captured inbound ports; empty: every port but `excludedPorts`. */
  ports: readonly number[];
  excludedPorts: readonly number[];
  /** The SPIFFE IDs the destination may present (any one of them). */
  identities: readonly string[];
}

const SPIFFE_ID = /^spiffe:\/\/[a-z0-9._-]+(\/[A-Za-z0-9._~!$&'()+,=:@%-]+)*$/;

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function list(v: unknown, at: string, problems: string[]): unknown[] {
  if (v === undefined || v === null) return [];
  if (Array.isArray(v)) return v;
  problems.push(`${at}: must be a list`);
  return [];
}

function portsOf(v: unknown, at: string, problems: string[]): number[] {
  return list(v, at, problems).flatMap((p, i) => {
    if (typeof p === 'number' && Number.isInteger(p) && p >= 1 && p <= 65535) return [p];
    problems.push(`${at}[${i}]: must be a port (1-65535)`);
    return [];
  });
}

/** One endpoint from plain data; its problems are pushed with `at` as the path. */
export function meshEndpointOf(v: unknown, at: string, problems: string[]): MeshEndpoint | null {
  if (!isObj(v)) {
    problems.push(`${at}: must be a mapping`);
    return null;
  }
  const before = problems.length;
  for (const key of Object.keys(v))
    if (!['addresses', 'ports', 'excludedPorts', 'identities'].includes(key))
      problems.push(`${at}.${key}: unknown field`);
  const rawAddresses = list(v.addresses, `${at}.addresses`, problems);
  const addresses = rawAddresses.flatMap((a, i) => {
    if (typeof a === 'string' && ipaddr.isValid(a)) return [ipaddr.process(a).toString()];
    problems.push(`${at}.addresses[${i}]: must be an IP address`);
    return [];
  });
  if (rawAddresses.length === 0 && Array.isArray(v.addresses ?? []))
    problems.push(`${at}.addresses: at least one address is required`);
  const rawIdentities = list(v.identities, `${at}.identities`, problems);
  const identities = rawIdentities.flatMap((id, i) => {
    if (typeof id === 'string' && SPIFFE_ID.test(id)) return [id];
    problems.push(`${at}.identities[${i}]: must be a SPIFFE ID (spiffe://trust-domain/path)`);
    return [];
  });
  if (rawIdentities.length === 0 && Array.isArray(v.identities ?? []))
    problems.push(`${at}.identities: at least one SPIFFE ID is required`);
  const ports = portsOf(v.ports, `${at}.ports`, problems);
  const excludedPorts = portsOf(v.excludedPorts, `${at}.excludedPorts`, problems);
  if (problems.length > before) return null;
  return { addresses, ports, excludedPorts, identities };
}

/** A `--mesh` document (YAML or JSON); throws an Error listing every problem. */
export function parseMeshDocument(text: string): MeshEndpoint[] {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new Error(`not YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  const problems: string[] = [];
  if (!isObj(doc)) throw new Error('must be a mapping with `endpoints`');
  for (const key of Object.keys(doc)) if (key !== 'endpoints') problems.push(`${key}: unknown field`);
  const endpoints = meshEndpointsOf(list(doc.endpoints, 'endpoints', problems), problems);
  if (problems.length > 0) throw new Error(problems.join('; '));
  return endpoints;
}

/** The endpoints of a list (a `--mesh` file's, or the operator's Mesh message); problems pushed. */
export function meshEndpointsOf(items: readonly unknown[], problems: string[]): MeshEndpoint[] {
  return items
    .map((e, i) => meshEndpointOf(e, `endpoints[${i}]`, problems))
    .filter((e): e is MeshEndpoint => e !== null);
}

interface Entry {
  ports: ReadonlySet<number>;
  excluded: ReadonlySet<number>;
  identities: readonly string[];
}

/** Addresses → meshed endpoints; replaced whole on every update. */
export class MeshDirectory {
  #byAddress = new Map<string, Entry[]>();
  #version = '';
  #size = 0;

  /** Replaces every endpoint (`version` names the set, for logs and /config). */
  replace(endpoints: readonly MeshEndpoint[], version = ''): void {
    const next = new Map<string, Entry[]>();
    for (const e of endpoints) {
      const entry: Entry = {
        ports: new Set(e.ports),
        excluded: new Set(e.excludedPorts),
        identities: e.identities,
      };
      for (const a of e.addresses) {
        const key = canonical(a);
        next.set(key, [...(next.get(key) ?? []), entry]);
      }
    }
    this.#byAddress = next;
    this.#version = version;
    this.#size = endpoints.length;
  }

  get version(): string {
    return this.#version;
  }

  /** How many endpoints it holds. */
  get size(): number {
    return this.#size;
  }

  /** The identities the agent at `address:port` may present; null when it is not meshed. */
  lookup(address: string, port: number): readonly string[] | null {
    const entries = this.#byAddress.get(canonical(address));
    if (!entries) return null;
    for (const e of entries) {
      if (e.excluded.has(port)) continue;
      if (e.ports.size === 0 || e.ports.has(port)) return e.identities;
    }
    return null;
  }
}

function canonical(address: string): string {
  return ipaddr.isValid(address) ? ipaddr.process(address).toString() : address;
}
