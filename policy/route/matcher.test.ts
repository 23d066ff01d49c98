import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type MatchableRoute, type MatchResult, methodsOverlap, RouteMatcher } from './matcher.ts';
import { type PathTemplate, parseTemplate } from './template.ts';

type Spec = [template: string, methods: string[], value?: string];

function template(source: string): PathTemplate {
  const result = parseTemplate(source);
  if (!result.ok) throw new Error(`${source}: ${result.message}`);
  return result.template;
}

/** Routes from specs; a route's value defaults to `METHODS template`. */
function routes(specs: readonly Spec[]): MatchableRoute<string>[] {
  return specs.map(([t, methods, value]) => ({ template: template(t), methods, value: value ?? t }));
}

/** The normalized segments of a path, as the matcher receives them. */
function segs(path: string): string[] {
  return path.slice(1).split('/');
}

/** A result with params copied onto a plain object, for readable deepEqual. */
function plain(result: MatchResult<string>): unknown {
  return result.kind === 'matched' ? { ...result, params: { ...result.params } } : result;
}

const matched = (value: string, params: Record<string, string> = {}) => ({ kind: 'matched', value, params });
const notAllowed = (...allow: string[]) => ({ kind: 'method-not-allowed', allow });
const unmatched = { kind: 'unmatched' };

type Case = [method: string, path: string, expected: unknown];

function table(name: string, specs: readonly Spec[], cases: readonly Case[]): void {
  describe(name, () => {
    const forward = new RouteMatcher(routes(specs));
    const backward = new RouteMatcher(routes([...specs].reverse()));
    for (const [method, path, expected] of cases) {
      it(`${method} ${path}`, () => {
        assert.deepEqual(plain(forward.match(method, segs(path))), expected);
        // Input order must not matter.
        assert.deepEqual(plain(backward.match(method, segs(path))), expected);
      });
    }
  });
}

table(
  'contract examples',
  [
    ['/v1/users/{userId}/orders/{orderId}', ['GET', 'DELETE']],
    ['/v1/users/{userId}/orders', ['GET', 'POST']],
    ['/v0/orders/**', ['GET']],
    ['/healthz', ['GET']],
  ],
  [
    [
      'GET',
      '/v1/users/alice/orders/42',
      matched('/v1/users/{userId}/orders/{orderId}', { userId: 'alice', orderId: '42' }),
    ],
    ['GET', '/v1/users/alice%40x/orders', matched('/v1/users/{userId}/orders', { userId: 'alice@x' })],
    ['POST', '/v1/users/a%2Fb/orders', matched('/v1/users/{userId}/orders', { userId: 'a/b' })],
    ['PUT', '/v1/users/alice/orders', notAllowed('GET', 'POST')],
    ['POST', '/v1/users/alice/orders/42', notAllowed('DELETE', 'GET')],
    ['GET', '/v1/users//orders', unmatched],
    ['GET', '/v1/users/alice/orders/', unmatched],
    ['GET', '/v1/users/alice', unmatched],
    ['GET', '/v0/orders', matched('/v0/orders/**')],
    ['GET', '/v0/orders/', matched('/v0/orders/**')],
    ['GET', '/v0/orders/a/b', matched('/v0/orders/**')],
    ['GET', '/v0/ordersx', unmatched],
    ['GET', '/healthz', matched('/healthz')],
    ['HEAD', '/healthz', notAllowed('GET')],
    ['TRACE', '/healthz', notAllowed('GET')],
    ['CONNECT', '/healthz', notAllowed('GET')],
    ['GET', '/healthz/', unmatched],
    ['GET', '/Healthz', unmatched],
    ['get', '/healthz', notAllowed('GET')],
    ['GET', '/', unmatched],
  ],
);

