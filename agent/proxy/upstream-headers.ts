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

/** Lowercase tokens of every `Connection` header value; null when there is none (the usual case). */
function connectionOptions(headers: HeaderMap): Set<string> | null {
  const value = headers.connection;
  if (value === undefined) return null;
  const out = new Set<string>();
  for (const v of typeof value === 'string' ? [value] : value) {
    for (const token of v.split(',')) {
      const name = token.trim().toLowerCase();
      if (name !== '') out.add(name);
    }
  }
  return out;
}

const NONE: ReadonlySet<string> = new Set();

/** Sets a header on a plain object; `__proto__` is defined as an own property, never the prototype. */
function put(out: UpstreamHeaders, name: string, value: string | string[]): void {
  if (name === '__proto__')
    Object.defineProperty(out, name, { value, enumerable: true, writable: true, configurable: true });
  else out[name] = value;
}

/**
 * Copies the end-to-end headers, dropping hop-by-hop, Connection-nominated,
 * `drop` and `also` names. One pass into one object: this runs twice per request.
 */
function endToEnd(
  headers: HeaderMap,
  drop: ReadonlySet<string>,
  also: ReadonlySet<string> = NONE,
): UpstreamHeaders {
  const nominated = connectionOptions(headers);
  const out: UpstreamHeaders = {};
  for (const name of Object.keys(headers)) {
    const value = headers[name];
    if (value === undefined || name.charCodeAt(0) === 58 /* ':' */) continue;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || drop.has(lower) || also.has(lower)) continue;
    if (nominated?.has(lower) && !NOT_NOMINATABLE.has(lower)) continue;
    put(out, lower, typeof value === 'string' ? value : [...value]);
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
  const out = endToEnd(req.headers, AGENT_OWNED, toSet(options.remove));
  const ip = displayIp(options.clientIp);
  const host = clientHost(req.headers);
  out['x-forwarded-for'] = ip;
  out['x-forwarded-proto'] = options.proto;
  if (host !== undefined) out['x-forwarded-host'] = host;
  out.forwarded = forwardedElement(ip, options.proto, host);
  out['x-request-id'] = options.requestId;
  if (options.set)
    for (const [name, value] of Object.entries(options.set)) put(out, name.toLowerCase(), value);
  return out;
}

function toSet(names: Iterable<string> | undefined): ReadonlySet<string> {
  if (names === undefined) return NONE;
  if (names instanceof Set) return names as ReadonlySet<string>;
  return new Set([...names].map((n) => n.toLowerCase()));
}

const OUTBOUND_DROP: ReadonlySet<string> = new Set(['expect']);

/**
 * What the outbound proxy sends on for the app: its end-to-end headers as they
 * are (Host included), minus hop-by-hop and Connection-nominated ones, and
 * `Expect` (100-continue is answered at the proxy). Nothing is added.
 */
export function outboundRequestHeaders(req: HeaderSource): UpstreamHeaders {
  return endToEnd(req.headers, OUTBOUND_DROP);
}

/** The upstream's response headers the client may see: hop-by-hop and Connection-nominated ones removed. */
export function filterResponseHeaders(headers: HeaderMap): UpstreamHeaders {
  return endToEnd(headers, NONE);
}

/**
 * The client's `x-request-id` when it is 1–128 characters of `[A-Za-z0-9._:-]`
 * (so logs on both sides correlate), else a new random UUID.
 */
export function requestIdFrom(req: HeaderSource): string {
  const id = req.headers['x-request-id'];
  return typeof id === 'string' && REQUEST_ID.test(id) ? id : randomUUID();
}
