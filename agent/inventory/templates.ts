/**
 * Collapses observed request paths into path templates for the API inventory:
 * segments that look like identifiers become `{param}` so `/v1/orders/123`
 * and `/v1/orders/456` are one template, `/v1/orders/{orderId}`.
 *
 * A segment is an identifier when it is
 * - numeric: only digits (`123`);
 * - a UUID (`0b6b3c9e-7d1f-4c4e-9c55-2f0e6d1a7b33`, any case);
 * - hex: 8 or more hex digits with at least one decimal digit (`5f3a9c0b`),
 *   so all-letter words such as `deadbeef` or `accede` stay literal;
 * - a long opaque token: 20 or more of `[A-Za-z0-9_-]` with at least one digit
 *   (`tok_8fJ2kQ9xLm3Np7Rs4Tv`).
 * Everything else (`v1`, `orders`, `me`, `oauth2`, short codes) stays literal.
 *
 * Parameters are named after the preceding literal segment, singularized and
 * camelCased, with an `Id` suffix: `/v1/orders/{orderId}`,
 * `/user-profiles/{userProfileId}`; when there is no usable preceding word
 * (the path starts with an identifier, two identifiers follow each other, the
 * word is not made of letters) the name is `id`. Names are unique within a
 * template (`{id}`, `{id2}`, ...). Names depend only on the literal segments,
 * so every path of one shape gets the same template.
 *
 * Pure: no I/O.
 */

const NUMERIC = /^\d+$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const HEX = /^(?=.*\d)[0-9a-f]{8,}$/i;
const TOKEN = /^(?=.*\d)[A-Za-z0-9_-]{20,}$/;
const WORD = /^[A-Za-z][A-Za-z0-9]*(?:[-_][A-Za-z0-9]+)*$/;

/** Why a segment becomes a parameter, or null when it stays literal. */
export type SegmentKind = 'numeric' | 'uuid' | 'hex' | 'token';

/** Classifies one path segment (already normalized: percent-decoding done by the normalizer). */
export function classifySegment(segment: string): SegmentKind | null {
  if (NUMERIC.test(segment)) return 'numeric';
  if (UUID.test(segment)) return 'uuid';
  if (HEX.test(segment)) return 'hex';
  if (TOKEN.test(segment)) return 'token';
  return null;
}

/**
 * The template of a normalized path (no query): identifier segments replaced
 * by named parameters. `*` (the `OPTIONS *` target) is returned as is.
 */
export function collapsePath(path: string): string {
  if (!path.startsWith('/')) return path;
  const segments = path.slice(1).split('/');
  const used = new Set<string>();
  let previous: string | null = null;
  const out: string[] = [];
  for (const segment of segments) {
    if (segment === '' || classifySegment(segment) === null) {
      out.push(segment);
      previous = segment === '' ? null : segment;
      continue;
    }
    const name = uniqueName(paramBase(previous), used);
    out.push(`{${name}}`);
    previous = null;
  }
  return `/${out.join('/')}`;
}

/** `orders` → `orderId`, `user-profiles` → `userProfileId`; `id` when there is no usable word. */
function paramBase(previous: string | null): string {
  if (previous === null || !WORD.test(previous) || /\d/.test(previous)) return 'id';
  const words = previous.split(/[-_]/).map((w) => w.toLowerCase());
  const last = words.length - 1;
  words[last] = singular(words[last] ?? '');
  const camel = words.map((w, i) => (i === 0 ? w : w.charAt(0).toUpperCase() + w.slice(1))).join('');
  return `${camel}Id`;
}

function singular(word: string): string {
  if (word.length > 4 && word.endsWith('ies')) return `${word.slice(0, -3)}y`;
  if (word.length > 3 && word.endsWith('s') && !word.endsWith('ss')) return word.slice(0, -1);
  return word;
}

function uniqueName(base: string, used: Set<string>): string {
  let name = base;
  for (let i = 2; used.has(name); i++) name = `${base}${i}`;
  used.add(name);
  return name;
}
