/**
 * Verified claims copied to upstream request headers (`claimHeaders`), and the
 * set of those header names, which are stripped from every incoming request so
 * a client can never forge them.
 */
import type { CompiledJwtProvider } from '../../../policy/compile/bundle.ts';
import { claimValue } from '../../../policy/engine/claims.ts';

export type ClaimHeaderResult =
  | { ok: true; headers: Record<string, string> }
  | { ok: false; reason: 'bad_claim_value' };

/** Every `claimHeaders` header name of the providers, lowercase. */
export function identityHeaderNames(providers: readonly CompiledJwtProvider[]): Set<string> {
  const names = new Set<string>();
  for (const p of providers) for (const h of p.claimHeaders) names.add(h.header.toLowerCase());
  return names;
}

/** Control characters (tab excepted) and DEL: they would split or corrupt a header. */
function hasForbiddenChar(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f) return true;
  }
  return false;
}

function isScalar(v: unknown): v is string | number | boolean {
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';
}

/** The header text of a claim; undefined for absent, null, objects, and arrays that hold anything but scalars. */
function headerText(value: unknown): string | undefined {
  if (isScalar(value)) return String(value);
  if (Array.isArray(value) && value.length > 0 && value.every(isScalar)) return value.map(String).join(',');
  return undefined;
}

/**
 * The upstream headers for a provider's `claimHeaders`: strings as they are,
 * numbers and booleans as text, non-empty arrays of scalars joined with ',';
 * an absent claim, null, an object or an empty array sets no header. Non-ASCII
 * text is emitted as its UTF-8 bytes, one char per byte (how Node and undici
 * write header strings), so upstreams read UTF-8. A value with a control
 * character (tab excepted) or DEL fails with `bad_claim_value`: the request is
 * refused rather than forwarded with a truncated or split header.
 */
export function claimHeaderValues(
  provider: CompiledJwtProvider,
  claims: Readonly<Record<string, unknown>>,
): ClaimHeaderResult {
  const headers: Record<string, string> = {};
  for (const { claim, header } of provider.claimHeaders) {
    const text = headerText(claimValue(claims, claim));
    if (text === undefined) continue;
    if (hasForbiddenChar(text)) return { ok: false, reason: 'bad_claim_value' };
    headers[header.toLowerCase()] = /[\u0080-\uffff]/.test(text)
      ? Buffer.from(text).toString('latin1')
      : text;
  }
  return { ok: true, headers };
}
