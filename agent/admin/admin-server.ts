/**
 * The admin port (default 127.0.0.1:15020): /healthz, /readyz (200 only once a
 * policy is loaded), /metrics (Prometheus text), /config (what is enforced:
 * bundle version, policies, routes, providers — never keys or tokens) and
 * /inventory (the API inventory, JSON: agent/inventory/inventory.ts).
 */
import { createServer, type Server } from 'node:http';
import type { PolicyEngine } from '../../policy/engine/engine.ts';
import type { Metrics } from '../telemetry/metrics.ts';

export interface AdminOptions {
  engine: () => PolicyEngine | null;
  metrics: Metrics;
  /** The API inventory snapshot served on /inventory (404 when absent). */
  inventory?: () => unknown;
}

/** What /config shows: the enforced configuration without secrets. */
export function describeEngine(engine: PolicyEngine | null): unknown {
  if (!engine) return { loaded: false };
  return {
    loaded: true,
    version: engine.bundle.version,
    policies: engine.bundle.policies.map((p) => ({
      name: `${p.ref.namespace}/${p.ref.name}`,
      hash: p.hash,
      port: p.port,
      mode: p.mode,
      mtlsMode: p.mtlsMode,
      unmatched: p.unmatched,
      providers: p.jwt.map((j) => ({
        name: j.name,
        issuer: j.issuer,
        jwksUri: j.jwksUri === null ? null : redactUrl(j.jwksUri),
        inlineKeys: j.jwks ? j.jwks.keys.length : 0,
        audiences: j.audiences,
        algorithms: j.algorithms,
      })),
      rateLimits: p.rateLimits.map((l) => ({
        name: l.name,
        key: l.key.kind,
        limit: l.limit,
        periodMs: l.periodMs,
      })),
      routes: p.routes.map((r) => ({
        name: r.name,
        methods: r.methods,
        path: r.path,
        access: r.access.kind,
      })),
    })),
  };
}

/** A URL without credentials or query (either may carry secrets). */
function redactUrl(text: string): string {
  try {
    const url = new URL(text);
    url.username = '';
    url.password = '';
    url.search = '';
    return url.href;
  } catch {
    return '(invalid)';
  }
}

export function createAdminServer(options: AdminOptions): Server {
  return createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const send = (status: number, type: string, body: string, extra: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', ...extra });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return send(405, 'text/plain', 'method not allowed\n', { allow: 'GET, HEAD' });
    }
    switch (path) {
      case '/healthz':
        return send(200, 'text/plain', 'ok\n');
      case '/readyz':
        return options.engine()
          ? send(200, 'text/plain', 'ready\n')
          : send(503, 'text/plain', 'no policy loaded\n');
      case '/metrics':
        return send(200, 'text/plain; version=0.0.4; charset=utf-8', options.metrics.render());
      case '/config':
        return send(
          200,
          'application/json',
          `${JSON.stringify(describeEngine(options.engine()), null, 2)}\n`,
        );
      case '/inventory':
        return options.inventory
          ? send(200, 'application/json', `${JSON.stringify(options.inventory(), null, 2)}\n`)
          : send(404, 'text/plain', 'not found\n');
      default:
        return send(404, 'text/plain', 'not found\n');
    }
  });
}
