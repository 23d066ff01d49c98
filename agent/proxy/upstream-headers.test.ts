/** Header rewriting in both directions, and request ids, on plain header maps. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  buildUpstreamHeaders,
  displayIp,
  filterResponseHeaders,
  forwardedElement,
  type HeaderMap,
  requestIdFrom,
} from './upstream-headers.ts';

const base = { clientIp: '10.1.2.3', proto: 'http', requestId: 'rid-1' } as const;

function build(headers: HeaderMap, extra: Partial<Parameters<typeof buildUpstreamHeaders>[1]> = {}) {
  return buildUpstreamHeaders({ headers }, { ...base, ...extra });
}

describe('buildUpstreamHeaders', () => {
  test('drops hop-by-hop headers and the ones Connection names', () => {
    const out = build({
      host: 'api.example',
      connection: 'keep-alive, X-Secret , close',
      'keep-alive': 'timeout=5',
      'proxy-connection': 'keep-alive',
      te: 'trailers',
      trailer: 'x-t',
      'transfer-encoding': 'chunked',
      upgrade: 'h2c',
      'http2-settings': 'AAA',
      'proxy-authorization': 'Basic x',
      'proxy-authenticate': 'Basic',
      'x-secret': 'hidden',
      expect: '100-continue',
      accept: 'application/json',
    });
    assert.deepEqual(Object.keys(out).sort(), [
      'accept',
      'forwarded',
      'host',
      'x-forwarded-for',
      'x-forwarded-host',
      'x-forwarded-proto',
      'x-request-id',
    ]);
  });

  test('Connection cannot strip Host or the body headers', () => {
    const out = build({
      host: 'a',
      connection: 'host, content-length, content-type, content-encoding, authorization',
      'content-length': '2',
      'content-type': 'application/json',
      'content-encoding': 'gzip',
      authorization: 'Bearer t',
    });
    assert.equal(out.host, 'a');
    assert.equal(out['content-length'], '2');
    assert.equal(out['content-type'], 'application/json');
    assert.equal(out['content-encoding'], 'gzip');
    assert.equal(out.authorization, undefined);
  });

  test('replaces client-sent forwarding headers and request id', () => {
    const out = build({
      host: 'api.example:8080',
      'x-forwarded-for': '6.6.6.6',
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'evil',
      'x-forwarded-port': '1',
      'x-real-ip': '6.6.6.6',
      forwarded: 'for=6.6.6.6',
      'x-request-id': 'client-id',
    });
    assert.equal(out['x-forwarded-for'], '10.1.2.3');
    assert.equal(out['x-forwarded-proto'], 'http');
    assert.equal(out['x-forwarded-host'], 'api.example:8080');
    assert.equal(out.forwarded, 'for=10.1.2.3;proto=http;host="api.example:8080"');
    assert.equal(out['x-request-id'], 'rid-1');
    assert.equal(out['x-forwarded-port'], undefined);
    assert.equal(out['x-real-ip'], undefined);
  });

  test('IPv4-mapped IPv6 shows as IPv4; IPv6 is bracketed and quoted in Forwarded', () => {
    assert.equal(build({ host: 'a' }, { clientIp: '::ffff:127.0.0.1' })['x-forwarded-for'], '127.0.0.1');
    const v6 = build({ host: 'a' }, { clientIp: '::1', proto: 'https' });
    assert.equal(v6['x-forwarded-for'], '::1');
    assert.equal(v6.forwarded, 'for="[::1]";proto=https;host=a');
  });

  test('removes identity headers, then sets, after the agent headers', () => {
    const out = build(
      { host: 'a', 'x-user-id': 'forged', 'X-Tenant': 'forged', cookie: 'c=1' },
      { remove: ['x-user-id', 'x-tenant'], set: { 'X-User-Id': 'alice', 'x-request-id': 'override' } },
    );
    assert.equal(out['x-user-id'], 'alice');
    assert.equal(out['x-tenant'], undefined);
    assert.equal(out['x-request-id'], 'override');
    assert.equal(out.cookie, 'c=1');
  });

  test('keeps repeated values, skips HTTP/2 pseudo-headers, and does not touch the input', () => {
    const headers = { ':authority': 'h2.example', ':path': '/', 'x-list': ['a', 'b'] };
    const out = build(headers);
    assert.deepEqual(out['x-list'], ['a', 'b']);
    assert.equal(out[':path'], undefined);
    assert.equal(out['x-forwarded-host'], 'h2.example');
    assert.deepEqual(headers['x-list'], ['a', 'b']);
  });

  test('a header named __proto__ stays an ordinary header', () => {
    const headers: Record<string, string> = {};
    Object.defineProperty(headers, '__proto__', { value: 'x', enumerable: true });
    const out = build(headers);
    assert.equal(Object.getPrototypeOf(out), Object.prototype);
    assert.equal(Object.getOwnPropertyDescriptor(out, '__proto__')?.value, 'x');
  });
});

describe('helpers', () => {
  test('displayIp', () => {
    assert.equal(displayIp('::ffff:10.0.0.1'), '10.0.0.1');
    assert.equal(displayIp('::FFFF:10.0.0.1'), '10.0.0.1');
    assert.equal(displayIp('fe80::1'), 'fe80::1');
    assert.equal(displayIp(''), 'unknown');
  });

  test('forwardedElement quotes what is not a token', () => {
    assert.equal(forwardedElement('1.2.3.4', 'http', undefined), 'for=1.2.3.4;proto=http');
    assert.equal(forwardedElement('unknown', 'http', 'a"b'), 'for=unknown;proto=http;host="a\\"b"');
  });

  test('requestIdFrom keeps a well-formed client id, else makes a UUID', () => {
    assert.equal(requestIdFrom({ headers: { 'x-request-id': 'abc-123.x:y_z' } }), 'abc-123.x:y_z');
    const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
    for (const bad of ['', 'a b', 'x'.repeat(129), 'a\u00e9', 'a,b']) {
      assert.match(requestIdFrom({ headers: { 'x-request-id': bad } }), uuid);
    }
    assert.match(requestIdFrom({ headers: { 'x-request-id': ['a', 'b'] } }), uuid);
    assert.match(requestIdFrom({ headers: {} }), uuid);
    assert.equal(requestIdFrom({ headers: { 'x-request-id': 'x'.repeat(128) } }).length, 128);
  });

  test('filterResponseHeaders drops hop-by-hop and Connection-named headers', () => {
    const out = filterResponseHeaders({
      connection: 'close, x-hop',
      'keep-alive': 'timeout=5',
      'transfer-encoding': 'chunked',
      trailer: 'x-checksum',
      upgrade: 'websocket',
      'proxy-authenticate': 'Basic',
      'x-hop': '1',
      'set-cookie': ['a=1', 'b=2'],
      'content-type': 'text/plain',
      'x-missing': undefined,
    });
    assert.deepEqual(out, { 'set-cookie': ['a=1', 'b=2'], 'content-type': 'text/plain' });
  });
});
