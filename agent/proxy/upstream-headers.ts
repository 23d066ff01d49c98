/**
 * The headers that cross the proxy: what the app receives (hop-by-hop and
 * client-forged forwarding headers removed, the agent's own forwarding and
 * request id set), the request id itself, and what the client receives back
 * from the app (hop-by-hop removed).
 */
import { randomUUID } from 'node:crypto';

/** A header map as Node and undici hand it over: lowercase names, repeated values as arrays. */
export type HeaderMap = Readonly<Record<string, string | readonly string[] | undefined>>;

/** What the upstream receives: lowercase names, repeated values as arrays. */
export type UpstreamHeaders = Record<string, string | string[]>;

/** Headers that describe one connection, never forwarded in either direction (RFC 9110 §7.6.1). */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'proxy-authenticate',
  'proxy-authorization',
  'http2-settings',
]);

/**
 * Forwarding headers only the agent may write: anything a client sends under
 * these names is discarded, so the app never trusts a forged client address.
 */
const AGENT_OWNED: ReadonlySet<string> = new Set([
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'x-forwarded-port',
  'x-real-ip',
  'forwarded',
  'x-request-id',
  // 100-continue is answered at the edge; undici refuses to send it anyway.
  'expect',
]);

/**
 * End-to-end headers a `Connection` option may not remove: dropping them would
 * change the target or how the app reads a body the policy already checked.
 */
const NOT_NOMINATABLE: ReadonlySet<string> = new Set([
  'host',
  'content-length',
  'content-type',
  'content-encoding',
]);

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** The request as these helpers need it (node:http and, later, the HTTP/2 compatibility API). */
export interface HeaderSource {
  readonly headers: HeaderMap;
}

export interface UpstreamHeaderOptions {
  /** The peer address of the client connection (IPv4-mapped IPv6 is shown as IPv4). */
  clientIp: string;
  /** The scheme the client used to reach the agent. */
  proto: 'http' | 'https';
  /** The id sent to the app as `x-request-id` (see requestIdFrom). */
  requestId: string;
  /** Lowercase names of identity headers to strip (applied before `set`). Default: none. */
  remove?: Iterable<string>;
  /** Headers to set last, overriding anything above (names are lowercased). Default: none. */
  set?: Readonly<Record<string, string>>;
}

/** Lowercase tokens of every `Connection` header value. */
function connectionOptions(headers: HeaderMap): Set<string> {
  const value = headers.connection;
  const values = value === undefined ? [] : typeof value === 'string' ? [value] : value;
  const out = new Set<string>();
  for (const v of values) {
    for (const token of v.split(',')) {
      const name = token.trim().toLowerCase();
      if (name !== '') out.add(name);
    }
  }
  return out;
}

/** Copies the end-to-end headers, dropping hop-by-hop, Connection-nominated and `drop` names. */
function endToEnd(headers: HeaderMap, drop: ReadonlySet<string>): Map<string, string | string[]> {
  const nominated = connectionOptions(headers);
  const out = new Map<string, string | string[]>();
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || name.startsWith(':')) continue;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || drop.has(lower)) continue;
    if (nominated.has(lower) && !NOT_NOMINATABLE.has(lower)) continue;
    out.set(lower, typeof value === 'string' ? value : [...value]);
  }
  return out;
}

/** `::ffff:10.0.0.1` → `10.0.0.1`; anything else unchanged; empty → `unknown`. */
export function displayIp(ip: string): string {
  if (ip === '') return 'unknown';
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(ip);
  return mapped?.[1] ?? ip;
}

/** An RFC 7239 value: a token as is, anything else as a quoted-string. */
function forwardedValue(value: string): string {
  return TOKEN.test(value) ? value : `"${value.replace(/["\\]/g, '\\$&')}"`;
}

/** The `Forwarded` element for this hop (IPv6 nodes in brackets, RFC 7239 §6). */
export function forwardedElement(ip: string, proto: string, host: string | undefined): string {
  const node = ip.includes(':') ? `[${ip}]` : ip;
  const parts = [`for=${forwardedValue(node)}`, `proto=${proto}`];
  if (host !== undefined && host !== '') parts.push(`host=${forwardedValue(host)}`);
  return parts.join(';');
}

function clientHost(headers: HeaderMap): string | undefined {
  const host = headers.host ?? headers[':authority'];
  return typeof host === 'string' ? host : undefined;
}

/**
 * The headers the upstream receives for `req`: end-to-end headers as the
 * policy saw them (req.headers), minus hop-by-hop, Connection-nominated,
 * client-sent forwarding headers and `remove`; plus x-forwarded-for/-proto/-host,
 * `forwarded` and `x-request-id`; then `set`.
 */
export function buildUpstreamHeaders(req: HeaderSource, options: UpstreamHeaderOptions): UpstreamHeaders {
  const out = endToEnd(req.headers, AGENT_OWNED);
  for (const name of options.remove ?? []) out.delete(name.toLowerCase());
  const ip = displayIp(options.clientIp);
  const host = clientHost(req.headers);
  out.set('x-forwarded-for', ip);
  out.set('x-forwarded-proto', options.proto);
  if (host !== undefined) out.set('x-forwarded-host', host);
  out.set('forwarded', forwardedElement(ip, options.proto, host));
  out.set('x-request-id', options.requestId);
  for (const [name, value] of Object.entries(options.set ?? {})) out.set(name.toLowerCase(), value);
  return Object.fromEntries(out);
}

/** The upstream's response headers the client may see: hop-by-hop and Connection-nominated ones removed. */
export function filterResponseHeaders(headers: HeaderMap): UpstreamHeaders {
  return Object.fromEntries(endToEnd(headers, new Set()));
}

/**
 * The client's `x-request-id` when it is 1–128 characters of `[A-Za-z0-9._:-]`
 * (so logs on both sides correlate), else a new random UUID.
 */
export function requestIdFrom(req: HeaderSource): string {
  const id = req.headers['x-request-id'];
  return typeof id === 'string' && REQUEST_ID.test(id) ? id : randomUUID();
}
