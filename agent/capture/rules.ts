/**
 * The pod's traffic-capture rules, as data: which chains Tollgate owns in the
 * `nat` and `filter` tables and what goes in them, for one IP family. Pure (no
 * I/O): `restore.ts` turns a ruleset into `iptables-restore` input, and the
 * rules are written in the canonical form `iptables-save` prints them in, so
 * what is applied can be compared with what is there line for line.
 *
 * Semantics (Istio's, except that inbound ports outside the list are refused):
 * - inbound TCP to a captured port is redirected to the agent's inbound port;
 *   to an excluded port, the admin port or over loopback it passes untouched;
 *   any other new inbound TCP connection is refused with a TCP reset;
 * - outbound TCP is redirected to the agent's outbound port, except the
 *   agent's own connections (its UID), loopback, excluded CIDRs and ports;
 *   the agent's connections to the pod's own address go through inbound.
 */

/** The capture settings `tollgate init` takes (init-flags.ts parses and checks them). */
export interface CaptureConfig {
  /** Inbound ports redirected to the agent, ascending; '*' captures every port but the exclusions. */
  inboundPorts: readonly number[] | '*';
  /** Inbound ports that reach the pod untouched (not captured, not refused). */
  excludeInboundPorts: readonly number[];
  /** Outbound destination ports left alone. */
  excludeOutboundPorts: readonly number[];
  /** Outbound destinations left alone, network addresses in CIDR form (both families). */
  excludeOutboundCidrs: readonly string[];
  /** The agent's UID: its own connections are never captured. */
  agentUid: number;
  /** The agent's inbound listener (default 15006). */
  inboundPort: number;
  /** The agent's outbound listener (default 15001). */
  outboundPort: number;
  /** The agent's admin port (default 15020): never captured, never refused. */
  adminPort: number;
}

export type IpFamily = 4 | 6;

/** Tollgate's chains, per table. */
export const CHAINS = {
  nat: ['TOLLGATE_INBOUND', 'TOLLGATE_IN_REDIRECT', 'TOLLGATE_OUTPUT', 'TOLLGATE_REDIRECT'],
  filter: ['TOLLGATE_INBOUND_GUARD'],
} as const;

export type TableName = keyof typeof CHAINS;

/** One table's share of the ruleset. */
export interface TableRules {
  /** Tollgate's own chains (declared, hence flushed, on every apply). */
  chains: readonly string[];
  /** `-A` lines of Tollgate's chains, in order. */
  rules: readonly string[];
  /** `-A` lines in built-in chains that jump to Tollgate's chains (added once). */
  jumps: readonly string[];
}

export type Ruleset = Readonly<Record<TableName, TableRules>>;

const LOOPBACK: Readonly<Record<IpFamily, string>> = { 4: '127.0.0.1/32', 6: '::1/128' };

function dport(chain: string, port: number, target: string): string {
  return `-A ${chain} -p tcp -m tcp --dport ${port} -j ${target}`;
}

/** True when the CIDR belongs to the family (IPv6 ones contain a colon). */
export function cidrFamily(cidr: string): IpFamily {
  return cidr.includes(':') ? 6 : 4;
}

function natRules(c: CaptureConfig, family: IpFamily): TableRules {
  const uid = c.agentUid;
  const lo = LOOPBACK[family];
  const rules = [
    `-A TOLLGATE_IN_REDIRECT -p tcp -j REDIRECT --to-ports ${c.inboundPort}`,
    `-A TOLLGATE_REDIRECT -p tcp -j REDIRECT --to-ports ${c.outboundPort}`,
    dport('TOLLGATE_INBOUND', c.adminPort, 'RETURN'),
  ];
  if (c.inboundPorts === '*') {
    for (const p of c.excludeInboundPorts) rules.push(dport('TOLLGATE_INBOUND', p, 'RETURN'));
    rules.push('-A TOLLGATE_INBOUND -p tcp -j TOLLGATE_IN_REDIRECT');
  } else {
    for (const p of c.inboundPorts) rules.push(dport('TOLLGATE_INBOUND', p, 'TOLLGATE_IN_REDIRECT'));
  }
  rules.push(
    // The agent calling the pod's own address (not 127.0.0.1) is inbound traffic: policy applies.
    `-A TOLLGATE_OUTPUT ! -d ${lo} -o lo -m owner --uid-owner ${uid} -j TOLLGATE_INBOUND`,
    // The app calling itself over loopback (its own pod address included) stays inside the pod.
    `-A TOLLGATE_OUTPUT -o lo -m owner ! --uid-owner ${uid} -j RETURN`,
    `-A TOLLGATE_OUTPUT -m owner --uid-owner ${uid} -j RETURN`,
    `-A TOLLGATE_OUTPUT -d ${lo} -j RETURN`,
  );
  for (const cidr of c.excludeOutboundCidrs)
    if (cidrFamily(cidr) === family) rules.push(`-A TOLLGATE_OUTPUT -d ${cidr} -j RETURN`);
  for (const p of c.excludeOutboundPorts) rules.push(dport('TOLLGATE_OUTPUT', p, 'RETURN'));
  rules.push('-A TOLLGATE_OUTPUT -j TOLLGATE_REDIRECT');
  return {
    chains: CHAINS.nat,
    rules,
    jumps: ['-A PREROUTING -p tcp -j TOLLGATE_INBOUND', '-A OUTPUT -p tcp -j TOLLGATE_OUTPUT'],
  };
}

function filterRules(c: CaptureConfig): TableRules {
  const guard = 'TOLLGATE_INBOUND_GUARD';
  const rules = [
    `-A ${guard} -i lo -j RETURN`,
    // Replies to the pod's own connections, and anything past its first packet.
    `-A ${guard} -m conntrack ! --ctstate NEW -j RETURN`,
    // Redirected by TOLLGATE_INBOUND: a captured port, now bound for the agent.
    `-A ${guard} -m conntrack --ctstate DNAT -j RETURN`,
    dport(guard, c.adminPort, 'RETURN'),
  ];
  for (const p of c.excludeInboundPorts) rules.push(dport(guard, p, 'RETURN'));
  rules.push(`-A ${guard} -p tcp -j REJECT --reject-with tcp-reset`);
  return { chains: CHAINS.filter, rules, jumps: [`-A INPUT -p tcp -j ${guard}`] };
}

/** The ruleset for one family (IPv4 for iptables, IPv6 for ip6tables). */
export function captureRules(config: CaptureConfig, family: IpFamily): Ruleset {
  return { nat: natRules(config, family), filter: filterRules(config) };
}
