/**
 * Safe parsing of a JSON request body before schema validation. A linear
 * pre-scan over the raw text (tracking strings and escapes, never recursing)
 * enforces what JSON.parse cannot: a nesting depth limit (a 10,000-deep
 * document is refused, never a stack overflow in a later recursive step),
 * no duplicate keys in an object (two parsers could read two different
 * values), and no `__proto__` key (harmless to JSON.parse, which defines own
 * properties, but a prototype-pollution gadget for naive merges in the app).
 * Only then does JSON.parse build the value; it never invokes setters, so
 * `constructor` / `prototype` keys are plain own data properties.
 */

/** Default deepest nesting of objects and arrays accepted. */
export const DEFAULT_MAX_DEPTH = 64;

/** Where and why the body is not acceptable JSON; never quotes the body's values. */
export interface JsonProblem {
  /** JSON Pointer to the offending place ('' for the document). */
  pointer: string;
  message: string;
}

export type JsonParseResult = { ok: true; value: unknown } | { ok: false; problem: JsonProblem };

interface Frame {
  object: boolean;
  /** Keys seen so far (objects only). */
  keys: Set<string> | null;
  /** Current key (objects; null before the first) or element index (arrays), for pointers. */
  at: string | null;
  index: number;
  /** In an object: the next string is a key. */
  expectKey: boolean;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const COMMA = 0x2c;
const COLON = 0x3a;

/** Escapes a reference token for a JSON Pointer (RFC 6901). */
export function pointerToken(token: string): string {
  return token.replaceAll('~', '~0').replaceAll('/', '~1');
}

function pointerOf(stack: readonly Frame[]): string {
  let out = '';
  for (const f of stack) if (f.at !== null) out += `/${pointerToken(f.at)}`;
  return out;
}

/** Index just past the closing quote of the string starting at `start` (a quote), or -1. */
function stringEnd(text: string, start: number): number {
  let i = start + 1;
  for (;;) {
    const q = text.indexOf('"', i);
    if (q < 0) return -1;
    let backslashes = 0;
    for (let j = q - 1; j > start && text.charCodeAt(j) === BACKSLASH; j--) backslashes++;
    if (backslashes % 2 === 0) return q + 1;
    i = q + 1;
  }
}

function keyOf(raw: string): string | null {
  if (!raw.includes('\\')) return raw.slice(1, -1);
  try {
    const key: unknown = JSON.parse(raw);
    return typeof key === 'string' ? key : null;
  } catch {
    return null;
  }
}

const INVALID: JsonParseResult = { ok: false, problem: { pointer: '', message: 'must be valid JSON' } };

/**
 * Structural pre-scan: depth, duplicate and forbidden keys. Returns null when
 * the text passes (it may still be invalid JSON: JSON.parse decides that).
 */
function preScan(text: string, maxDepth: number): JsonProblem | null {
  const stack: Frame[] = [];
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    const top = stack[stack.length - 1];
    if (c === QUOTE) {
      const end = stringEnd(text, i);
      if (end < 0) return { pointer: '', message: 'must be valid JSON' };
      if (top?.object && top.expectKey && top.keys) {
        const key = keyOf(text.slice(i, end));
        if (key === null) return { pointer: '', message: 'must be valid JSON' };
        top.at = key;
        if (key === '__proto__')
          return { pointer: pointerOf(stack), message: 'must not use the key __proto__' };
        if (top.keys.has(key)) return { pointer: pointerOf(stack), message: 'must not repeat a key' };
        top.keys.add(key);
        top.expectKey = false;
      }
      i = end - 1;
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (stack.length >= maxDepth) {
        return { pointer: pointerOf(stack), message: `must not nest deeper than ${maxDepth} levels` };
      }
      const object = c === OPEN_BRACE;
      stack.push({
        object,
        keys: object ? new Set() : null,
        at: object ? null : '0',
        index: 0,
        expectKey: object,
      });
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      if (stack.pop() === undefined) return { pointer: '', message: 'must be valid JSON' };
    } else if (c === COMMA && top) {
      if (top.object) top.expectKey = true;
      else {
        top.index++;
        top.at = String(top.index);
      }
    } else if (c === COLON && top?.object) {
      top.expectKey = false;
    }
  }
  return null;
}

/**
 * Parses a JSON body safely (see the module comment). Invalid JSON, too deep
 * nesting, a repeated key or a `__proto__` key give a problem with a pointer;
 * numbers beyond the double range become ±Infinity (which fail `type: number`).
 */
export function parseJsonBody(text: string, options: { maxDepth?: number } = {}): JsonParseResult {
  const problem = preScan(text, options.maxDepth ?? DEFAULT_MAX_DEPTH);
  if (problem) return { ok: false, problem };
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch {
    return INVALID;
  }
}

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

/** Decodes a body as strict UTF-8 (RFC 8259 §8.1) and parses it; invalid UTF-8 is invalid JSON. */
export function parseJsonBytes(bytes: Uint8Array, options: { maxDepth?: number } = {}): JsonParseResult {
  let text: string;
  try {
    text = UTF8.decode(bytes);
  } catch {
    return { ok: false, problem: { pointer: '', message: 'must be valid UTF-8 JSON' } };
  }
  return parseJsonBody(text, options);
}
