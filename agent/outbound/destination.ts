/**
 * Where an outbound request goes. The capture rules REDIRECT the app's
 * connections to the outbound listener, which loses the original destination
 * (Node cannot read SO_ORIGINAL_DST), so the request names it: the authority of
 * an absolute-form target (`GET http://orders:8080/x`), else the `Host` header
 * (port 80 when it has none). Also the loop check: a destination that is the
 * outbound listener itself would send the request back round forever. Pure.
 */
import ipaddr from 'ipaddr.js';
import { PolicyError } from '../errors.ts';

export interface Destination {
  /** Lowercase name or address, IPv6 without brackets. */
  host: string;
  port: number;
  /** `http://host:port`, IPv6 in brackets. */
  origin: string;
  /** `host:port` as logged (IPv6 in brackets). */
  authority: string;
  /** The origin-form target to send (path and query). */
  path: string;
}

/** A DNS name (labels of letters, digits, `-` and `_`), an IPv4 address, or a bracketed IPv6 one. */
const HOST = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,251}[A-Za-z0-9_])?))(?::(\d{1,5}))?$/;

function badDestination(detail: string): PolicyError {
  return new PolicyError('ERR_OUTBOUND_DESTINATION', detail);
}

/** Parses a `host[:port]` authority; throws ERR_OUTBOUND_DESTINATION when it is not one. */
export function parseAuthority(text: string, defaultPort = 80): Omit<Destination, 'path'> {
  const m = HOST.exec(text.trim());
  if (!m) throw badDestination('the Host header does not name a destination (host or host:port)');
  const v6 = m[1];
  if (v6 !== undefined && !ipaddr.IPv6.isValid(v6))
    throw badDestination('the Host header holds an invalid IPv6 address');
  const host = (v6 ?? m[2] ?? '').toLowerCase();
  if (v6 === undefined && host.includes('..')) throw badDestination('the Host header holds an invalid name');
  const port = m[3] === undefined ? defaultPort : Number(m[3]);
  if (port < 1 || port > 65535) throw badDestination('the Host header holds an invalid port');
  const authority = `${v6 === undefined ? host : `[${host}]`}:${port}`;
  return { host, port, origin: `http://${authority}`, authority };
}

/**
 * The destination of a request: its absolute-form target (only `http:`), else
 * its `Host` header with its origin-form target. Throws ERR_OUTBOUND_DESTINATION.
 */
export function destinationOf(target: string, hostHeader: string | undefined): Destination {
  if (/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(target)) {
    if (!/^http:\/\//i.test(target))
      throw badDestination('only http:// destinations are forwarded (TLS is the app’s own)');
    const rest = target.slice('http://'.length);
    const slash = rest.search(/[/?]/);
    const authority = slash < 0 ? rest : rest.slice(0, slash);
    if (authority.includes('@')) throw badDestination('credentials do not belong in the target');
    const path = slash < 0 ? '/' : rest.slice(slash);
    return { ...parseAuthority(authority), path: path.startsWith('/') ? path : `/${path}` };
  }
  if (!target.startsWith('/')) throw badDestination('the request target must be a path or an http:// URL');
  if (hostHeader === undefined || hostHeader.trim() === '')
    throw badDestination('the Host header is required to know the destination');
  return { ...parseAuthority(hostHeader), path: target };
}

/** True for `localhost`, loopback and unspecified addresses (also IPv4-mapped). */
function isLocalName(host: string): boolean {
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  if (!ipaddr.isValid(host)) return false;
  const range = ipaddr.process(host).range();
  return range === 'loopback' || range === 'unspecified';
}

/** `::ffff:10.0.0.1` → `10.0.0.1`; other addresses in their canonical form; names as they are. */
export function canonicalAddress(address: string): string {
  return ipaddr.isValid(address) ? ipaddr.process(address).toString() : address.toLowerCase();
}

/**
 * True when `dest` is the outbound listener itself: its port, on a local
 * name, a loopback or unspecified address, or one of this host's addresses.
 */
export function isOwnListener(
  dest: Destination,
  listenerPort: number,
  localAddresses: Iterable<string>,
): boolean {
  if (dest.port !== listenerPort) return false;
  if (isLocalName(dest.host)) return true;
  const host = canonicalAddress(dest.host);
  for (const a of localAddresses) if (canonicalAddress(a) === host) return true;
  return false;
}
