/**
 * The injection annotations of a pod, read leniently: a value that cannot be
 * used becomes a warning (returned to the API client in the AdmissionResponse)
 * and the default applies, so a typo never blocks a pod from being created.
 * Pure: no I/O.
 */
import ipaddr from 'ipaddr.js';

/** The pod annotations the injector reads and writes (apipolicy.md § Pod annotations). */
export const ANNOTATIONS = Object.freeze({
  inject: 'tollgate.dev/inject',
  status: 'tollgate.dev/status',
  injectorVersion: 'tollgate.dev/injector-version',
  inboundPorts: 'tollgate.dev/inbound-ports',
  excludeInboundPorts: 'tollgate.dev/exclude-inbound-ports',
  excludeOutboundCidrs: 'tollgate.dev/exclude-outbound-cidrs',
  proxyCpu: 'tollgate.dev/proxy-cpu',
  proxyMemory: 'tollgate.dev/proxy-memory',
  logLevel: 'tollgate.dev/log-level',
});

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** `imagePullPolicy` of a container. */
export const PULL_POLICIES = ['Always', 'IfNotPresent', 'Never'] as const;
export type PullPolicy = (typeof PULL_POLICIES)[number];

/** Container resources as the Pod spec writes them (Kubernetes quantities). */
export interface SidecarResources {
  requests?: { cpu?: string; memory?: string };
  limits?: { cpu?: string; memory?: string };
}

/** What the annotations ask for; `null` where the annotation is absent or unusable. */
export interface AnnotationSettings {
  inboundPorts: number[] | null;
  excludeInboundPorts: number[];
  /**
   * Outbound CIDRs not captured; null: outbound is not captured at all (the
   * default while the outbound listener routes plain HTTP only: capturing
   * TLS, databases or DNS over TCP would break them). Setting the annotation,
   * even to "", opts the pod into outbound capture.
   */
  excludeOutboundCidrs: string[] | null;
  cpu: string | null;
  memory: string | null;
  logLevel: LogLevel | null;
}

function items(text: string): string[] {
  return text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/** `8080, 9090` → [8080, 9090]; entries that are not ports 1–65535 are warned about and dropped. */
export function parsePortList(annotation: string, text: string, warnings: string[]): number[] {
  const ports: number[] = [];
  for (const item of items(text)) {
    const port = /^\d{1,5}$/.test(item) ? Number(item) : Number.NaN;
    if (!(port >= 1 && port <= 65535)) {
      warnings.push(`${annotation}: ${JSON.stringify(item)} is not a port (1-65535); ignored`);
    } else if (!ports.includes(port)) {
      ports.push(port);
    }
  }
  return ports;
}

/** `10.0.0.0/8,fd00::/8` → the valid CIDRs in their normalized form; the others are warned about. */
export function parseCidrList(annotation: string, text: string, warnings: string[]): string[] {
  const cidrs: string[] = [];
  for (const item of items(text)) {
    try {
      const [address, bits] = ipaddr.parseCIDR(item);
      const cidr = `${address.toString()}/${bits}`;
      if (!cidrs.includes(cidr)) cidrs.push(cidr);
    } catch {
      warnings.push(`${annotation}: ${JSON.stringify(item)} is not a CIDR; ignored`);
    }
  }
  return cidrs;
}

// The Kubernetes quantity grammar (as the API server and values.schema.json of the chart read it): an
// unsigned or `+` number, then a binary-SI, decimal-SI or decimal-exponent suffix.
const QUANTITY = /^\+?([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])|[eE]([+-]?[0-9]+))?$/;
const FACTOR: Record<string, number> = {
  '': 1,
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

/** A Kubernetes quantity (`250m`, `0.5`, `128Mi`, `1G`, `1e3`) as a number; null when malformed or zero. */
export function parseQuantity(text: string): number | null {
  const m = QUANTITY.exec(text);
  if (!m) return null;
  const factor = m[3] === undefined ? FACTOR[m[2] ?? ''] : 10 ** Number(m[3]);
  const value = Number(m[1]) * (factor ?? Number.NaN);
  return Number.isFinite(value) && value > 0 ? value : null;
}

function quantity(annotation: string, text: string | undefined, warnings: string[]): string | null {
  if (text === undefined) return null;
  if (parseQuantity(text.trim()) !== null) return text.trim();
  warnings.push(`${annotation}: ${JSON.stringify(text)} is not a Kubernetes quantity; the default applies`);
  return null;
}

function logLevel(text: string | undefined, warnings: string[]): LogLevel | null {
  if (text === undefined) return null;
  const level = LOG_LEVELS.find((l) => l === text.trim());
  if (level) return level;
  warnings.push(
    `${ANNOTATIONS.logLevel}: ${JSON.stringify(text)} is not one of ${LOG_LEVELS.join(', ')}; the default applies`,
  );
  return null;
}

/** Reads every injection annotation; unusable values add a warning and read as absent. */
export function readAnnotations(
  annotations: Readonly<Record<string, string>>,
  warnings: string[],
): AnnotationSettings {
  const inbound = annotations[ANNOTATIONS.inboundPorts];
  let inboundPorts: number[] | null = null;
  if (inbound !== undefined) {
    inboundPorts = parsePortList(ANNOTATIONS.inboundPorts, inbound, warnings);
    if (inboundPorts.length === 0) {
      warnings.push(
        `${ANNOTATIONS.inboundPorts}: no valid port; the containers' declared ports are captured`,
      );
      inboundPorts = null;
    }
  }
  const excludeInbound = annotations[ANNOTATIONS.excludeInboundPorts];
  const excludeOutbound = annotations[ANNOTATIONS.excludeOutboundCidrs];
  return {
    inboundPorts,
    excludeInboundPorts:
      excludeInbound === undefined
        ? []
        : parsePortList(ANNOTATIONS.excludeInboundPorts, excludeInbound, warnings),
    excludeOutboundCidrs:
      excludeOutbound === undefined
        ? null
        : parseCidrList(ANNOTATIONS.excludeOutboundCidrs, excludeOutbound, warnings),
    cpu: quantity(ANNOTATIONS.proxyCpu, annotations[ANNOTATIONS.proxyCpu], warnings),
    memory: quantity(ANNOTATIONS.proxyMemory, annotations[ANNOTATIONS.proxyMemory], warnings),
    logLevel: logLevel(annotations[ANNOTATIONS.logLevel], warnings),
  };
}

/**
 * The sidecar's resources: the defaults, with the annotations' CPU and memory
 * as requests; a default limit below an annotated request is raised to it
 * (the API server rejects a limit under its request).
 */
export function sidecarResources(
  defaults: SidecarResources,
  settings: Pick<AnnotationSettings, 'cpu' | 'memory'>,
): SidecarResources {
  const requests = { ...defaults.requests };
  const limits = { ...defaults.limits };
  for (const kind of ['cpu', 'memory'] as const) {
    const wanted = settings[kind];
    if (wanted === null) continue;
    requests[kind] = wanted;
    const limit = limits[kind];
    if (limit !== undefined && (parseQuantity(limit) ?? 0) < (parseQuantity(wanted) ?? 0))
      limits[kind] = wanted;
  }
  return {
    ...(Object.keys(requests).length > 0 ? { requests } : {}),
    ...(Object.keys(limits).length > 0 ? { limits } : {}),
  };
}
