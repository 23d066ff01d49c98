import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { PassThrough, type Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { describe, test } from 'node:test';
import type { CompiledRoute } from '../../../policy/compile/bundle.ts';
import type { PolicyError } from '../../errors.ts';
import { ByteLimit, prepareBody, readUpTo } from './request-body.ts';
import { compileRouteValidators, type RouteValidator } from './request-validator.ts';

function validator(request: Partial<CompiledRoute['request']>): RouteValidator {
  const route: CompiledRoute = {
    name: 'r',
    methods: ['POST'],
    path: '/',
    access: { kind: 'public' },
    rateLimits: [],
    timeoutMs: 1000,
    request: { maxBodyBytes: 16, contentTypes: null, query: null, body: null, ...request },
    response: { omitFields: null },
    deprecation: null,
  };
  const v = compileRouteValidators([route]).get(route);
  assert.ok(v);
  return v;
}

const SCHEMA = { type: 'object', properties: { n: { type: 'integer', maximum: 5 } } };

/** A request stand-in: a stream with headers; `chunks` are written, then it ends (unless `open`). */
function fakeReq(chunks: string[], headers: Record<string, string> = { 'transfer-encoding': 'chunked' }) {
  const req = Object.assign(new PassThrough(), { headers, method: 'POST' });
  for (const c of chunks) req.write(c);
  return req;
}

function asReq(s: PassThrough): IncomingMessage {
  return s as unknown as IncomingMessage;
}

async function drain(body: Readable | undefined): Promise<string> {
  assert.ok(body);
  return text(body);
}

const noFinding = (f: PolicyError) => assert.fail(`unexpected finding ${f.code}`);

describe('prepareBody', () => {
  test('no plan or no body: the request is forwarded as is', async () => {
    const req = fakeReq([], {});
    assert.equal((await prepareBody(asReq(req), null, noFinding)).body, undefined);
    const plan = { validator: validator({ body: SCHEMA }), audit: false };
    assert.equal((await prepareBody(asReq(req), plan, noFinding)).body, undefined);
  });

  test('schema route: buffered, validated, forwarded from the buffer with its length', async () => {
    const req = fakeReq(['{"n":', '3}']);
    req.end();
    const p = await prepareBody(
      asReq(req),
      { validator: validator({ body: SCHEMA }), audit: false },
      noFinding,
    );
    assert.equal(p.length, 7);
    assert.equal(await drain(p.body), '{"n":3}');
  });

  test('schema route: invalid → 400, over the limit → 413 (Enforce)', async () => {
    const plan = { validator: validator({ body: SCHEMA }), audit: false };
    const bad = fakeReq(['{"n":9}']);
    bad.end();
    await assert.rejects(prepareBody(asReq(bad), plan, noFinding), { code: 'ERR_VALIDATION' });
    const big = fakeReq(['{"n":1,', '"pad":"xxxxxxxxxxxxxxxxxxxxxxxx"}']);
    await assert.rejects(prepareBody(asReq(big), plan, noFinding), { code: 'ERR_BODY_TOO_LARGE' });
  });

  test('schema route in Audit: findings, body unchanged; over the limit streams through whole', async () => {
    const plan = { validator: validator({ body: SCHEMA }), audit: true };
    const bad = fakeReq(['{"n":9}']);
    bad.end();
    const p = await prepareBody(asReq(bad), plan, noFinding);
    assert.deepEqual(
      p.findings.map((f) => f.code),
      ['ERR_VALIDATION'],
    );
    assert.equal(await drain(p.body), '{"n":9}');
    const parts = ['{"n":1,', '"pad":"', 'x'.repeat(100), '"}'];
    const big = fakeReq(parts.slice(0, 2));
    const pending = prepareBody(asReq(big), plan, noFinding);
    for (const c of parts.slice(2)) big.write(c);
    big.end();
    const q = await pending;
    assert.deepEqual(
      q.findings.map((f) => f.code),
      ['ERR_BODY_TOO_LARGE'],
    );
    assert.equal(await drain(q.body), parts.join(''));
  });

  test('route without a schema: streams through a counter; crossing the limit fails the stream (Enforce)', async () => {
    const ok = fakeReq(['0123456789', 'abcdef']);
    ok.end();
    const p = await prepareBody(asReq(ok), { validator: validator({}), audit: false }, noFinding);
    assert.equal(await drain(p.body), '0123456789abcdef');
    assert.equal(p.overflow(), null);

    const big = fakeReq(['0123456789', 'abcdefg']);
    big.end();
    const q = await prepareBody(asReq(big), { validator: validator({}), audit: false }, noFinding);
    await assert.rejects(drain(q.body), { code: 'ERR_BODY_TOO_LARGE' });
    assert.equal(q.overflow()?.code, 'ERR_BODY_TOO_LARGE');
  });

  test('route without a schema in Audit: crossing is a finding, the body passes whole', async () => {
    const findings: string[] = [];
    const big = fakeReq(['0123456789', 'abcdefg', 'hij']);
    big.end();
    const p = await prepareBody(asReq(big), { validator: validator({}), audit: true }, (f) =>
      findings.push(f.code),
    );
    assert.equal(await drain(p.body), '0123456789abcdefghij');
    assert.deepEqual(findings, ['ERR_BODY_TOO_LARGE']);
    assert.equal(p.overflow()?.code, 'ERR_BODY_TOO_LARGE');
  });

  test('Audit with a declared length over the limit: forwarded as is (already a finding)', async () => {
    const req = fakeReq(['x'.repeat(20)], { 'content-length': '20' });
    const p = await prepareBody(
      asReq(req),
      { validator: validator({ body: SCHEMA }), audit: true },
      noFinding,
    );
    assert.equal(p.body, undefined);
  });

  test('a request that ends early fails the streamed copy', async () => {
    const req = fakeReq(['0123']);
    const p = await prepareBody(asReq(req), { validator: validator({}), audit: false }, noFinding);
    const reading = drain(p.body);
    req.destroy();
    await assert.rejects(reading, /ended early/);
  });
});

describe('readUpTo', () => {
  test('a request closed before its end → ERR_REQUEST_MALFORMED', async () => {
    const req = fakeReq(['ab']);
    const reading = readUpTo(asReq(req), 100);
    req.destroy();
    await assert.rejects(reading, { code: 'ERR_REQUEST_MALFORMED' });
    await assert.rejects(readUpTo(asReq(req), 100), { code: 'ERR_REQUEST_MALFORMED' });
  });
});

test('ByteLimit counts bytes', async () => {
  const limit = new ByteLimit(100, () => null);
  limit.end(Buffer.from('héllo'));
  assert.equal(await text(limit), 'héllo');
  assert.equal(limit.count, 6);
});
