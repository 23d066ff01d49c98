/**
 * Response minimization against the real `tollgate agent` process and a real
 * upstream answering JSON: `response.omitFields` removes nested and in-array
 * fields from plain, gzip, br and deflate bodies (Content-Encoding kept,
 * Content-Length recomputed, ETag dropped); non-JSON, oversized, unparsable
 * and unknown-coding bodies, Audit mode, HEAD, and routes without omitFields
 * pass byte for byte (the latter still streamed); the results are counted.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, request, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  brotliCompressSync,
  brotliDecompressSync,
  deflateSync,
  gunzipSync,
  gzipSync,
  inflateSync,
} from 'node:zlib';
import { send, startAgent } from '../support/agent-process.ts';

function policyYaml(mode: 'Enforce' | 'Audit'): string {
  return `apiVersion: tollgate.dev/v1alpha1
kind: ApiPolicy
metadata: {name: shop, namespace: shop}
spec:
  mode: ${mode}
  routes:
    - name: products
      methods: [GET, HEAD]
      path: /v1/products/{kind}
      public: true
      response:
        omitFields: [internalCost, supplier.contact, items.cost, "*.secret"]
    - name: stream
      methods: [GET]
      path: /v1/stream
      public: true
`;
}

const DOC = {
  id: 'p-1',
  internalCost: 12.5,
  price: 0,
  supplier: { name: 'acme', contact: { email: 'sales@acme.test' } },
  items: [
    { sku: 'A', cost: 1 },
    { sku: 'B', cost: 2, secret: 'x', extra: { secret: 'kept: three levels down', keep: true } },
  ],
  meta: { secret: 's', version: 3 },
};
/** The upstream's exact text (keeps the big number's digits). */
const DOC_TEXT = JSON.stringify(DOC).replace('"price":0', '"price":12345678901234567890');
const FILTERED = {
  id: 'p-1',
  supplier: { name: 'acme' },
  items: [{ sku: 'A' }, { sku: 'B', extra: { secret: 'kept: three levels down', keep: true } }],
  meta: { version: 3 },
};

const BIG_TEXT = JSON.stringify({
  internalCost: 1,
  rows: Array.from({ length: 12_000 }, (_, i) => ({ i, cost: i, pad: 'x'.repeat(90) })),
});

interface Bytes {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

function get(
  port: number,
  path: string,
  headers: Record<string, string> = {},
  method = 'GET',
): Promise<Bytes> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

/** The upstream app: /v1/products/<kind> answers DOC in many forms; /v1/stream streams in two halves. */
function startApp(): Promise<{ server: Server; port: number; streamGate: { release: () => void } }> {
  const streamGate = { release: () => {} };
  const json = (res: ServerResponse, status: number, body: Buffer, headers: Record<string, string> = {}) => {
    res.writeHead(status, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': String(body.length),
      etag: '"v1"',
      'x-app': 'yes',
      ...headers,
    });
    res.end(body);
  };
  const server = createServer((req, res) => {
    const kind = (req.url ?? '').split('/')[3] ?? '';
    const text = Buffer.from(DOC_TEXT);
    switch (kind) {
      case 'plain':
        return json(res, 200, text);
      case 'gzip':
        return json(res, 200, gzipSync(text), { 'content-encoding': 'gzip', vary: 'accept-encoding' });
      case 'br':
        return json(res, 200, brotliCompressSync(text), { 'content-encoding': 'br' });
      case 'deflate':
        return json(res, 200, deflateSync(text), { 'content-encoding': 'deflate' });
      case 'zstd':
        return json(res, 200, text, { 'content-encoding': 'zstd' });
      case 'vendor':
        return json(res, 404, text, { 'content-type': 'application/problem+json' });
      case 'text':
        return json(res, 200, text, { 'content-type': 'text/plain' });
      case 'big':
        return json(res, 200, Buffer.from(BIG_TEXT));
      case 'broken':
        return json(res, 200, Buffer.from('{"internalCost": 1, '));
      case 'clean':
        return json(res, 200, Buffer.from('{ "id" : 1 }'));
      case 'chunked': {
        res.writeHead(200, { 'content-type': 'application/json', 'x-app': 'yes' });
        res.write(text.subarray(0, 10));
        setTimeout(() => res.end(text.subarray(10)), 20);
        return;
      }
      case 'range':
        return json(
          res,
          200,
          Buffer.from(JSON.stringify({ range: req.headers.range ?? null, internalCost: 1 })),
        );
      default:
        if (req.url === '/v1/stream') {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.write('[{"secret":1}');
          streamGate.release = () => res.end(',{"secret":2}]');
          return;
        }
        res.writeHead(404);
        res.end();
    }
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({ server, port: (server.address() as AddressInfo).port, streamGate }),
    ),
  );
}

