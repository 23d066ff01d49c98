/**
 * Request-target normalization: turns the raw HTTP request target into the one canonical path that
 * policy matching sees and the upstream is served ("what was authorized is what is served"), and
 * refuses targets that different servers could read differently. The rules are the contract's and
 * are spelled out for users in docs/path-normalization.md; the vectors in
 * testdata/normalize-vectors.json pin them down.
 *
 * Pure and allocation-light: it runs on every request, so clean paths take a single scan with no
 * copying, and everything else a second linear pass that builds the result.
 */

/** Why a request target was refused; every code maps to a 400 response. */
export type NormalizeErrorCode =
  | 'ERR_PATH_NOT_ORIGIN_FORM'
  | 'ERR_PATH_FRAGMENT'
  | 'ERR_PATH_ENCODED_SLASH'
  | 'ERR_PATH_FORBIDDEN_CHAR'
  | 'ERR_PATH_ABOVE_ROOT'
  | 'ERR_PATH_BAD_ESCAPE'
  | 'ERR_PATH_INVALID_UTF8'
  | 'ERR_PATH_PARAMETER';

/** A request target after normalization. */
export interface NormalizedTarget {
  /** The normalized path: what policy matches against and what the upstream receives. */
  path: string;
  /** Everything after the first `?`, verbatim; null when the target has no `?`. */
  query: string | null;
  /** path split on '/', without the leading empty segment; '/' → [''] */
  segments: string[];
  /** True only for `OPTIONS *`, whose path is '*' and segments []. */
  asterisk: boolean;
}

/** Outcome of a normalization: the target, or why it must be refused with 400. */
export type NormalizeResult =
  | { ok: true; value: NormalizedTarget }
  | { ok: false; code: NormalizeErrorCode; detail: string };

// Fixed phrases only: the raw target can carry attacker-chosen bytes and must never reach logs
// or response bodies through an error detail.
const DETAIL_NOT_ORIGIN = 'request target is not origin-form';
const DETAIL_ASTERISK = 'asterisk-form target is only allowed with OPTIONS';
const DETAIL_FRAGMENT = 'fragment ("#") in request target';
const DETAIL_ENCODED_SLASH = 'encoded "/" or "\\" in path';
const DETAIL_CONTROL = 'control, space or non-ASCII character in path';
const DETAIL_BACKSLASH = 'raw "\\" in path';
const DETAIL_ENCODED_CONTROL = 'encoded NUL, CR or LF in path';
const DETAIL_QUERY_CONTROL = 'control, space or non-ASCII character in query';
const DETAIL_QUERY_ENCODED_CONTROL = 'encoded NUL, CR or LF in query';
const DETAIL_POLICY_QUERY = 'query string not allowed in a policy path';
const DETAIL_ABOVE_ROOT = '".." segment climbs above the root';
const DETAIL_BAD_ESCAPE = '"%" not followed by two hex digits';
const DETAIL_INVALID_UTF8 = 'percent-encoded bytes are not valid UTF-8';
const DETAIL_PARAMETER = 'path parameter (";") in path';

const SLASH = 0x2f;
const DOT = 0x2e;
const PERCENT = 0x25;
const SEMICOLON = 0x3b;
const BACKSLASH = 0x5c;
const HEX = '0123456789ABCDEF';

function fail(code: NormalizeErrorCode, detail: string): NormalizeResult {
  return { ok: false, code, detail };
}

function success(path: string, query: string | null, segments: string[]): NormalizeResult {
  return { ok: true, value: { path, query, segments, asterisk: false } };
}

/**
 * Normalizes the request target of one request. `method` only matters for the asterisk-form
 * (`OPTIONS *`); every other target must be origin-form. Errors are checked in a fixed order
 * (form, fragment, path left to right, query), so one target always yields the same code.
 */
export function normalizeTarget(method: string, target: string): NormalizeResult {
  if (target === '*') {
    return method === 'OPTIONS'
      ? { ok: true, value: { path: '*', query: null, segments: [], asterisk: true } }
      : fail('ERR_PATH_NOT_ORIGIN_FORM', DETAIL_ASTERISK);
  }
  if (target.charCodeAt(0) !== SLASH) return fail('ERR_PATH_NOT_ORIGIN_FORM', DETAIL_NOT_ORIGIN);
  if (target.includes('#')) return fail('ERR_PATH_FRAGMENT', DETAIL_FRAGMENT);
  const q = target.indexOf('?');
  if (q === -1) return normalizeAbsolutePath(target, null);
  const query = target.slice(q + 1);
  const result = normalizeAbsolutePath(target.slice(0, q), query);
  if (!result.ok) return result;
  const queryError = checkQuery(query);
  return queryError ?? result;
}

