/**
 * Where tokens are read from: the places (a header with a prefix, or a cookie)
 * named in the providers' `from`, in provider order, and which providers read
 * each place. Finding the first token in a request, and removing it again when
 * a provider does not forward tokens upstream.
 */
import type { CompiledJwtProvider } from '../../../policy/compile/bundle.ts';

/** A request header or cookie that one or more providers read tokens from. */
export interface TokenPlace {
  source: 'header' | 'cookie';
  /** Lowercase header name, or the cookie name as written. */
  name: string;
  /** Providers reading this place, in provider order; `prefix` is '' for cookies. */
  readers: { provider: CompiledJwtProvider; prefix: string }[];
}

/** What the first place holding something yielded. */
export type FoundToken =
  | { kind: 'token'; token: string; place: TokenPlace; providers: CompiledJwtProvider[] }
  | { kind: 'malformed'; place: TokenPlace; providers: CompiledJwtProvider[] };

type HeaderBag = Readonly<Record<string, string | readonly string[] | undefined>>;

/** The places of all providers, ordered by first mention (provider order, then `from` order). */
export function tokenPlaces(providers: readonly CompiledJwtProvider[]): TokenPlace[] {
  const places = new Map<string, TokenPlace>();
  for (const provider of providers) {
    for (const from of provider.from) {
      const [source, name, prefix] =
        'cookie' in from
          ? (['cookie', from.cookie, ''] as const)
          : (['header', from.header.toLowerCase(), from.prefix] as const);
      const key = `${source}:${name}`;
      let place = places.get(key);
      if (!place) {
        place = { source, name, readers: [] };
        places.set(key, place);
      }
      place.readers.push({ provider, prefix });
    }
  }
  return [...places.values()];
}

/** The first token found, in place order; undefined when the request carries none. */
export function findToken(headers: HeaderBag, places: readonly TokenPlace[]): FoundToken | undefined {
  for (const place of places) {
    const found = place.source === 'header' ? fromHeader(headers, place) : fromCookie(headers, place);
    if (found) return found;
  }
  return undefined;
}

function fromHeader(headers: HeaderBag, place: TokenPlace): FoundToken | undefined {
  const raw = headers[place.name];
  if (raw === undefined) return undefined;
  const values = typeof raw === 'string' ? [raw] : [...new Set(raw)];
  const all = place.readers.map((r) => r.provider);
  // Two values for one token header is ambiguous: which one did the client mean?
  if (values.length > 1) return { kind: 'malformed', place, providers: all };
  const value = values[0];
  if (value === undefined) return undefined;
  // Longest prefix first, so `Bearer ` wins over a catch-all '' on the same header.
  const readers = [...place.readers].sort((a, b) => b.prefix.length - a.prefix.length);
  for (const { prefix } of readers) {
    const token = afterPrefix(value, prefix);
    if (token === undefined) continue;
    const providers = readers.filter((r) => sameText(r.prefix, prefix)).map((r) => r.provider);
    return token === ''
      ? { kind: 'malformed', place, providers }
      : { kind: 'token', token, place, providers };
  }
  return undefined;
}

function sameText(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

/**
 * The token after `prefix` (compared case-insensitively, as RFC 6750's scheme is),
 * trimmed; '' for a prefix with nothing after it; undefined when `value` does not
 * start with the prefix. A prefix ending in a space needs whitespace (or the end)
 * after its non-space part, so `Bearerabc` is not a Bearer token.
 */
export function afterPrefix(value: string, prefix: string): string | undefined {
  const head = prefix.trimEnd();
  if (!sameText(value.slice(0, head.length), head)) return undefined;
  const rest = value.slice(head.length);
  if (head.length < prefix.length && rest !== '' && !/^[ \t]/.test(rest)) return undefined;
  return rest.trim();
}

function fromCookie(headers: HeaderBag, place: TokenPlace): FoundToken | undefined {
  const values = new Set(cookieValues(headers.cookie, place.name));
  if (values.size === 0) return undefined;
  const providers = place.readers.map((r) => r.provider);
  const [value] = values;
  // Same-named cookies with different values (e.g. set for two paths) are ambiguous: refuse, never guess.
  if (values.size > 1 || value === undefined || value === '') return { kind: 'malformed', place, providers };
  return { kind: 'token', token: value, place, providers };
}

function cookiePairs(header: string | readonly string[] | undefined): { name: string; value: string }[] {
  if (header === undefined) return [];
  const text = typeof header === 'string' ? header : header.join('; ');
  const out: { name: string; value: string }[] = [];
  for (const part of text.split(';')) {
    const raw = part.trim();
    const eq = raw.indexOf('=');
    if (eq <= 0) continue;
    let value = raw.slice(eq + 1).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    out.push({ name: raw.slice(0, eq).trim(), value });
  }
  return out;
}

/** Every value of cookie `name` in a Cookie header (surrounding spaces and double quotes removed). */
export function cookieValues(header: string | readonly string[] | undefined, name: string): string[] {
  return cookiePairs(header)
    .filter((c) => c.name === name)
    .map((c) => c.value);
}

/**
 * Removes, in place, what carried a valid token: the whole header for a header
 * source; for a cookie, just that cookie (every copy of it), dropping the Cookie
 * header when nothing else is left. Meant for providers with `forwardToken: false`,
 * on the headers about to go upstream (the caller owns and is building them).
 */
export function stripToken(
  headers: Record<string, string | string[] | undefined>,
  result: { source: 'header' | 'cookie'; location: string },
): void {
  if (result.source === 'header') {
    delete headers[result.location];
    return;
  }
  const cookie = headers.cookie;
  const text = typeof cookie === 'string' ? cookie : (cookie ?? []).join('; ');
  const kept = text
    .split(';')
    .map((part) => part.trim())
    .filter((part) => part !== '' && cookiePairs(part)[0]?.name !== result.location);
  if (kept.length === 0) delete headers.cookie;
  else headers.cookie = kept.join('; ');
}
