/**
 * Response headers of a deprecated route: `Deprecation` (RFC 9745, a structured
 * date `@<unix seconds>`), `Sunset` (RFC 8594, an HTTP-date) and
 * `Link: <...>; rel="deprecation"`.
 */
import type { CompiledRoute } from '../../policy/compile/bundle.ts';

export function deprecationHeaders(d: NonNullable<CompiledRoute['deprecation']>): Record<string, string> {
  const headers: Record<string, string> = { deprecation: `@${Math.floor(d.sinceMs / 1000)}` };
  if (d.sunsetMs !== null) headers.sunset = new Date(d.sunsetMs).toUTCString();
  // URL serialization percent-encodes what must be (spaces, CR/LF, '>') and leaves existing escapes alone.
  if (d.link !== null) headers.link = `<${new URL(d.link).href}>; rel="deprecation"`;
  return headers;
}