/**
 * Normalizes one literal path written in a policy (no query allowed): same rules, used by the route
 * compiler so templates compare with normalized request paths. Returns the same result type.
 */
export function normalizePath(path: string): NormalizeResult {
  if (path.charCodeAt(0) !== SLASH) return fail('ERR_PATH_NOT_ORIGIN_FORM', DETAIL_NOT_ORIGIN);
  if (path.includes('#')) return fail('ERR_PATH_FRAGMENT', DETAIL_FRAGMENT);
  if (path.includes('?')) return fail('ERR_PATH_FORBIDDEN_CHAR', DETAIL_POLICY_QUERY);
  return normalizeAbsolutePath(path, null);
}

/**
 * Fully percent-decodes one normalized segment (for binding params); returns null on invalid UTF-8.
 * Also returns null for a malformed escape, which a normalized segment never contains. Decodes
 * exactly once: '%252F' gives '%2F'.
 */
export function decodeSegment(segment: string): string | null {
  if (!segment.includes('%')) return segment;
  const n = segment.length;
  let out = '';
  let chunk = 0;
  let need = 0;
  let lo = 0x80;
  let hi = 0xbf;
  let codePoint = 0;
  for (let i = 0; i < n; i++) {
    if (segment.charCodeAt(i) !== PERCENT) {
      if (need > 0) return null;
      continue;
    }
    const byte = escapedByte(segment, i);
    if (byte < 0) return null;
    out += segment.slice(chunk, i);
    chunk = i + 3;
    i += 2;
    if (need > 0) {
      if (byte < lo || byte > hi) return null;
      codePoint = (codePoint << 6) | (byte & 0x3f);
      lo = 0x80;
      hi = 0xbf;
      if (--need === 0) out += String.fromCodePoint(codePoint);
    } else if (byte < 0x80) {
      out += String.fromCharCode(byte);
    } else {
      const lead = utf8Lead(byte);
      if (lead < 0) return null;
      need = lead >>> 16;
      lo = (lead >>> 8) & 0xff;
      hi = lead & 0xff;
      codePoint = byte & (0x7f >>> (need + 1));
    }
  }
  if (need > 0) return null;
  return out + segment.slice(chunk);
}

