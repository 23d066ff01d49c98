/**
 * Path templates: parses a route's path template (`/v1/users/{userId}/orders/**`) into segments the
 * matcher can build its trie from, and derives the template's shape for conflict detection.
 *
 * Literal segments are stored in the same normalized form request paths reach the matcher in
 * (RFC 3986 §6.2.2: percent-encoded unreserved characters decoded, remaining hex digits uppercased),
 * so that `/a%7e` and `/a~` describe the same route and match the same requests.
 */

/** One parsed template segment: an exact literal, a `{name}` parameter, or the final `**` rest. */
export type Segment = { kind: 'literal'; value: string } | { kind: 'param'; name: string } | { kind: 'rest' };

/** A parsed, validated path template. */
export interface PathTemplate {
  /** The template exactly as written in the policy. */
  source: string;
  segments: Segment[];
  /** template with params renamed to {} for conflict detection, e.g. '/v1/users/{}/orders' */
  shape: string;
}

/** Outcome of {@link parseTemplate}: the template, or a short message saying what is wrong. */
export type TemplateResult = { ok: true; template: PathTemplate } | { ok: false; message: string };

const PARAM_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const UNRESERVED = /^[A-Za-z0-9\-._~]$/;
const PERCENT = /%([0-9A-Fa-f]{2})/g;
const BAD_PERCENT = /%(?![0-9A-Fa-f]{2})/;
// pchar (RFC 3986 §3.3) minus '%' (checked separately) and minus ';' and '*', which policies may not use.
const PCHAR = /^[A-Za-z0-9\-._~!$&'()+,=:@]$/;

/**
 * Parses and validates a path template. Never throws: an invalid template yields `ok: false` with a
 * message naming the offending part.
 */
export function parseTemplate(source: string): TemplateResult {
  if (!source.startsWith('/')) return fail(`template must start with "/", got ${quote(source)}`);
  if (source.includes('?')) return fail('template must not contain a query ("?")');
  if (source.includes('#')) return fail('template must not contain a fragment ("#")');
  // '/' splits to [''], the root; '/a/' to ['a', ''], a trailing-slash literal.
  const texts = source.slice(1).split('/');
  const segments: Segment[] = [];
  const names = new Set<string>();
  for (const [i, text] of texts.entries()) {
    const parsed = parseSegment(text, i === texts.length - 1);
    if (typeof parsed === 'string') return fail(parsed);
    if (parsed.kind === 'param') {
      if (names.has(parsed.name)) return fail(`parameter "${parsed.name}" appears twice`);
      names.add(parsed.name);
    }
    segments.push(parsed);
  }
  return { ok: true, template: { source, segments, shape: shapeOf(segments) } };
}

/** True when two templates are identical up to parameter names, i.e. they match exactly the same paths. */
export function templatesConflict(a: PathTemplate, b: PathTemplate): boolean {
  return a.shape === b.shape;
}

/** Parses one segment's text; returns the segment or an error message. */
function parseSegment(text: string, last: boolean): Segment | string {
  if (text === '') return last ? { kind: 'literal', value: '' } : 'empty segment ("//") is not allowed';
  if (text === '**') return last ? { kind: 'rest' } : '"**" is only allowed as the last segment';
  if (text.includes('*')) return `"*" is only allowed in a final "/**", got segment ${quote(text)}`;
  if (text.includes('{') || text.includes('}')) return parseParam(text);
  return parseLiteral(text);
}

function parseParam(text: string): Segment | string {
  const inner = /^\{([^{}]*)\}$/.exec(text)?.[1];
  if (inner === undefined) return `parameter must be a whole segment like "{name}", got ${quote(text)}`;
  if (!PARAM_NAME.test(inner)) {
    return `invalid parameter name ${quote(inner)}: use letters, digits and "_", not starting with a digit`;
  }
  return { kind: 'param', name: inner };
}

function parseLiteral(text: string): Segment | string {
  for (const ch of text) {
    if (ch === '%' || PCHAR.test(ch)) continue;
    return `literal segment ${quote(text)} must not contain ${describeChar(ch)}`;
  }
  if (BAD_PERCENT.test(text)) return `invalid percent-encoding in segment ${quote(text)}`;
  const value = normalizeLiteral(text);
  if (value.includes('%2F')) return `literal segment ${quote(text)} must not contain an encoded "/" (%2F)`;
  if (value === '.' || value === '..') return `dot segment ${quote(text)} is not allowed`;
  return { kind: 'literal', value };
}

/** Decodes percent-encoded unreserved characters and uppercases the hex digits of the rest. */
function normalizeLiteral(text: string): string {
  return text.replace(PERCENT, (_match, hex: string) => {
    const ch = String.fromCharCode(Number.parseInt(hex, 16));
    return UNRESERVED.test(ch) ? ch : `%${hex.toUpperCase()}`;
  });
}

function describeChar(ch: string): string {
  const code = ch.codePointAt(0) ?? 0;
  if (isControl(code)) return `a control character (U+${hex4(code)})`;
  if (ch === ' ') return 'a space';
  // encodeURIComponent throws on a lone surrogate, and there is no sensible encoding to suggest.
  if (code >= 0xd800 && code <= 0xdfff) return 'an unpaired surrogate';
  if (ch === '\\' || ch === ';') return quote(ch);
  return `${quote(ch)} (percent-encode it as ${encodeURIComponent(ch)})`;
}

function shapeOf(segments: readonly Segment[]): string {
  const parts = segments.map((s) => (s.kind === 'literal' ? s.value : s.kind === 'param' ? '{}' : '**'));
  return `/${parts.join('/')}`;
}

function fail(message: string): TemplateResult {
  return { ok: false, message };
}

/** JSON-quotes text for a message, also escaping the DEL and C1 controls JSON leaves raw. */
function quote(text: string): string {
  let out = '';
  for (const ch of JSON.stringify(text)) {
    const code = ch.codePointAt(0) ?? 0;
    out += isControl(code) ? `\\u${hex4(code)}` : ch;
  }
  return out;
}

function isControl(code: number): boolean {
  return code < 0x20 || (code >= 0x7f && code <= 0x9f);
}

function hex4(code: number): string {
  return code.toString(16).toUpperCase().padStart(4, '0');
}
