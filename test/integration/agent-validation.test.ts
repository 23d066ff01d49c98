/**
 * Request validation against the real `tollgate agent` process: body size
 * (Content-Length and chunked bodies crossing the limit), content types,
 * query and body JSON Schemas, hostile JSON (prototype keys, deep nesting),
 * exact forwarding of valid bodies, streaming of large uploads, Audit mode.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  eventually,
  type Reply,
  type Seen,
  send,
  sendBody,
  sendChunked,
  startAgent,
  startUpstream,
} from '../support/agent-process.ts';

function policyYaml(mode: 'Enforce' | 'Audit'): string {
  return `apiVersion: tollgate.dev/v1alpha1
kind: ApiPolicy
metadata: {name: shop, namespace: shop}
spec:
  mode: ${mode}
  routes:
    - name: create-order
      methods: [POST]
      path: /v1/orders
      public: true
      request:
        maxBodyBytes: 64Ki
        contentTypes: [application/json]
        query: {type: object, properties: {dryRun: {enum: ["true", "false"]}}, additionalProperties: false}
        body:
          type: object
          required: [sku, quantity]
          additionalProperties: false
          properties:
            sku: {type: string, pattern: "^[A-Z0-9-]{3,32}$"}
            quantity: {type: integer, minimum: 1, maximum: 100}
    - name: upload
      methods: [POST]
      path: /v1/uploads
      public: true
      request: {maxBodyBytes: 8Mi}
    - name: small-upload
      methods: [POST]
      path: /v1/small-uploads
      public: true
      request: {maxBodyBytes: 1Ki, contentTypes: ["text/*", application/octet-stream]}
`;
}

interface Problem {
  status: number;
  code: string;
  detail: string;
  errors?: { in: string; pointer: string; message: string }[];
}

const problem = (r: { body?: string; text?: string }): Problem => {
  const raw = r.body ?? r.text ?? '';
  return JSON.parse(raw.slice(raw.indexOf('{'))) as Problem;
};

const JSON_HEADERS = { 'content-type': 'application/json' };
const VALID = '{"sku":"AB-123","quantity":2}';

describe('tollgate agent: request validation', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-validation-'));
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  let agent: Awaited<ReturnType<typeof startAgent>>;
  let audit: Awaited<ReturnType<typeof startAgent>>;

  before(async () => {
    upstream = await startUpstream();
    const enforceFile = join(dir, 'enforce.yaml');
    const auditFile = join(dir, 'audit.yaml');
    writeFileSync(enforceFile, policyYaml('Enforce'));
    writeFileSync(auditFile, policyYaml('Audit'));
    [agent, audit] = await Promise.all([
      startAgent(enforceFile, upstream.port),
      startAgent(auditFile, upstream.port),
    ]);
  });

  after(async () => {
    for (const a of [agent, audit]) {
      a?.proc.kill('SIGTERM');
      await new Promise((r) => a?.proc.once('exit', r));
    }
    upstream?.server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Runs `fn` and returns what reached the app meanwhile. */
  async function reaching(fn: () => Promise<unknown>): Promise<Seen[]> {
    const before = upstream.seen.length;
    await fn();
    // Give a forwarded request time to arrive before concluding nothing did.
    await new Promise((r) => setTimeout(r, 50));
    return upstream.seen.slice(before);
  }

  function assertDenied(r: Reply, status: number, code: string): Problem {
    assert.equal(r.status, status, r.body);
    assert.equal(r.headers['content-type'], 'application/problem+json');
    const p = problem(r);
    assert.equal(p.code, code);
    return p;
  }

  test('a valid POST reaches the app with exactly the same body bytes and length', async () => {
    let r: Reply | undefined;
    const seen = await reaching(async () => {
      r = await sendBody(agent.port, '/v1/orders?dryRun=true', VALID, JSON_HEADERS);
    });
    assert.equal(r?.status, 200, r?.body);
    assert.equal(seen.length, 1);
    assert.equal(seen[0]?.body?.toString(), VALID);
    assert.equal(seen[0]?.headers['content-length'], String(VALID.length));
  });

  test('a valid chunked POST is forwarded whole, with a Content-Length', async () => {
    const body = Buffer.from('{"sku":"ZZ-9",  "quantity":100}');
    let status = 0;
    const seen = await reaching(async () => {
      ({ status } = await sendChunked(agent.port, '/v1/orders', JSON_HEADERS, [
        body.subarray(0, 10),
        body.subarray(10),
      ]));
    });
    assert.equal(status, 200);
    assert.equal(seen[0]?.body?.toString(), body.toString());
    assert.equal(seen[0]?.headers['content-length'], String(body.length));
    assert.equal(seen[0]?.headers['transfer-encoding'], undefined);
  });

  test('413: a Content-Length over maxBodyBytes is refused before any byte is read (even with 100-continue)', async () => {
    let r: Reply | undefined;
    const seen = await reaching(async () => {
      r = await send(
        agent.port,
        '/v1/orders',
        { ...JSON_HEADERS, 'content-length': String(64 * 1024 + 1), expect: '100-continue' },
        'POST',
      );
    });
    assert.ok(r);
    assertDenied(r, 413, 'ERR_BODY_TOO_LARGE');
    assert.equal(r.headers.connection, 'close');
    assert.equal(seen.length, 0);
  });

  test('413: a chunked body crossing the limit on a schema route; nothing reaches the app', async () => {
    const chunk = Buffer.alloc(16 * 1024, 0x20);
    let result = { status: 0, text: '' };
    const seen = await reaching(async () => {
      result = await sendChunked(agent.port, '/v1/orders', JSON_HEADERS, Array(8).fill(chunk));
    });
    assert.equal(result.status, 413, result.text);
    assert.equal(problem(result).code, 'ERR_BODY_TOO_LARGE');
    assert.equal(seen.length, 0);
  });

  test('413: a streamed body crossing the limit on a route without schema; the upstream request is cut', async () => {
    const chunk = Buffer.alloc(512, 0x61);
    let result = { status: 0, text: '' };
    const seen = await reaching(async () => {
      result = await sendChunked(agent.port, '/v1/small-uploads', { 'content-type': 'text/plain' }, [
        chunk,
        chunk,
        chunk,
        chunk,
      ]);
    });
    assert.equal(result.status, 413, result.text);
    assert.equal(problem(result).code, 'ERR_BODY_TOO_LARGE');
    // The app may have seen the start of the body, never a complete request.
    for (const s of seen) {
      await eventually(async () => s.aborted);
      assert.equal(s.body, null);
    }
  });

  test('415: a wrong content type, and a body without one', async () => {
    const seen = await reaching(async () => {
      const wrong = await sendBody(agent.port, '/v1/orders', VALID, { 'content-type': 'text/plain' });
      assertDenied(wrong, 415, 'ERR_MEDIA_TYPE');
      const missing = await sendBody(agent.port, '/v1/orders', VALID);
      assertDenied(missing, 415, 'ERR_MEDIA_TYPE');
      const range = await sendBody(agent.port, '/v1/small-uploads', 'hello', { 'content-type': 'image/png' });
      assertDenied(range, 415, 'ERR_MEDIA_TYPE');
      const ok = await sendBody(agent.port, '/v1/small-uploads', 'hello', { 'content-type': 'text/csv' });
      assert.equal(ok.status, 200);
    });
    assert.equal(seen.length, 1);
  });

  test('400: a schema violation lists pointers, never the values', async () => {
    let r: Reply | undefined;
    const seen = await reaching(async () => {
      r = await sendBody(agent.port, '/v1/orders', '{"sku":"hunter2-secret","quantity":1000}', JSON_HEADERS);
    });
    assert.ok(r);
    const p = assertDenied(r, 400, 'ERR_VALIDATION');
    assert.deepEqual(p.errors, [
      { in: 'body', pointer: '/sku', message: 'must match pattern "^[A-Z0-9-]{3,32}$"' },
      { in: 'body', pointer: '/quantity', message: 'must be <= 100' },
    ]);
    assert.ok(!r.body.includes('hunter2'));
    assert.ok(!r.body.includes('1000'));
    assert.equal(seen.length, 0);
  });

  test('400: hostile JSON (prototype keys, 10,000-deep nesting, duplicates, garbage); the agent survives', async () => {
    const cases: [body: string, pointer: string][] = [
      ['{"sku":"AB-123","quantity":2,"__proto__":{"admin":true}}', '/__proto__'],
      ['{"sku":"AB-123","quantity":2,"constructor":{"prototype":{"admin":true}}}', '/constructor'],
      [`${'['.repeat(10_000)}${']'.repeat(10_000)}`, '/0'.repeat(64)],
      ['{"sku":"AB-123","quantity":2,"quantity":500}', '/quantity'],
      ['{"sku":"AB-123",', ''],
    ];
    const seen = await reaching(async () => {
      for (const [body, pointer] of cases) {
        const r = await sendBody(agent.port, '/v1/orders', body, JSON_HEADERS);
        const p = assertDenied(r, 400, 'ERR_VALIDATION');
        assert.equal(p.errors?.[0]?.in, 'body');
        assert.ok(
          p.errors?.some((e) => e.pointer === pointer),
          JSON.stringify(p.errors),
        );
      }
    });
    assert.equal(seen.length, 0);
    const ok = await sendBody(agent.port, '/v1/orders', VALID, JSON_HEADERS);
    assert.equal(ok.status, 200);
  });

  test('400: a query violation says in: query', async () => {
    const r = await sendBody(agent.port, '/v1/orders?dryRun=maybe&debug=1', VALID, JSON_HEADERS);
    const p = assertDenied(r, 400, 'ERR_VALIDATION');
    assert.deepEqual(p.errors, [
      { in: 'query', pointer: '/debug', message: 'must NOT have additional properties' },
      { in: 'query', pointer: '/dryRun', message: 'must be equal to one of the allowed values' },
    ]);
  });

  test('a large upload on a route without body schema streams to the app (all bytes arrive)', async () => {
    const chunk = Buffer.alloc(64 * 1024);
    const chunks = Array.from({ length: 80 }, (_, i) => Buffer.from(chunk.fill(i % 251)));
    const before = upstream.seen.length;
    const result = await sendChunked(agent.port, '/v1/uploads', {}, chunks, async (i) => {
      // Halfway through, the app must already be receiving: the body is not buffered.
      if (i === 40) await eventually(async () => (upstream.seen[before]?.received ?? 0) > 0);
    });
    assert.equal(result.status, 200, result.text.slice(0, 300));
    const seen = upstream.seen[before];
    assert.ok(seen?.body);
    assert.equal(seen.body.length, 80 * 64 * 1024);
    assert.ok(seen.body.equals(Buffer.concat(chunks)));
  });

  describe('Audit mode', () => {
    test('violations are forwarded unchanged', async () => {
      const bodies: [string, Record<string, string>][] = [
        ['{"sku":"x","quantity":1000}', JSON_HEADERS],
        ['{"__proto__":{}}', JSON_HEADERS],
        [VALID, { 'content-type': 'text/plain' }],
      ];
      for (const [body, headers] of bodies) {
        let r: Reply | undefined;
        const seen = await reaching(async () => {
          r = await sendBody(audit.port, '/v1/orders?dryRun=maybe', body, headers);
        });
        assert.equal(r?.status, 200, r?.body);
        assert.equal(seen.length, 1);
        assert.equal(seen[0]?.body?.toString(), body);
        assert.equal(seen[0]?.url, '/v1/orders?dryRun=maybe');
      }
    });

    test('a body over the limit streams through whole, unbuffered', async () => {
      const chunk = Buffer.alloc(16 * 1024, 0x20);
      let result = { status: 0, text: '' };
      const seen = await reaching(async () => {
        result = await sendChunked(audit.port, '/v1/orders', JSON_HEADERS, Array(8).fill(chunk));
      });
      assert.equal(result.status, 200, result.text.slice(0, 300));
      assert.equal(seen[0]?.body?.length, 8 * 16 * 1024);
      const small = await reaching(async () => {
        result = await sendChunked(audit.port, '/v1/small-uploads', {}, [Buffer.alloc(3000, 0x61)]);
      });
      assert.equal(result.status, 200);
      assert.equal(small[0]?.body?.length, 3000);
    });
  });
});
