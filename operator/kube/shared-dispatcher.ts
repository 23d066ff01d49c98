/**
 * Connection reuse for @kubernetes/client-node: its KubeConfig builds a new
 * undici Agent for every request (`createDispatcher`, called from
 * `applySecurityAuthentication`), so every API call opens a new connection (a
 * new TLS handshake on a real cluster) and leaves it idling until the keep-alive
 * timeout: at scale, thousands of sockets and their buffers. This patches a
 * KubeConfig instance to hand out one Agent per distinct cluster and TLS
 * settings instead (a rotated client certificate or CA makes a new one; the
 * replaced one is closed once idle).
 */
import { createHash } from 'node:crypto';
import type { KubeConfig } from '@kubernetes/client-node';

type CreateDispatcher = (cluster: unknown, agentOptions: Record<string, unknown>) => unknown;

interface Closable {
  close?: () => Promise<void>;
}

const MAX_AGENTS = 4;

function digest(value: unknown): string {
  if (value === undefined || value === null) return '';
  const text = Buffer.isBuffer(value)
    ? value
    : Buffer.from(typeof value === 'string' ? value : JSON.stringify(value));
  return createHash('sha256').update(text).digest('hex');
}

/** Makes `kc` reuse dispatchers across requests; returns it. */
export function shareDispatchers(kc: KubeConfig): KubeConfig {
  const target = kc as unknown as { createDispatcher?: CreateDispatcher };
  const create = target.createDispatcher;
  if (typeof create !== 'function') return kc; // a client-node without it: nothing to fix
  const agents = new Map<string, unknown>();
  target.createDispatcher = function shared(cluster, agentOptions) {
    const c = (cluster ?? {}) as Record<string, unknown>;
    const o = agentOptions ?? {};
    const key = [
      c.server,
      c.proxyUrl,
      digest(o.ca),
      digest(o.cert),
      digest(o.key),
      digest(o.pfx),
      String(o.rejectUnauthorized),
      String(o.servername),
    ].join('|');
    const known = agents.get(key);
    if (known !== undefined) return known;
    const created = create.call(this, cluster, agentOptions);
    agents.set(key, created);
    if (agents.size > MAX_AGENTS) {
      const [oldest, agent] = agents.entries().next().value as [string, Closable];
      agents.delete(oldest);
      void agent?.close?.().catch(() => {});
    }
    return created;
  };
  return kc;
}
