/**
 * Response filtering decisions (mode, method, route, status, media type,
 * coding, size, broken bodies) and the codec underneath (codings, bounded
 * decoding, number-preserving JSON).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import type { CompiledPolicy } from '../../../policy/compile/bundle.ts';
import type { UpstreamHeaders } from '../../proxy/upstream-headers.ts';
import { Metrics } from '../../telemetry/metrics.ts';
import { codingOf, decode, encode, isTooLarge, parseJson } from './json-codec.ts';
import { type FilterTarget, ResponseFilter } from './response-filter.ts';

function policy(mode: 'Enforce' | 'Audit', omitFields: string[] | null): CompiledPolicy {
  return {
    mode,
    routes: [{ name: 'r', response: { omitFields } }],
  } as unknown as CompiledPolicy;
}

function setup(mode: 'Enforce' | 'Audit' = 'Enforce', omitFields: string[] | null = ['secret']) {
  const metrics = new Metrics();
  const warnings: object[] = [];
  const filter = new ResponseFilter({
    metrics,
    logger: { warn: (fields) => warnings.push(fields) },
    maxBytes: 1000,
  });
  const target: FilterTarget = {
    policy: policy(mode, omitFields),
    route: 'r',
    headers: { range: 'bytes=0-1', 'if-range': '"x"', accept: '*/*' },
  };
  const count = (result: string) => metrics.get('tollgate_response_filter_total', { route: 'r', result });
  return { filter, target, count, warnings };
}

const JSON_HEADERS: UpstreamHeaders = {
  'content-type': 'application/json',
  'content-length': '10',
  etag: '"e"',
};

describe('ResponseFilter', () => {
  test('no hook in Audit mode, for HEAD, without omitFields or a matched route', () => {
    assert.equal(setup('Audit').filter.hookFor(setup('Audit').target, 'GET'), undefined);
    const s = setup();
    assert.equal(s.filter.hookFor(s.target, 'HEAD'), undefined);
    assert.equal(s.filter.hookFor({ ...s.target, route: null }, 'GET'), undefined);
    assert.equal(s.filter.hookFor({ ...s.target, route: 'other' }, 'GET'), undefined);
    const none = setup('Enforce', null);
    assert.equal(none.filter.hookFor(none.target, 'GET'), undefined);
    assert.equal(none.target.headers.range, 'bytes=0-1');
  });

  test('a hook removes Range and If-Range from the upstream request', () => {
    const s = setup();
    assert.ok(s.filter.hookFor(s.target, 'GET'));
    assert.deepEqual(s.target.headers, { accept: '*/*' });
  });

  test('204, 304, non-JSON and unknown codings are not buffered', () => {
    const s = setup();
    const hook = s.filter.hookFor(s.target, 'GET');
    assert.ok(hook);
    assert.equal(hook(204, JSON_HEADERS), null);
    assert.equal(hook(304, JSON_HEADERS), null);
    assert.equal(hook(200, { 'content-type': 'text/html' }), null);
    assert.equal(hook(200, {}), null);
    assert.equal(hook(200, { ...JSON_HEADERS, 'content-encoding': 'gzip, br' }), null);
    assert.equal(hook(200, { ...JSON_HEADERS, 'content-encoding': 'zstd' }), null);
    assert.equal(s.count('passthrough_type'), 2);
    assert.equal(s.count('passthrough_encoding'), 2);
    assert.ok(hook(500, { 'content-type': 'Application/Vnd.Api+JSON; charset=utf-8' }));
  });

  test('rewrites: new Content-Length, stale validators dropped, other headers kept', async () => {
    const s = setup();
    const hook = s.filter.hookFor(s.target, 'GET');
    const rewrite = hook?.(200, JSON_HEADERS);
    assert.ok(rewrite);
    assert.equal(rewrite.limit, 1000);
    const out = await rewrite.rewrite(Buffer.from('{"a":1,"secret":2}'), {
      ...JSON_HEADERS,
      'content-md5': 'x',
      'accept-ranges': 'bytes',
      vary: 'accept-encoding',
    });
    assert.ok(out);
    assert.equal(out.body.toString(), '{"a":1}');
    assert.deepEqual(out.headers, {
      'content-type': 'application/json',
      'content-length': '7',
      vary: 'accept-encoding',
    });
    assert.equal(s.count('filtered'), 1);
  });

  test('unchanged, broken, too large after decoding, overflow: null and counted', async () => {
    const s = setup();
    const hook = s.filter.hookFor(s.target, 'GET');
    const plain = hook?.(200, JSON_HEADERS);
    assert.ok(plain);
    assert.equal(await plain.rewrite(Buffer.from('{"a":1}'), JSON_HEADERS), null);
    assert.equal(s.count('unchanged'), 1);
    assert.equal(await plain.rewrite(Buffer.from('{"secret":"leak", '), JSON_HEADERS), null);
    assert.equal(await plain.rewrite(Buffer.from('nope'), JSON_HEADERS), null);
    assert.equal(s.count('passthrough_error'), 2);
    assert.equal(s.warnings.length, 1, 'logged once per route');
    assert.doesNotMatch(JSON.stringify(s.warnings), /leak/);
    const gz = hook?.(200, { ...JSON_HEADERS, 'content-encoding': 'gzip' });
    assert.ok(gz);
    const bomb = gzipSync(Buffer.from(`{"secret":"${'x'.repeat(5000)}"}`));
    assert.equal(await gz.rewrite(bomb, JSON_HEADERS), null);
    assert.equal(await gz.rewrite(Buffer.from('not gzip'), JSON_HEADERS), null);
    gz.overflow();
    assert.equal(s.count('passthrough_size'), 2);
    assert.equal(s.count('passthrough_error'), 3);
  });
});

describe('json codec', () => {
  test('codingOf', () => {
    assert.equal(codingOf(undefined), 'identity');
    assert.equal(codingOf(' Identity '), 'identity');
    assert.equal(codingOf('GZIP'), 'gzip');
    assert.equal(codingOf('x-gzip'), 'gzip');
    assert.equal(codingOf('deflate'), 'deflate');
    assert.equal(codingOf(['br']), 'br');
    assert.equal(codingOf('gzip, gzip'), null);
    assert.equal(codingOf(['gzip', 'br']), null);
    assert.equal(codingOf('compress'), null);
  });

  test('every coding round-trips; raw deflate is accepted; decoding is bounded', async () => {
    const body = Buffer.from(JSON.stringify({ a: 'x'.repeat(100) }));
    for (const coding of ['identity', 'gzip', 'deflate', 'br'] as const) {
      assert.deepEqual(await decode(await encode(body, coding), coding, 1000), body);
    }
    const { deflateRawSync } = await import('node:zlib');
    assert.deepEqual(await decode(deflateRawSync(body), 'deflate', 1000), body);
    await assert.rejects(decode(await encode(body, 'br'), 'br', 10), (e) => isTooLarge(e));
    await assert.rejects(decode(await encode(body, 'deflate'), 'deflate', 10), (e) => isTooLarge(e));
    await assert.rejects(decode(Buffer.from('junk'), 'gzip', 1000), (e) => !isTooLarge(e));
  });

  test('parseJson keeps number source text JavaScript would change', () => {
    const text = '{"big":12345678901234567890,"f":1.0,"e":1E2,"n":-0,"ok":[1,2.5,"s",true,null]}';
    assert.equal(JSON.stringify(parseJson(text)), text);
    assert.throws(() => parseJson('{'));
    assert.equal(JSON.stringify(parseJson('{"__proto__":{"x":1}}')), '{"__proto__":{"x":1}}');
  });
});
