/**
 * The baseline: the fairest simple Node proxy. A bare node:http server that
 * forwards every request to `--upstream` over a keep-alive undici Pool
 * (`pool.stream`, the leanest of undici's public APIs for a proxy), streaming
 * both bodies, stripping hop-by-hop headers; no policy at all.
 * Listens on 127.0.0.1, port 0, and prints `{"listen":"HOST:PORT"}`.
 */
import { createServer, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';

const { values } = parseArgs({ options: { upstream: { type: 'string' } } });
if (!values.upstream) {
  process.stderr.write('usage: node bench/baseline-proxy.ts --upstream http://127.0.0.1:PORT\n');
  process.exit(2);
}
const pool = new Pool(values.upstream, { connections: 128, pipelining: 1, keepAliveTimeout: 4_000 });
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
]);

function strip(headers: Record<string, string | string[] | undefined>): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
  return out;
}

const server = createServer((req, res) => {
  const hasBody =
    req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
  // undici's stream(): the response body is written straight into `res`, which undici ends (or
  // destroys on error); no intermediate Readable and no stream.pipeline() (which builds and aborts
  // an AbortController, a DOMException with a stack trace, per request).
  pool
    .stream(
      {
        method: (req.method ?? 'GET') as 'GET',
        path: req.url ?? '/',
        headers: strip(req.headers) as Record<string, string | string[]>,
        body: hasBody ? req : null,
        opaque: res,
      },
      ({ statusCode, headers, opaque }) => {
        const out = opaque as ServerResponse;
        out.writeHead(statusCode, strip(headers));
        return out;
      },
    )
    .catch(() => {
      if (res.headersSent) res.destroy();
      else res.writeHead(502, { 'content-length': 0 }).end();
    });
});
server.keepAliveTimeout = 5_000;
server.listen(0, '127.0.0.1', () => {
  const { address, port } = server.address() as AddressInfo;
  process.stdout.write(`${JSON.stringify({ listen: `${address}:${port}` })}\n`);
});
process.once('SIGTERM', () => {
  server.closeAllConnections();
  server.close(() => {
    pool.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });
});
