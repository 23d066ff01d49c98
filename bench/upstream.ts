/**
 * The bench's upstream app: a node:http server (keep-alive) with three answers.
 *
 * - `POST` (the body-schema case): reads the whole request body and answers
 *   201 with a small JSON body and `x-seen-body-bytes` (the bytes it read), so
 *   the bench can check that the body arrived whole through every proxy.
 * - `GET …/details` (the omitFields case): a ~1 KB JSON order with
 *   `internalCost`, `supplier.contact` and `cost` in each of `items`, the
 *   fields the bench policy's omitFields route removes.
 * - any other request: the same small JSON body (the GET case).
 *
 * It echoes the `x-user-id` request header as `x-seen-user-id` so the bench
 * can check that Tollgate injected the claim header. Listens on 127.0.0.1,
 * port 0, and prints `{"listen":"HOST:PORT"}`.
 */
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

const BODY = Buffer.from(JSON.stringify({ id: '7', user: 'bench-user', status: 'shipped', total: 42.5 }));
const CREATED = Buffer.from(JSON.stringify({ id: '8', user: 'bench-user', status: 'created' }));

/** The omitFields case's answer: about 1 KB, the omitted fields at the top, nested and in an array. */
const DETAILS = Buffer.from(
  JSON.stringify({
    id: '7',
    user: 'bench-user',
    status: 'shipped',
    currency: 'EUR',
    total: 142.5,
    internalCost: 97.12,
    createdAt: '2026-11-02T09:14:55.120Z',
    updatedAt: '2026-11-03T17:40:02.981Z',
    supplier: {
      id: 'sup-4411',
      name: 'Northwind Components GmbH',
      contact: { name: 'Jana Novak', email: 'jana.novak@northwind.example', phone: '+49 30 5550 1234' },
      rating: 4.6,
    },
    shipping: {
      carrier: 'DHL',
      tracking: 'JD014600006251234567',
      address: { name: 'Bench User', line1: '12 Example Street', city: 'Berlin', postalCode: '10115' },
    },
    items: Array.from({ length: 6 }, (_, i) => ({
      sku: `SKU-${1000 + i}`,
      name: `Widget model ${String.fromCharCode(65 + i)}`,
      quantity: i + 1,
      price: 9.5 + i,
      cost: 6.25 + i,
    })),
    tags: ['priority', 'gift', 'eu'],
  }),
);

function answer(
  res: ServerResponse,
  status: number,
  body: Buffer,
  user: string | string[] | undefined,
  extra?: Record<string, string | number>,
): void {
  const headers: Record<string, string | number> = {
    'content-type': 'application/json',
    'content-length': body.length,
    ...extra,
  };
  if (typeof user === 'string') headers['x-seen-user-id'] = user;
  res.writeHead(status, headers);
  res.end(body);
}

const server = createServer((req, res) => {
  const user = req.headers['x-user-id'];
  if (req.method === 'POST') {
    // Read the body like an app would before acting on it (not parsed: the cost is the same for
    // every target, and the bench measures the proxies).
    let bytes = 0;
    req.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
    });
    req.on('end', () => answer(res, 201, CREATED, user, { 'x-seen-body-bytes': bytes }));
    return;
  }
  // A request body, if any, is drained before answering.
  req.resume();
  answer(res, 200, req.url?.endsWith('/details') ? DETAILS : BODY, user);
});
server.keepAliveTimeout = 65_000;
server.listen(0, '127.0.0.1', () => {
  const { address, port } = server.address() as AddressInfo;
  process.stdout.write(`${JSON.stringify({ listen: `${address}:${port}` })}\n`);
});
process.once('SIGTERM', () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
