/**
 * Semantic checks of `spec.jwt`: unique names, exactly one key source, JWKS URL
 * and inline JWKS sanity, durations, token sources and claim headers.
 */
import { type Diagnostic, error, type FieldPath, warning } from '../diagnostics.ts';
import { isLoopbackHost } from '../engine/ip-block.ts';
import type { JwtProvider } from '../schema/api-policy.ts';
import { checkDuration, HEADER_NAME } from './field-checks.ts';

/** Headers a claim may not be copied into: framing, routing and credentials. */
const RESERVED_HEADERS = new Set([
  'host',
  'content-length',
  'content-type',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'te',
  'trailer',
  'upgrade',
  'proxy-authorization',
  'proxy-connection',
  'authorization',
  'cookie',
  'forwarded',
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-proto',
  'x-request-id',
]);

/** Checks the providers; returns their names (for `jwt: NAME` references). */
export function checkProviders(providers: JwtProvider[], out: Diagnostic[]): Set<string> {
  const names = new Set<string>();
  providers.forEach((p, i) => {
    const at = (...s: (string | number)[]): FieldPath => ['spec', 'jwt', i, ...s];
    if (names.has(p.name)) out.push(error(at('name'), `duplicate provider name "${p.name}"`));
    names.add(p.name);
    if (p.name === 'any') out.push(error(at('name'), '"any" is reserved (allow rules say jwt: Any)'));
    if ((p.jwksUri === undefined) === (p.jwks === undefined)) {
      out.push(error(at(), 'exactly one of jwksUri or jwks must be set'));
    }
    if (p.jwksUri !== undefined) checkJwksUri(p.jwksUri, at('jwksUri'), out);
    if (p.jwks !== undefined) checkInlineJwks(p.jwks, at('jwks'), out);
    checkDuration(p.maxLifetime, at('maxLifetime'), out);
    checkDuration(p.clockSkew, at('clockSkew'), out);
    (p.from ?? []).forEach((src, j) => {
      if ((src.header === undefined) === (src.cookie === undefined)) {
        out.push(error(at('from', j), 'exactly one of header or cookie must be set'));
      } else if (src.header !== undefined && !HEADER_NAME.test(src.header)) {
        out.push(error(at('from', j, 'header'), 'is not a valid header name'));
      } else if (src.prefix !== undefined && src.header === undefined) {
        out.push(error(at('from', j, 'prefix'), 'prefix only applies to a header'));
      }
    });
    const seen = new Set<string>();
    (p.claimHeaders ?? []).forEach((ch, j) => {
      const h = ch.header.toLowerCase();
      if (!HEADER_NAME.test(ch.header))
        out.push(error(at('claimHeaders', j, 'header'), 'is not a valid header name'));
      else if (RESERVED_HEADERS.has(h) || h.startsWith('proxy-')) {
        out.push(error(at('claimHeaders', j, 'header'), `"${h}" cannot carry claims`));
      } else if (seen.has(h)) out.push(error(at('claimHeaders', j, 'header'), `header "${h}" is set twice`));
      seen.add(h);
    });
  });
  return names;
}

function checkJwksUri(uri: string, path: FieldPath, out: Diagnostic[]): void {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    out.push(error(path, 'is not a valid URL'));
    return;
  }
  if (url.protocol === 'https:') return;
  if (url.protocol !== 'http:') {
    out.push(error(path, 'must be an https:// URL'));
    return;
  }
  if (!isLoopbackHost(url.hostname))
    out.push(warning(path, 'plain http lets anyone on the path swap the keys; use https'));
}

function checkInlineJwks(text: string, path: FieldPath, out: Diagnostic[]): void {
  let jwks: unknown;
  try {
    jwks = JSON.parse(text);
  } catch {
    out.push(error(path, 'is not valid JSON'));
    return;
  }
  const keys = (jwks as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys) || keys.length === 0) {
    out.push(error(path, 'must be a JWKS: {"keys": [...]} with at least one key'));
    return;
  }
  keys.forEach((k: unknown, i) => {
    const kty = (k as { kty?: unknown } | null)?.kty;
    if (kty !== 'RSA' && kty !== 'EC' && kty !== 'OKP') {
      out.push(error(path, `key ${i}: kty must be RSA, EC or OKP (symmetric keys are never accepted)`));
    } else if ((k as { d?: unknown }).d !== undefined) {
      out.push(error(path, `key ${i}: contains a private key; publish only public keys`));
    }
  });
}
