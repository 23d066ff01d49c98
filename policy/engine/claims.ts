/** Reading verified JWT claims: dotted paths, scopes, and value comparison for allow rules. */

/**
 * Resolves a claim path. A key that exists verbatim wins (namespaced claims such
 * as `https://example.com/roles` contain dots); otherwise the path is split on
 * dots and walked through nested objects.
 */
export function claimValue(claims: Readonly<Record<string, unknown>>, path: string): unknown {
  if (Object.hasOwn(claims, path)) return claims[path];
  let node: unknown = claims;
  for (const part of path.split('.')) {
    if (node === null || typeof node !== 'object' || Array.isArray(node) || !Object.hasOwn(node, part))
      return undefined;
    node = (node as Record<string, unknown>)[part];
  }
  return node;
}

function scalarText(v: unknown): string | undefined {
  return typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : undefined;
}

/** A claim matches when it equals, or (as an array) contains, one of the values; scalars compare as text. */
export function claimMatches(value: unknown, accepted: readonly string[]): boolean {
  if (Array.isArray(value)) return value.some((v) => claimMatches(v, accepted));
  const text = scalarText(value);
  return text !== undefined && accepted.includes(text);
}

/** The token's scopes: `scope` (space-separated string) and `scp` (array, or space-separated string). */
export function tokenScopes(claims: Readonly<Record<string, unknown>>): Set<string> {
  const out = new Set<string>();
  for (const key of ['scope', 'scp']) {
    const v = claims[key];
    if (typeof v === 'string') for (const s of v.split(' ')) if (s) out.add(s);
    if (Array.isArray(v)) for (const s of v) if (typeof s === 'string' && s) out.add(s);
  }
  return out;
}
