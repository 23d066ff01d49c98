/**
 * The bench's OTLP sink: what a collector on another node would be, reduced
 * to accepting exports. Answers every `POST /v1/{traces,metrics,logs}` 200
 * (an empty protobuf ExportServiceResponse) once the body is read, counts
 * requests and bytes per signal (`GET /stats`), and decodes nothing. Listens
 * on 127.0.0.1 port 0 and prints `{"listen":"HOST:PORT"}`.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

const stats: Record<string, { requests: number; bytes: number }> = {
  traces: { requests: 0, bytes: 0 },
  metrics: { requests: 0, bytes: 0 },
  logs: { requests: 0, bytes: 0 },
};

const server = createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/stats') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(stats));
    return;
  }
  const signal = /^\/v1\/(traces|metrics|logs)$/.exec(req.url ?? '')?.[1];
  const entry = signal ? stats[signal] : undefined;
  let bytes = 0;
  req.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
  });
  req.on('end', () => {
    if (!entry || req.method !== 'POST') {
      res.writeHead(404).end();
      return;
    }
    entry.requests++;
    entry.bytes += bytes;
    res.writeHead(200, { 'content-type': 'application/x-protobuf', 'content-length': '0' });
    res.end();
  });
});
server.keepAliveTimeout = 30_000;
server.listen(0, '127.0.0.1', () => {
  const { address, port } = server.address() as AddressInfo;
  process.stdout.write(`${JSON.stringify({ listen: `${address}:${port}` })}\n`);
});
for (const signal of ['SIGTERM', 'SIGINT'] as const)
  process.once(signal, () => server.close(() => process.exit(0)));