table(
  'precedence: literal > param > rest, segment by segment',
  [
    ['/a/b', ['GET']],
    ['/a/{y}', ['GET']],
    ['/a/**', ['GET']],
    ['/{x}/b', ['GET']],
    ['/{x}/{y}', ['GET']],
    ['/**', ['GET']],
    ['/a/{y}/c', ['GET']],
    ['/{x}/b/c', ['GET']],
  ],
  [
    ['GET', '/a/b', matched('/a/b')],
    ['GET', '/a/z', matched('/a/{y}', { y: 'z' })],
    ['GET', '/a', matched('/a/**')],
    ['GET', '/a/', matched('/a/**')],
    ['GET', '/a/b/z', matched('/a/**')],
    ['GET', '/z/b', matched('/{x}/b', { x: 'z' })],
    ['GET', '/z/z', matched('/{x}/{y}', { x: 'z', y: 'z' })],
    // The first segment decides: `a` (literal) beats `{x}` even though `b` would be literal for /{x}/b/c.
    ['GET', '/a/b/c', matched('/a/{y}/c', { y: 'b' })],
    ['GET', '/z/b/c', matched('/{x}/b/c', { x: 'z' })],
    ['GET', '/', matched('/**')],
    ['GET', '/z', matched('/**')],
    ['GET', '/z/z/z', matched('/**')],
  ],
);

table(
  'methods',
  [
    ['/a/{id}', ['GET', 'PUT']],
    ['/a/**', ['DELETE']],
    ['/a/{id}/x', ['GET']],
    ['/a/{name}/x', ['POST'], 'post /a/{name}/x'],
    ['/b', ['TRACE', 'GET']],
    ['/c/{id}', ['PATCH']],
    ['/c/{other}', ['POST', 'GET']],
  ],
  [
    // A method declared only on a less specific route wins over a more specific one lacking it.
    ['DELETE', '/a/7', matched('/a/**')],
    ['GET', '/a/7', matched('/a/{id}', { id: '7' })],
    ['POST', '/a/7', notAllowed('DELETE', 'GET', 'PUT')],
    ['HEAD', '/a/7', notAllowed('DELETE', 'GET', 'PUT')],
    ['POST', '/a/7/x', matched('post /a/{name}/x', { name: '7' })],
    ['GET', '/a/7/x', matched('/a/{id}/x', { id: '7' })],
    ['PUT', '/a/7/x', notAllowed('DELETE', 'GET', 'POST')],
    ['TRACE', '/b', matched('/b')],
    ['CONNECT', '/b', notAllowed('GET', 'TRACE')],
    // Identical shapes with disjoint methods: each method reaches its own route and names.
    ['GET', '/c/1', matched('/c/{other}', { other: '1' })],
    ['PATCH', '/c/1', matched('/c/{id}', { id: '1' })],
    ['PUT', '/c/1', notAllowed('GET', 'PATCH', 'POST')],
    ['GET', '/d', unmatched],
  ],
);

table(
  'root, trailing slash and catch-all',
  [
    ['/', ['GET']],
    ['/a/', ['GET']],
    ['/b', ['GET']],
    ['/{p}/', ['POST']],
  ],
  [
    ['GET', '/', matched('/')],
    ['GET', '/a/', matched('/a/')],
    ['GET', '/a', unmatched],
    ['GET', '/b', matched('/b')],
    ['GET', '/b/', notAllowed('POST')],
    ['POST', '/z/', matched('/{p}/', { p: 'z' })],
    ['POST', '/z', unmatched],
    ['POST', '//', unmatched],
  ],
);

table(
  'param binding and decoding',
  [
    ['/p/{v}', ['GET']],
    ['/p/{v}/**', ['POST']],
    ['/q/{__proto__}/{constructor}', ['GET']],
  ],
  [
    ['GET', '/p/alice%40x', matched('/p/{v}', { v: 'alice@x' })],
    ['GET', '/p/caf%C3%A9', matched('/p/{v}', { v: 'café' })],
    ['GET', '/p/%25', matched('/p/{v}', { v: '%' })],
    ['GET', '/p/a+b', matched('/p/{v}', { v: 'a+b' })],
    // An empty segment never binds a param; neither does one that does not decode.
    ['GET', '/p/', unmatched],
    ['GET', '/p/%E0%A4%A', unmatched],
    ['GET', '/p/%FF', unmatched],
    ['POST', '/p/x/y', matched('/p/{v}/**', { v: 'x' })],
    ['POST', '/p/x', matched('/p/{v}/**', { v: 'x' })],
    ['GET', '/q/1/2', matched('/q/{__proto__}/{constructor}', { ['__proto__']: '1', constructor: '2' })],
  ],
);

