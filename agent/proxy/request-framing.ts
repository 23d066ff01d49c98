/**
 * Request framing checks the HTTP/1 parser leaves to us: repeated headers that
 * must be singular, ambiguous body framing, and header bytes no peer should
 * send. Node's strict parser already rejects most smuggling shapes before a
 * request exists (request-framing.test.ts pins which layer catches what);
 * these checks are the second layer, so the answer is the same even when the
 * parser or its settings change.
 */
import { PolicyError } from '../errors.ts';

/** The request as the check needs it (node:http's IncomingMessage, or the HTTP/2 compatibility API later). */
export interface FramedRequest {
  /** Header names and values exactly as received, alternating. */
  readonly rawHeaders: readonly string[];
  readonly httpVersion: string;
}

/** Headers that must appear at most once: a second copy means two parties may read two different values. */
const SINGLETON: ReadonlySet<string> = new Set([
  'host',
  'authorization',
  'content-length',
  'transfer-encoding',
]);

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
// C0 controls other than HTAB, and DEL. obs-text (0x80–0xFF) stays allowed, as RFC 9110 §5.5 permits.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const FORBIDDEN_VALUE_BYTE = /[\x00-\x08\x0a-\x1f\x7f]/;

function malformed(detail: string): PolicyError {
  return new PolicyError('ERR_REQUEST_MALFORMED', detail);
}

/** Counts each header name (lowercased) and reports the first invalid name or value. */
function scanHeaders(req: FramedRequest): { counts: Map<string, number>; error: PolicyError | null } {
  const counts = new Map<string, number>();
  const raw = req.rawHeaders;
  // HTTP/2 pseudo-headers (:method, :path, ...) are names only that protocol has.
  const pseudoAllowed = req.httpVersion.startsWith('2');
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] ?? '';
    const value = raw[i + 1] ?? '';
    const pseudo = pseudoAllowed && name.startsWith(':');
    if (!pseudo && !TOKEN.test(name))
      return { counts, error: malformed('a header name is not a valid token') };
    if (FORBIDDEN_VALUE_BYTE.test(value)) {
      return { counts, error: malformed(`the ${name.toLowerCase()} header contains a control character`) };
    }
    const lower = name.toLowerCase();
    counts.set(lower, (counts.get(lower) ?? 0) + 1);
  }
  return { counts, error: null };
}

function headerValue(raw: readonly string[], name: string): string | undefined {
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if (raw[i]?.toLowerCase() === name) return raw[i + 1];
  }
  return undefined;
}

/** Framing rules once headers are known valid one by one (RFC 9112 §6.1, §6.3). */
function checkBodyFraming(req: FramedRequest, counts: ReadonlyMap<string, number>): PolicyError | null {
  const te = headerValue(req.rawHeaders, 'transfer-encoding');
  if (te === undefined) return null;
  if (counts.has('content-length')) return malformed('both Content-Length and Transfer-Encoding are present');
  if (req.httpVersion === '1.0') return malformed('Transfer-Encoding is not allowed in HTTP/1.0');
  // Transfer codings are case-insensitive (RFC 9112 §7); only plain chunked is accepted.
  if (te.trim().toLowerCase() !== 'chunked') return malformed('Transfer-Encoding must be exactly chunked');
  return null;
}

/**
 * `null` when the request's framing is unambiguous, else ERR_REQUEST_MALFORMED
 * (the caller answers 400 and closes the connection): a repeated Host,
 * Authorization, Content-Length or Transfer-Encoding; Content-Length with
 * Transfer-Encoding; a Transfer-Encoding other than `chunked`; Transfer-Encoding
 * on HTTP/1.0; a missing Host on HTTP/1.1; a header name that is not a token;
 * a header value with a control character other than HTAB.
 */
export function checkRequestFraming(req: FramedRequest): PolicyError | null {
  const { counts, error } = scanHeaders(req);
  if (error) return error;
  for (const name of SINGLETON) {
    if ((counts.get(name) ?? 0) > 1) return malformed(`the ${name} header appears more than once`);
  }
  if (req.httpVersion === '1.1' && !counts.has('host')) return malformed('the host header is missing');
  return checkBodyFraming(req, counts);
}

/** True when the request head announces a body (Transfer-Encoding, or a Content-Length other than 0). */
export function announcesBody(
  headers: Readonly<Record<string, string | readonly string[] | undefined>>,
): boolean {
  const length = headers['content-length'];
  return headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}