describe('tollgate agent: response minimization', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-response-'));
  let app: Awaited<ReturnType<typeof startApp>>;
  let agent: Awaited<ReturnType<typeof startAgent>>;
  let audit: Awaited<ReturnType<typeof startAgent>>;

  before(async () => {
    app = await startApp();
    writeFileSync(join(dir, 'enforce.yaml'), policyYaml('Enforce'));
    writeFileSync(join(dir, 'audit.yaml'), policyYaml('Audit'));
    agent = await startAgent(join(dir, 'enforce.yaml'), app.port);
    audit = await startAgent(join(dir, 'audit.yaml'), app.port);
  });

  after(() => {
    agent?.proc.kill();
    audit?.proc.kill();
    app?.server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const assertFiltered = (r: Bytes, body: Buffer) => {
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-length'], String(r.body.length));
    assert.equal(r.headers.etag, undefined);
    assert.equal(r.headers['x-app'], 'yes');
    assert.ok(r.headers['x-request-id']);
    const text = body.toString('utf8');
    assert.deepEqual(JSON.parse(text), { ...FILTERED, price: JSON.parse(text).price });
    // The number JavaScript cannot hold keeps its digits.
    assert.match(text, /"price":12345678901234567890[,}]/);
  };

  test('gzip JSON: fields removed from objects and arrays, re-compressed', async () => {
    const r = await get(agent.port, '/v1/products/gzip', { 'accept-encoding': 'gzip' });
    assert.equal(r.headers['content-encoding'], 'gzip');
    assert.equal(r.headers.vary, 'accept-encoding');
    assertFiltered(r, gunzipSync(r.body));
  });

  test('plain JSON: filtered, Content-Length recomputed, ETag dropped', async () => {
    const r = await get(agent.port, '/v1/products/plain');
    assert.equal(r.headers['content-encoding'], undefined);
    assert.equal(r.headers['content-type'], 'application/json; charset=utf-8');
    assertFiltered(r, r.body);
  });

  test('br and deflate JSON are filtered and re-encoded the same way', async () => {
    const br = await get(agent.port, '/v1/products/br', { 'accept-encoding': 'br' });
    assert.equal(br.headers['content-encoding'], 'br');
    assertFiltered(br, brotliDecompressSync(br.body));
    const deflate = await get(agent.port, '/v1/products/deflate', { 'accept-encoding': 'deflate' });
    assert.equal(deflate.headers['content-encoding'], 'deflate');
    assertFiltered(deflate, inflateSync(deflate.body));
  });

  test('a chunked upstream body is buffered and sent with a Content-Length', async () => {
    const r = await get(agent.port, '/v1/products/chunked');
    assert.equal(r.headers['transfer-encoding'], undefined);
    assertFiltered(r, r.body);
  });

  test('+json error bodies are filtered too', async () => {
    const r = await get(agent.port, '/v1/products/vendor');
    assert.equal(r.status, 404);
    assert.equal(r.headers['content-type'], 'application/problem+json');
    assert.deepEqual(Object.keys(JSON.parse(r.body.toString()) as object), [
      'id',
      'price',
      'supplier',
      'items',
      'meta',
    ]);
    assert.equal(r.body.includes('internalCost'), false);
  });

  test('untouched: non-JSON, unknown coding, oversized, unparsable, nothing to remove', async () => {
    const text = await get(agent.port, '/v1/products/text');
    assert.equal(text.body.toString(), DOC_TEXT);
    assert.equal(text.headers.etag, '"v1"');
    const zstd = await get(agent.port, '/v1/products/zstd');
    assert.equal(zstd.body.toString(), DOC_TEXT);
    assert.equal(zstd.headers['content-encoding'], 'zstd');
    const big = await get(agent.port, '/v1/products/big');
    assert.ok(BIG_TEXT.length > 1024 * 1024);
    assert.equal(big.body.toString(), BIG_TEXT);
    assert.equal(big.headers['content-length'], String(BIG_TEXT.length));
    const broken = await get(agent.port, '/v1/products/broken');
    assert.equal(broken.status, 200);
    assert.equal(broken.body.toString(), '{"internalCost": 1, ');
    const clean = await get(agent.port, '/v1/products/clean');
    assert.equal(clean.body.toString(), '{ "id" : 1 }');
    assert.equal(clean.headers.etag, '"v1"');
  });

  test('HEAD passes through; Range is not forwarded on a filtered route', async () => {
    const head = await get(agent.port, '/v1/products/plain', {}, 'HEAD');
    assert.equal(head.status, 200);
    assert.equal(head.body.length, 0);
    assert.equal(head.headers['content-length'], String(DOC_TEXT.length));
    const range = await get(agent.port, '/v1/products/range', { range: 'bytes=0-10' });
    assert.deepEqual(JSON.parse(range.body.toString()), { range: null });
  });

  test('Audit mode: the body passes unchanged', async () => {
    const r = await get(audit.port, '/v1/products/gzip', { 'accept-encoding': 'gzip' });
    assert.equal(gunzipSync(r.body).toString(), DOC_TEXT);
    assert.equal(r.headers.etag, '"v1"');
    const plain = await get(audit.port, '/v1/products/plain');
    assert.equal(plain.body.toString(), DOC_TEXT);
  });

  test('a route without omitFields streams byte for byte', async () => {
    const first = await new Promise<{ chunk: string; rest: Promise<string> }>((resolve, reject) => {
      const req = request(
        { host: '127.0.0.1', port: agent.port, path: '/v1/stream', agent: false },
        (res) => {
          res.setEncoding('utf8');
          let text = '';
          let resolveRest: (s: string) => void = () => {};
          const rest = new Promise<string>((r) => {
            resolveRest = r;
          });
          res.once('data', (c: string) => {
            text += c;
            resolve({ chunk: c, rest });
            res.on('data', (more: string) => {
              text += more;
            });
          });
          res.on('end', () => resolveRest(text));
        },
      );
      req.on('error', reject);
      req.end();
    });
    // The first half arrived while the upstream had not finished.
    assert.equal(first.chunk, '[{"secret":1}');
    app.streamGate.release();
    assert.equal(await first.rest, '[{"secret":1},{"secret":2}]');
  });

  test('results are counted per route', async () => {
    const metrics = (await send(agent.admin, '/metrics')).body;
    const count = (result: string) =>
      Number(
        new RegExp(`tollgate_response_filter_total\\{[^}]*result="${result}"[^}]*\\} (\\d+)`).exec(
          metrics,
        )?.[1] ?? 0,
      );
    assert.ok(count('filtered') >= 7, metrics);
    assert.ok(count('passthrough_type') >= 1);
    assert.ok(count('passthrough_encoding') >= 1);
    assert.ok(count('passthrough_size') >= 1);
    assert.ok(count('passthrough_error') >= 1);
    assert.ok(count('unchanged') >= 1);
    assert.match(metrics, /tollgate_response_filter_total\{route="products",result="filtered"\}/);
    assert.doesNotMatch(metrics, /tollgate_response_filter_total\{route="stream"/);
    const auditMetrics = (await send(audit.admin, '/metrics')).body;
    assert.doesNotMatch(auditMetrics, /tollgate_response_filter_total/);
  });
});
