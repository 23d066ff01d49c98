/**
 * Content-Type checks of the validation stage (415): the media type of a
 * request body (parameters dropped, lowercase) against a route's
 * `contentTypes` ranges (`type/subtype`, `type/*`, `*\/*`), and whether it is
 * JSON (`application/json` or any `+json` suffix), which a body schema needs.
 */

const TOKEN = /^[!#$%&'*+.^_`|~0-9a-z-]+$/;

/** `type/subtype` of a Content-Type value, lowercase and without parameters; null when absent or malformed. */
export function mediaTypeOf(header: string | undefined): string | null {
  if (header === undefined) return null;
  const semi = header.indexOf(';');
  const essence = (semi < 0 ? header : header.slice(0, semi)).trim().toLowerCase();
  const slash = essence.indexOf('/');
  if (slash < 0) return null;
  const type = essence.slice(0, slash);
  const subtype = essence.slice(slash + 1);
  return TOKEN.test(type) && TOKEN.test(subtype) ? essence : null;
}

/** True when `mediaType` (from mediaTypeOf) falls in one of the lowercase `ranges`. */
export function mediaTypeMatches(mediaType: string, ranges: readonly string[]): boolean {
  const slash = mediaType.indexOf('/');
  const type = mediaType.slice(0, slash);
  for (const range of ranges) {
    if (range === '*/*' || range === mediaType) return true;
    if (range.endsWith('/*') && range.slice(0, -2) === type) return true;
  }
  return false;
}

/** `application/json` or a structured `+json` type (`application/merge-patch+json`, ...). */
export function isJsonMediaType(mediaType: string): boolean {
  return mediaType === 'application/json' || mediaType.endsWith('+json');
}