describe('params object', () => {
  it('is a fresh null-prototype object per match', () => {
    const matcher = new RouteMatcher(routes([['/q/{__proto__}/{constructor}', ['GET']]]));
    const first = matcher.match('GET', segs('/q/1/2'));
    const second = matcher.match('GET', segs('/q/1/2'));
    assert.ok(first.kind === 'matched' && second.kind === 'matched');
    assert.equal(Object.getPrototypeOf(first.params), null);
    // Both names are plain own keys: nothing was assigned through the `__proto__` setter.
    assert.deepEqual(Object.entries(first.params), [
      ['__proto__', '1'],
      ['constructor', '2'],
    ]);
    assert.notEqual(first.params, second.params);
  });
});

describe('specificity order', () => {
  // Every template matching /a/b, most specific first.
  const ladder = ['/a/b', '/a/b/**', '/a/{y}', '/a/{y}/**', '/a/**', '/{x}/b', '/{x}/b/**', '/{x}/{y}'];
  const all = [...ladder, '/{x}/{y}/**', '/{x}/**', '/**'];
  it('the walk visits matching templates in specificity order regardless of input order', () => {
    for (let k = 0; k < all.length; k++) {
      const remaining = all.slice(k).map((t): Spec => [t, ['GET']]);
      for (const order of [remaining, [...remaining].reverse(), rotate(remaining, 3)]) {
        const result = new RouteMatcher(routes(order)).match('GET', ['a', 'b']);
        assert.equal(result.kind === 'matched' && result.value, all[k], `winner with ${all[k]} first`);
      }
    }
  });
  it('agrees with a brute-force reference on random tables', () => {
    const random = mulberry32(0x7011);
    for (let round = 0; round < 400; round++) {
      const routeTable = randomRoutes(random);
      const matcher = new RouteMatcher(routeTable);
      for (let p = 0; p < 25; p++) {
        const path = randomPath(random);
        const method = pick(random, METHODS);
        assert.deepEqual(
          matcher.match(method, path),
          reference(routeTable, method, path),
          `${method} /${path.join('/')}`,
        );
      }
    }
  });
});

describe('scale and pathological inputs', () => {
  it('matches every route of a 1,000-route table', () => {
    const specs: Spec[] = [];
    for (let i = 0; i < 250; i++) {
      specs.push([`/svc${i}/items`, ['GET', 'POST']], [`/svc${i}/items/{id}`, ['GET']]);
      specs.push([`/svc${i}/items/{id}/tags/**`, ['PUT']], [`/svc${i}/{kind}/{id}`, ['GET', 'DELETE']]);
    }
    const matcher = new RouteMatcher(routes(specs));
    for (let i = 0; i < 250; i++) {
      const m = (method: string, path: string) => plain(matcher.match(method, segs(path)));
      assert.deepEqual(m('POST', `/svc${i}/items`), matched(`/svc${i}/items`));
      assert.deepEqual(m('GET', `/svc${i}/items/${i}`), matched(`/svc${i}/items/{id}`, { id: `${i}` }));
      assert.deepEqual(
        m('PUT', `/svc${i}/items/${i}/tags/x/y`),
        matched(`/svc${i}/items/{id}/tags/**`, { id: `${i}` }),
      );
      assert.deepEqual(
        m('DELETE', `/svc${i}/items/${i}`),
        matched(`/svc${i}/{kind}/{id}`, { kind: 'items', id: `${i}` }),
      );
      assert.deepEqual(m('PATCH', `/svc${i}/other/1`), notAllowed('DELETE', 'GET'));
      assert.deepEqual(m('GET', `/svc${i}x/items`), unmatched);
    }
  });
  it('stays bounded on a deep ladder of literals and params and on very long paths', () => {
    const specs: Spec[] = [];
    const depth = 60;
    for (let k = 0; k <= depth; k++) {
      const parts = Array.from({ length: depth }, (_, j) => (j < k ? 'x' : `{p${j}}`));
      specs.push([`/${parts.join('/')}/end`, ['GET']]);
    }
    const matcher = new RouteMatcher(routes(specs));
    const start = performance.now();
    assert.deepEqual(matcher.match('GET', [...Array(depth).fill('x'), 'nope']), unmatched);
    assert.deepEqual(matcher.match('GET', Array(100_000).fill('x')), unmatched);
    assert.ok(performance.now() - start < 1000);
  });
});

