/**
 * Tests for request-target normalization: every vector of testdata/normalize-vectors.json, tables for
 * normalizePath and decodeSegment, and seeded randomized properties (idempotence, canonical output,
 * UTF-8 validation agreeing with decodeURIComponent).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import {
  decodeSegment,
  type NormalizeErrorCode,
  type NormalizeResult,
  normalizePath,
  normalizeTarget,
} from './normalize.ts';

interface Vector {
  case: string;
  method: string;
  target: string;
  path?: string;
  query?: string | null;
  error?: NormalizeErrorCode;
}

const ERROR_CODES: ReadonlySet<string> = new Set<NormalizeErrorCode>([
  'ERR_PATH_NOT_ORIGIN_FORM',
  'ERR_PATH_FRAGMENT',
  'ERR_PATH_ENCODED_SLASH',
  'ERR_PATH_FORBIDDEN_CHAR',
  'ERR_PATH_ABOVE_ROOT',
  'ERR_PATH_BAD_ESCAPE',
  'ERR_PATH_INVALID_UTF8',
  'ERR_PATH_PARAMETER',
]);

function isErrorCode(value: unknown): value is NormalizeErrorCode {
  return typeof value === 'string' && ERROR_CODES.has(value);
}

function loadVectors(): Vector[] {
  const raw: unknown = JSON.parse(
    readFileSync(new URL('./testdata/normalize-vectors.json', import.meta.url), 'utf8'),
  );
  assert.ok(Array.isArray(raw), 'vector file must hold an array');
  return raw.map((entry: unknown, index): Vector => {
    assert.ok(typeof entry === 'object' && entry !== null, `vector ${index} must be an object`);
    const e = entry as Record<string, unknown>;
    assert.equal(typeof e.case, 'string', `vector ${index}: case`);
    assert.equal(typeof e.method, 'string', `vector ${index}: method`);
    assert.equal(typeof e.target, 'string', `vector ${index}: target`);
    const v: Vector = { case: String(e.case), method: String(e.method), target: String(e.target) };
    if (e.error !== undefined) {
      assert.ok(isErrorCode(e.error), `vector ${index}: unknown error code`);
      assert.equal(e.path, undefined, `vector ${index}: error vectors have no path`);
      v.error = e.error;
    } else {
      assert.equal(typeof e.path, 'string', `vector ${index}: ok vectors need a path`);
      v.path = String(e.path);
      assert.ok(e.query === undefined || e.query === null || typeof e.query === 'string');
      v.query = typeof e.query === 'string' ? e.query : null;
    }
    return v;
  });
}

const vectors = loadVectors();

/** Asserts a result is a success and returns its value, narrowing for the caller. */
function expectOk(result: NormalizeResult, label: string) {
  if (!result.ok) assert.fail(`${label}: expected ok, got ${result.code} (${result.detail})`);
  return result.value;
}

function expectError(result: NormalizeResult, code: NormalizeErrorCode, label: string, input: string): void {
  if (result.ok) assert.fail(`${label}: expected ${code}, got path ${JSON.stringify(result.value.path)}`);
  assert.equal(result.code, code, label);
  assertSafeDetail(result.detail, input);
}

/** Details are fixed printable phrases that never echo the input. */
function assertSafeDetail(detail: string, input: string): void {
  assert.match(detail, /^[ -~]+$/);
  if (input.length > 4) assert.ok(!detail.includes(input), 'detail must not echo the target');
}

/** The canonical-output invariants every successful origin-form result satisfies. */
function assertCanonical(path: string, segments: string[]): void {
  assert.equal(path[0], '/');
  assert.deepEqual(segments, path.slice(1).split('/'));
  for (const [i, s] of segments.entries()) {
    assert.ok(s !== '.' && s !== '..', 'no dot segments left');
    assert.ok(s !== '' || i === segments.length - 1, 'no empty segment except a trailing one');
    assert.notEqual(decodeSegment(s), null, 'every segment decodes');
  }
  for (const m of path.matchAll(/%(..)/g)) {
    assert.match(m[1] ?? '', /^[0-9A-F]{2}$/, 'escapes are uppercase hex');
    const byte = Number.parseInt(m[1] ?? '', 16);
    assert.ok(!/[A-Za-z0-9\-._~]/.test(String.fromCharCode(byte)), 'unreserved escapes are decoded');
  }
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    assert.ok(c > 0x20 && c < 0x7f && !'\\;#?'.includes(path.charAt(i)), 'only allowed raw characters');
  }
}