/** Value of the `%XX` escape starting at `i`, or -1 when it is not `%` followed by two hex digits. */
function escapedByte(s: string, i: number): number {
  if (i + 2 >= s.length) return -1;
  const h = hexValue(s.charCodeAt(i + 1));
  const l = hexValue(s.charCodeAt(i + 2));
  return h < 0 || l < 0 ? -1 : (h << 4) | l;
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/** RFC 3986 §2.3 unreserved: ALPHA / DIGIT / "-" / "." / "_" / "~". */
function isUnreserved(b: number): boolean {
  return (
    (b >= 0x61 && b <= 0x7a) ||
    (b >= 0x41 && b <= 0x5a) ||
    (b >= 0x30 && b <= 0x39) ||
    b === 0x2d ||
    b === DOT ||
    b === 0x5f ||
    b === 0x7e
  );
}

/**
 * For a UTF-8 lead byte, packs (continuation bytes needed << 16 | lowest << 8 | highest allowed
 * value of the first continuation byte), or -1 when the byte cannot start a sequence. The narrowed
 * ranges after E0, ED, F0 and F4 are what rule out overlong forms, surrogates and code points above
 * U+10FFFF (RFC 3629 §4); C0, C1 and F5–FF are never valid.
 */
function utf8Lead(b: number): number {
  if (b >= 0xc2 && b <= 0xdf) return 0x180bf;
  if (b === 0xe0) return 0x2a0bf;
  if (b === 0xed) return 0x2809f;
  if (b >= 0xe1 && b <= 0xef) return 0x280bf;
  if (b === 0xf0) return 0x390bf;
  if (b >= 0xf1 && b <= 0xf3) return 0x380bf;
  if (b === 0xf4) return 0x3808f;
  return -1;
}

/**
 * True when `path` (starting with '/') is already normalized and allowed: no escapes, no repeated
 * slash, no '.' or '..' segment, no character that needs refusing. Most real paths are, and then
 * they are returned as they are.
 */
function isClean(path: string): boolean {
  const n = path.length;
  let segStart = 1;
  let dots = 0;
  for (let i = 1; i < n; i++) {
    const c = path.charCodeAt(i);
    if (c === SLASH) {
      const len = i - segStart;
      if (len === 0 || (dots === len && len <= 2)) return false;
      segStart = i + 1;
      dots = 0;
    } else if (c === DOT) {
      dots++;
    } else if (c <= 0x20 || c >= 0x7f || c === PERCENT || c === SEMICOLON || c === BACKSLASH) {
      return false;
    }
  }
  const len = n - segStart;
  // The final segment may be empty (trailing slash) but not a dot segment.
  return len === 0 || dots !== len || len > 2;
}

/** Normalizes an origin-form path (first char '/', no '?' or '#'); `query` is passed through. */
function normalizeAbsolutePath(path: string, query: string | null): NormalizeResult {
  if (isClean(path)) return success(path, query, path.slice(1).split('/'));

  const n = path.length;
  const stack: string[] = [];
  let trailingSlash = false;
  let segment = '';
  let chunk = 1;
  // UTF-8 validation state across a run of consecutive escapes (RFC 3629 table of well-formed bytes).
  let need = 0;
  let lo = 0x80;
  let hi = 0xbf;

  for (let i = 1; i <= n; i++) {
    const c = i < n ? path.charCodeAt(i) : SLASH;
    if (c === PERCENT) {
      const byte = escapedByte(path, i);
      if (byte < 0) return fail('ERR_PATH_BAD_ESCAPE', DETAIL_BAD_ESCAPE);
      if (byte === SLASH || byte === BACKSLASH) return fail('ERR_PATH_ENCODED_SLASH', DETAIL_ENCODED_SLASH);
      if (byte === 0x00 || byte === 0x0a || byte === 0x0d) {
        return fail('ERR_PATH_FORBIDDEN_CHAR', DETAIL_ENCODED_CONTROL);
      }
      if (need > 0) {
        if (byte < lo || byte > hi) return fail('ERR_PATH_INVALID_UTF8', DETAIL_INVALID_UTF8);
        need--;
        lo = 0x80;
        hi = 0xbf;
      } else if (byte >= 0x80) {
        const lead = utf8Lead(byte);
        if (lead < 0) return fail('ERR_PATH_INVALID_UTF8', DETAIL_INVALID_UTF8);
        need = lead >>> 16;
        lo = (lead >>> 8) & 0xff;
        hi = lead & 0xff;
      }
      if (isUnreserved(byte)) {
        segment += path.slice(chunk, i) + String.fromCharCode(byte);
        chunk = i + 3;
      } else if (isLowerHex(path.charCodeAt(i + 1)) || isLowerHex(path.charCodeAt(i + 2))) {
        segment += `${path.slice(chunk, i)}%${HEX.charAt(byte >>> 4)}${HEX.charAt(byte & 0xf)}`;
        chunk = i + 3;
      }
      // An escape already in canonical form stays inside the current chunk: no copy needed.
      i += 2;
      continue;
    }
    if (need > 0) return fail('ERR_PATH_INVALID_UTF8', DETAIL_INVALID_UTF8);
    if (c === SLASH) {
      segment += path.slice(chunk, i);
      chunk = i + 1;
      const last = i === n;
      if (segment === '' || segment === '.') {
        // Empty segments come from repeated slashes and merge away; '.' is the current directory.
        if (last) trailingSlash = true;
      } else if (segment === '..') {
        if (stack.pop() === undefined) return fail('ERR_PATH_ABOVE_ROOT', DETAIL_ABOVE_ROOT);
        if (last) trailingSlash = true;
      } else {
        stack.push(segment);
      }
      segment = '';
      continue;
    }
    if (c <= 0x20 || c >= 0x7f) return fail('ERR_PATH_FORBIDDEN_CHAR', DETAIL_CONTROL);
    if (c === BACKSLASH) return fail('ERR_PATH_FORBIDDEN_CHAR', DETAIL_BACKSLASH);
    if (c === SEMICOLON) return fail('ERR_PATH_PARAMETER', DETAIL_PARAMETER);
  }

  if (stack.length === 0) return success('/', query, ['']);
  let normalized = `/${stack.join('/')}`;
  if (trailingSlash) {
    normalized += '/';
    stack.push('');
  }
  return success(normalized, query, stack);
}

function isLowerHex(c: number): boolean {
  return c >= 0x61 && c <= 0x66;
}

/**
 * Checks the query, which is otherwise forwarded verbatim: no raw control, space or non-ASCII
 * characters, and no encoded NUL, CR or LF (header injection and truncation in upstreams that
 * decode the query into strings). Returns the failure, or null when the query is acceptable.
 */
function checkQuery(query: string): NormalizeResult | null {
  const n = query.length;
  for (let i = 0; i < n; i++) {
    const c = query.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f) return fail('ERR_PATH_FORBIDDEN_CHAR', DETAIL_QUERY_CONTROL);
    if (c === PERCENT && query.charCodeAt(i + 1) === 0x30) {
      // '| 0x20' folds 'A' and 'D' to lower case and leaves '0' alone.
      const d = query.charCodeAt(i + 2) | 0x20;
      if (d === 0x30 || d === 0x61 || d === 0x64) {
        return fail('ERR_PATH_FORBIDDEN_CHAR', DETAIL_QUERY_ENCODED_CONTROL);
      }
    }
  }
  return null;
}
