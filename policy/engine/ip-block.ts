/**
 * Client-address blocks of `ipBlocks`: strict parsing (only dotted-quad IPv4 —
 * no octal, hex or shortened forms a resolver would read differently — and
 * standard IPv6) and matching, with IPv4-mapped IPv6 on either side read as IPv4.
 */
import ipaddr from 'ipaddr.js';

export type IpBlock = [ipaddr.IPv4 | ipaddr.IPv6, number];

const DOTTED_QUAD =
  /^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}$/;

function parseAddress(text: string): ipaddr.IPv4 | ipaddr.IPv6 | null {
  if (text.includes(':')) return ipaddr.IPv6.isValid(text) ? ipaddr.IPv6.parse(text) : null;
  return DOTTED_QUAD.test(text) ? ipaddr.IPv4.parse(text) : null;
}

/** Parses `10.0.0.0/8`, `2001:db8::/32` or a single address; null when malformed. */
export function parseIpBlock(text: string): IpBlock | null {
  const slash = text.indexOf('/');
  const addr = parseAddress(slash < 0 ? text : text.slice(0, slash));
  if (!addr) return null;
  const max = addr.kind() === 'ipv4' ? 32 : 128;
  let bits = max;
  if (slash >= 0) {
    const p = text.slice(slash + 1);
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p) || Number(p) > max) return null;
    bits = Number(p);
  }
  if (addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress() && bits >= 96) {
    return [(addr as ipaddr.IPv6).toIPv4Address(), bits - 96];
  }
  return [addr, bits];
}

/** True when the client address lies in one of the blocks. */
export function ipInBlocks(ip: string, blocks: readonly IpBlock[]): boolean {
  if (!ipaddr.isValid(ip)) return false;
  const addr = ipaddr.process(ip);
  return blocks.some(([range, bits]) => addr.kind() === range.kind() && addr.match(range, bits));
}

/** True for loopback addresses (127.0.0.0/8, ::1) and the name localhost. */
export function isLoopbackHost(host: string): boolean {
  if (host === 'localhost') return true;
  const addr = parseAddress(host.replace(/^\[|\]$/g, ''));
  return addr !== null && ipaddr.process(addr.toString()).range() === 'loopback';
}
