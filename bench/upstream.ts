/**
 * The bench's upstream app: a node:http server answering every request with
 * the same small JSON body (keep-alive). It echoes the `x-user-id` request
 * header as `x-seen-user-id` so the bench can check that Tollgate injected the
 * claim header. Listens on 127.0.0.1, port 0, and prints `{"listen":"HOST:PORT"}`.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

const BODY = Buffer.from(JSON.stringify({ id: '7', user: 'bench-user', status: 'shipped', total: 42.5 }));

const server = createServer((req, res) => {
  const headers: Record<string, string | number> = {
    'content-type': 'application/json',
    'content-length': BODY.length,
  };
  const user = req.headers['x-user-id'];
  if (typeof user === 'string') headers['x-seen-user-id'] = user;
  // A request body, if any, is drained before answering.
  req.resume();
  res.writeHead(200, headers);
  res.end(BODY);
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