describe('normalizeTarget vectors', () => {
  test('the table is thorough and its cases are unique', () => {
    assert.ok(vectors.length >= 60);
    assert.equal(new Set(vectors.map((v) => v.case)).size, vectors.length);
    const codes = new Set(vectors.map((v) => v.error).filter((c) => c !== undefined));
    assert.deepEqual([...codes].sort(), [...ERROR_CODES].sort(), 'every error code has a vector');
  });

  for (const v of vectors) {
    test(v.case, () => {
      const result = normalizeTarget(v.method, v.target);
      if (v.error !== undefined) {
        expectError(result, v.error, v.case, v.target);
        return;
      }
      const value = expectOk(result, v.case);
      assert.equal(value.path, v.path);
      assert.equal(value.query, v.query);
      if (value.asterisk) {
        assert.equal(v.method, 'OPTIONS');
        assert.deepEqual(value.segments, []);
      } else {
        assertCanonical(value.path, value.segments);
      }
    });
  }
});

describe('idempotence over the ok vectors', () => {
  for (const v of vectors) {
    if (v.error !== undefined || v.path === undefined || v.path === '*') continue;
    const path = v.path;
    test(v.case, () => {
      const again = expectOk(normalizeTarget(v.method, path), v.case);
      assert.equal(again.path, path);
      assert.equal(again.query, null);
      assert.equal(expectOk(normalizePath(path), v.case).path, path);
      if (v.query !== undefined && v.query !== null) {
        const withQuery = expectOk(normalizeTarget(v.method, `${path}?${v.query}`), v.case);
        assert.equal(withQuery.path, path);
        assert.equal(withQuery.query, v.query);
      }
    });
  }
});

describe('normalizeTarget details', () => {
  test('segments for root, plain and trailing-slash paths', () => {
    assert.deepEqual(expectOk(normalizeTarget('GET', '/'), 'root').segments, ['']);
    assert.deepEqual(expectOk(normalizeTarget('GET', '/a/b'), 'plain').segments, ['a', 'b']);
    assert.deepEqual(expectOk(normalizeTarget('GET', '/a/'), 'trailing').segments, ['a', '']);
    assert.deepEqual(expectOk(normalizeTarget('GET', '/a/./'), 'slow trailing').segments, ['a', '']);
    assert.deepEqual(expectOk(normalizeTarget('GET', '/x/../'), 'slow root').segments, ['']);
  });

  test('asterisk-form result', () => {
    assert.deepEqual(normalizeTarget('OPTIONS', '*'), {
      ok: true,
      value: { path: '*', query: null, segments: [], asterisk: true },
    });
    assert.equal(expectOk(normalizeTarget('GET', '/a'), 'plain').asterisk, false);
  });

  test('method is compared exactly for the asterisk-form', () => {
    expectError(normalizeTarget('options', '*'), 'ERR_PATH_NOT_ORIGIN_FORM', 'lowercase method', '*');
  });

  test('path errors are reported before query errors', () => {
    expectError(normalizeTarget('GET', '/a%2F?x=%00'), 'ERR_PATH_ENCODED_SLASH', 'order', '/a%2F?x=%00');
  });

  test('query escapes that only look like controls are allowed', () => {
    for (const query of ['x=%0', 'x=%0B', 'x=%01', 'x=%10', 'x=%0%0']) {
      assert.equal(expectOk(normalizeTarget('GET', `/a?${query}`), query).query, query);
    }
  });

  test('a long clean path is returned as the same string', () => {
    const path = `/${'segment/'.repeat(500)}end`;
    assert.equal(expectOk(normalizeTarget('GET', path), 'long').path, path);
  });
});

describe('normalizePath', () => {
  const okCases: [string, string][] = [
    ['/api/v1/{name}', '/api/v1/{name}'],
    ['/api/v1/namespaces/{ns}/pods/{name}', '/api/v1/namespaces/{ns}/pods/{name}'],
    ['/files/**', '/files/**'],
    ['/', '/'],
    ['/a/./b/../c/', '/a/c/'],
    ['//a//b', '/a/b'],
    ['/x/%7euser', '/x/~user'],
    ['/x/%c3%a9', '/x/%C3%A9'],
    ['/Case/Kept', '/Case/Kept'],
  ];
  for (const [input, expected] of okCases) {
    test(`${JSON.stringify(input)} → ${JSON.stringify(expected)}`, () => {
      const value = expectOk(normalizePath(input), input);
      assert.equal(value.path, expected);
      assert.equal(value.query, null);
      assert.equal(value.asterisk, false);
      assertCanonical(value.path, value.segments);
    });
  }

  const errorCases: [string, NormalizeErrorCode][] = [
    ['', 'ERR_PATH_NOT_ORIGIN_FORM'],
    ['*', 'ERR_PATH_NOT_ORIGIN_FORM'],
    ['api/v1', 'ERR_PATH_NOT_ORIGIN_FORM'],
    ['http://x/a', 'ERR_PATH_NOT_ORIGIN_FORM'],
    ['/a#b', 'ERR_PATH_FRAGMENT'],
    ['/a?x=1', 'ERR_PATH_FORBIDDEN_CHAR'],
    ['/a?', 'ERR_PATH_FORBIDDEN_CHAR'],
    ['/a%2fb', 'ERR_PATH_ENCODED_SLASH'],
    ['/a b', 'ERR_PATH_FORBIDDEN_CHAR'],
    ['/..', 'ERR_PATH_ABOVE_ROOT'],
    ['/a%zz', 'ERR_PATH_BAD_ESCAPE'],
    ['/a%C0%AF', 'ERR_PATH_INVALID_UTF8'],
    ['/a;b', 'ERR_PATH_PARAMETER'],
  ];
  for (const [input, code] of errorCases) {
    test(`${JSON.stringify(input)} → ${code}`, () => {
      expectError(normalizePath(input), code, input, input);
    });
  }
});

