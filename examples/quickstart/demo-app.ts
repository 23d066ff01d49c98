/**
 * The demo app behind the sidecar in the quick start: a tiny orders API that
 * answers JSON and shows which identity headers the sidecar passed on.
 */
import { createServer, type Server } from 'node:http';

const ORDER = (user: string, id: string) => ({
  id,
  user,
  sku: 'SHOE-42',
  quantity: 1,
  internalCost: 12.5,
  supplier: { name: 'Acme', contact: 'ops@acme.example' },
});

export function createDemoApp(): Server {
  return createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://app');
    const send = (status: number, body: unknown) => {
      const text = `${JSON.stringify(body)}\n`;
      res.writeHead(status, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(text),
      });
      res.end(req.method === 'HEAD' ? undefined : text);
    };
    const seen = { path: url.pathname, userHeader: req.headers['x-user-id'] ?? null };
    const order = /^\/v1\/users\/([^/]+)\/orders\/([^/]+)$/.exec(url.pathname);
    if (order?.[1] && order[2]) return send(200, { ...ORDER(order[1], order[2]), seen });
    const list = /^\/v1\/users\/([^/]+)\/orders$/.exec(url.pathname);
    if (list?.[1] && req.method === 'POST') {
      req.resume();
      return req.on('end', () => send(201, { ...ORDER(list[1] ?? '', '1001'), seen }));
    }
    if (list?.[1]) return send(200, { orders: [ORDER(list[1], '7')], seen });
    if (url.pathname === '/healthz') return send(200, { status: 'ok' });
    return send(200, { message: 'demo app', seen });
  });
}
