import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { pino } from 'pino';
import { JsonLineWriter, pinoString } from './json-line.ts';

const NOW = 1_767_225_600_123;

/** What pino itself writes for `info(fields, msg)` with these bindings, at NOW. */
function pinoLine(fields: Record<string, unknown>, msg: string, base = { component: 'agent' }): string {
  const lines: string[] = [];
  const logger = pino(
    { level: 'info', base, timestamp: () => `,"time":${NOW}` },
    { write: (s: string) => lines.push(s) },
  );
  logger.info(fields, msg);
  assert.equal(lines.length, 1);
  return lines[0] as string;
}

function ourLine(fields: Record<string, unknown>, msg: string, base = { component: 'agent' }): string {
  const lines: string[] = [];
  new JsonLineWriter((b) => lines.push(Buffer.from(b).toString()), { bindings: base, now: () => NOW }).info(
    fields,
    msg,
  );
  return lines[0] as string;
}

describe('JsonLineWriter: the same bytes as pino', () => {
  const cases: [string, Record<string, unknown>][] = [
    [
      'an access line',
      {
        event: 'tollgate.access',
        requestId: 'req-123',
        traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
        spanId: null,
        method: 'GET',
        path: '/v1/users/alice/orders/7',
        route: 'get-order',
        policy: 'shop/orders',
        decision: 'allow',
        reason: 'OK',
        status: 200,
        latencyMs: 1.234,
        clientKey: 'spiffe://cluster.local/ns/shop/sa/web',
        findings: ['ERR_AUTHZ_DENIED', 'ERR_RATE_LIMITED'],
      },
    ],
    ['quotes and backslashes', { path: '/a"b\\c', q: '"', b: '\\' }],
    ['non-ASCII', { path: '/café/ü/日本/😀', mixed: 'a"é\\b', lone: 'x\ud800y' }],
    ['control characters', { path: '/a\nb', tab: '\t', late: 'é\u0001' }],
    [
      'long strings',
      { long: 'x'.repeat(101), exact: 'y'.repeat(100), longQuote: `${'"'.repeat(60)}é`.repeat(2) },
    ],
    [
      'numbers, booleans, null, undefined',
      { n: 0, neg: -3, f: 0.1, nan: Number.NaN, inf: Infinity, t: true, u: undefined, z: null },
    ],
    ['objects and arrays', { o: { a: [1, 'b"'] }, e: [] }],
    ['an empty object', {}],
  ];
  for (const [name, fields] of cases) {
    test(name, () => {
      // Compared as written (UTF-8): a lone surrogate is U+FFFD on the wire either way.
      assert.equal(
        Buffer.from(ourLine(fields, 'request')).toString('hex'),
        Buffer.from(pinoLine(fields, 'request')).toString('hex'),
      );
      assert.equal(ourLine(fields, 'request'), pinoLine(fields, 'request').replace('\ud800', '\ufffd'));
      JSON.parse(ourLine(fields, 'request'));
    });
  }

  test('the message and the bindings are escaped the same way', () => {
    const base = { component: 'agé"nt' };
    assert.equal(
      ourLine({ a: 1 }, 'a "quoted"\nmessage', base),
      pinoLine({ a: 1 }, 'a "quoted"\nmessage', base),
    );
  });

  test('one buffer, reused: a long line, then a short one', () => {
    const lines: string[] = [];
    const w = new JsonLineWriter((b) => lines.push(Buffer.from(b).toString()), {
      bindings: {},
      now: () => NOW,
    });
    w.info({ big: 'é'.repeat(5000) }, 'm');
    w.info({ small: 'x' }, 'm');
    assert.equal(lines[1], `{"level":30,"time":${NOW},"small":"x","msg":"m"}\n`);
    assert.equal(JSON.parse(lines[0] as string).big.length, 5000);
  });

  test('pinoString', () => {
    assert.equal(pinoString('a"b'), '"a\\"b"');
    assert.equal(pinoString('a\nb'), '"a\\nb"');
  });
});

describe('JsonLineWriter.thousandths', () => {
  test('the bytes of number(key, n / 1000) for every value an access line can hold', () => {
    const lines: string[] = [];
    const w = new JsonLineWriter((b) => lines.push(Buffer.from(b).toString()), {
      bindings: {},
      now: () => 1,
    });
    const values = [
      0, 1, 9, 10, 99, 100, 101, 110, 999, 1000, 1001, 1010, 1100, 1234, 2500, 60_000, 86_400_000,
    ];
    for (let i = 0; i < 20_000; i++)
      values.push(i, Math.floor(Math.random() * 2 ** 40), Math.floor(Math.random() * 1e15));
    values.push(1e15 - 1, 1e15, Number.MAX_SAFE_INTEGER, 2 ** 53 + 2, -5, Number.NaN, 1.5);
    for (const k of values) {
      w.begin();
      w.thousandths('latencyMs', k);
      w.end('m');
      w.begin();
      w.number('latencyMs', k / 1000);
      w.end('m');
      const [ours, reference] = lines.splice(0);
      assert.equal(ours, reference, `thousandths ${k}`);
    }
  });
});