describe('decodeSegment', () => {
  const cases: [string, string | null][] = [
    ['', ''],
    ['abc', 'abc'],
    ['%41%42', 'AB'],
    ['a%20b', 'a b'],
    ['%3A', ':'],
    ['%2F', '/'],
    ['%252F', '%2F'],
    ['caf%C3%A9', 'café'],
    ['%E2%82%AC', '€'],
    ['%F0%9F%98%80', '😀'],
    ['%F4%8F%BF%BF', '\u{10FFFF}'],
    ['x%C3%A9y%E2%82%ACz', 'xéy€z'],
    ['%C0%AF', null],
    ['%C0%80', null],
    ['%E0%80%AF', null],
    ['%ED%A0%80', null],
    ['%F4%90%80%80', null],
    ['%FF', null],
    ['%80', null],
    ['%E2%82', null],
    ['%E2%82a', null],
    ['%C3%41', null],
    ['%G1', null],
    ['%4', null],
    ['%', null],
  ];
  for (const [input, expected] of cases) {
    test(`${JSON.stringify(input)} → ${JSON.stringify(expected)}`, () => {
      assert.equal(decodeSegment(input), expected);
    });
  }
});

/** Small seeded PRNG (mulberry32) so randomized properties are reproducible. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function hex2(byte: number): string {
  return byte.toString(16).padStart(2, '0');
}

describe('randomized properties', () => {
  // Each piece stresses one rule or an interaction between rules; ' ' is a raw space.
  const ATOMS = [
    ...'/ / / a B . .. %2e %2E %41 %7e %3a %25 %2F %5c %C3%A9 %c3 %a9 %E2%82%AC %FF %80 %0A %00'.split(' '),
    ...'% %G ; \\ # \u00e9 - ~ {x} * ? ?q=/.. ='.split(' '),
    ' ',
  ];

  test('results are canonical, idempotent and never echo the target', () => {
    const random = prng(0x7011_6a7e);
    for (let n = 0; n < 20000; n++) {
      let target = '/';
      const len = Math.floor(random() * 12);
      for (let i = 0; i < len; i++) target += ATOMS[Math.floor(random() * ATOMS.length)] ?? '';
      const result = normalizeTarget('GET', target);
      if (!result.ok) {
        assertSafeDetail(result.detail, target);
        continue;
      }
      const { path, segments, query } = result.value;
      assertCanonical(path, segments);
      assert.equal(query, target.includes('?') ? target.slice(target.indexOf('?') + 1) : null);
      assert.equal(expectOk(normalizePath(path), target).path, path);
    }
  });

  test('UTF-8 validation in paths agrees with decodeURIComponent', () => {
    const random = prng(0x0bad_f00d);
    // Bytes whose escapes are refused or decoded for other reasons are left out so only UTF-8 decides.
    const excluded = new Set([0x00, 0x0a, 0x0d, 0x2e, 0x2f, 0x5c]);
    const interesting = [0x41, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xed];
    interesting.push(0xee, 0xef, 0xf0, 0xf1, 0xf3, 0xf4, 0xf5, 0xff);
    let accepted = 0;
    for (let n = 0; n < 20000; n++) {
      let segment = '';
      const len = 1 + Math.floor(random() * 5);
      for (let i = 0; i < len; i++) {
        let byte = random() < 0.7 ? (interesting[Math.floor(random() * interesting.length)] ?? 0) : 0;
        if (byte === 0) byte = Math.floor(random() * 256);
        if (excluded.has(byte)) byte = 0x41;
        segment += `%${random() < 0.5 ? hex2(byte) : hex2(byte).toUpperCase()}`;
      }
      let expected: string | null;
      try {
        expected = decodeURIComponent(segment);
      } catch {
        expected = null;
      }
      assert.equal(decodeSegment(segment), expected, segment);
      const result = normalizeTarget('GET', `/${segment}`);
      if (expected === null) {
        expectError(result, 'ERR_PATH_INVALID_UTF8', segment, segment);
      } else {
        accepted++;
        const value = expectOk(result, segment);
        assert.equal(value.segments.length, 1);
        assert.equal(decodeSegment(value.segments[0] ?? ''), expected, segment);
      }
    }
    assert.ok(accepted > 1000, 'the generator produces valid sequences too');
  });
});