describe('methodsOverlap', () => {
  const cases: [a: string[], b: string[], overlap: boolean][] = [
    [['GET'], ['GET', 'POST'], true],
    [['GET'], ['HEAD'], false],
    [['GET'], ['get'], false],
    [[], ['GET'], false],
  ];
  for (const [a, b, overlap] of cases) {
    it(`${a} / ${b} → ${overlap}`, () => {
      assert.equal(methodsOverlap(a, b), overlap);
      assert.equal(methodsOverlap(b, a), overlap);
    });
  }
});

// ---- brute-force reference: match each route independently, then rank by specificity ----

const METHODS = ['GET', 'POST', 'DELETE'];

function reference(table: readonly MatchableRoute<string>[], method: string, path: readonly string[]) {
  const hits = table.flatMap((route, index) => {
    const params = matchOne(route.template, path);
    return params ? [{ route, index, params }] : [];
  });
  if (hits.length === 0) return unmatched;
  const allowed = hits.filter((h) => h.route.methods.includes(method));
  if (allowed.length === 0) return notAllowed(...[...new Set(hits.flatMap((h) => h.route.methods))].sort());
  allowed.sort((a, b) => compare(a.route.template, b.route.template) || a.index - b.index);
  const best = allowed[0];
  return best && matched(best.route.value, best.params);
}

function matchOne(t: PathTemplate, path: readonly string[]): Record<string, string> | undefined {
  const params: Record<string, string> = Object.create(null);
  for (const [i, seg] of t.segments.entries()) {
    if (seg.kind === 'rest') return params;
    const value = path[i];
    if (value === undefined) return undefined;
    if (seg.kind === 'literal' && seg.value !== value) return undefined;
    if (seg.kind === 'param') {
      if (value === '') return undefined;
      params[seg.name] = decodeURIComponent(value);
    }
  }
  return t.segments.length === path.length ? params : undefined;
}

/** Segment-by-segment rank; a template ending where the path ends ranks with literals. */
function compare(a: PathTemplate, b: PathTemplate): number {
  const rank = (t: PathTemplate, i: number) => {
    const kind = t.segments[i]?.kind;
    return kind === 'rest' ? 2 : kind === 'param' ? 1 : 0;
  };
  for (let i = 0; i < Math.max(a.segments.length, b.segments.length); i++) {
    const d = rank(a, i) - rank(b, i);
    if (d !== 0) return d;
  }
  return 0;
}

function randomRoutes(random: () => number): MatchableRoute<string>[] {
  const specs: Spec[] = [];
  const count = 1 + Math.floor(random() * 8);
  for (let r = 0; r < count; r++) {
    const length = Math.floor(random() * 4);
    const parts = Array.from({ length }, (_, j) => pick(random, ['a', 'b', `{p${j}}`, `{q${j}}`]));
    const tail = pick(random, ['', '/', '/**']);
    const methods = METHODS.filter(() => random() < 0.5);
    specs.push([`/${parts.join('/')}${parts.length > 0 ? tail : tail.slice(1)}`, methods, `r${r}`]);
  }
  return routes(specs);
}

function randomPath(random: () => number): string[] {
  const length = 1 + Math.floor(random() * 4);
  return Array.from({ length }, () => pick(random, ['a', 'b', 'c', '', '%41']));
}

function pick<T>(random: () => number, items: readonly T[]): T {
  const item = items[Math.floor(random() * items.length)];
  if (item === undefined) throw new Error('empty choice');
  return item;
}

function rotate<T>(items: readonly T[], by: number): T[] {
  const k = by % Math.max(items.length, 1);
  return [...items.slice(k), ...items.slice(0, k)];
}

/** Small seeded PRNG so the random comparison is reproducible. */
function mulberry32(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
