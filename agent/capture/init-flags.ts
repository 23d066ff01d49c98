/**
 * `tollgate init`'s flags: every flag declared once (default, description),
 * parsed once into a frozen CaptureConfig, with every problem listed together.
 * The injector passes these flags; the names are a contract.
 */
import { parseArgs } from 'node:util';
import ipaddr from 'ipaddr.js';
import { parseIpBlock } from '../../policy/engine/ip-block.ts';
import { ConfigError } from '../config.ts';
import type { CaptureConfig } from './rules.ts';

interface FlagSpec {
  type: 'string' | 'boolean';
  default?: string;
  arg?: string;
  description: string;
}

export const INIT_FLAGS: Readonly<Record<string, FlagSpec>> = {
  'inbound-ports': {
    type: 'string',
    arg: 'P,...|*',
    description: "the app's ports to capture (required; '*': every port but the exclusions)",
  },
  'exclude-inbound-ports': {
    type: 'string',
    arg: 'P,...',
    description: 'inbound ports that reach the pod untouched',
  },
  'exclude-outbound-ports': { type: 'string', arg: 'P,...', description: 'outbound ports left alone' },
  'exclude-outbound-cidrs': {
    type: 'string',
    arg: 'CIDR,...',
    description: 'outbound destinations left alone (IPv4 and IPv6)',
  },
  'agent-uid': {
    type: 'string',
    arg: 'UID',
    default: '1337',
    description: "the agent's UID: its connections are not captured",
  },
  'inbound-port': { type: 'string', arg: 'PORT', default: '15006', description: "the agent's inbound port" },
  'outbound-port': {
    type: 'string',
    arg: 'PORT',
    default: '15001',
    description: "the agent's outbound port",
  },
  'admin-port': {
    type: 'string',
    arg: 'PORT',
    default: '15020',
    description: "the agent's admin port (never captured)",
  },
  'dry-run': { type: 'boolean', description: 'print the iptables-restore input; change nothing' },
  help: { type: 'boolean', description: 'show this help' },
};

export function initHelp(): string {
  const lines = [
    'Usage: tollgate init --inbound-ports P,...|* [options]',
    '',
    "Installs the pod's traffic-capture rules (run once per pod, as root with",
    'CAP_NET_ADMIN, before the app starts): inbound TCP to the listed ports goes to',
    "the agent's inbound port, other inbound TCP is refused unless excluded;",
    "outbound TCP goes to the agent's outbound port, except the agent's own.",
    'Idempotent. Uses iptables-nft where it works, else iptables-legacy.',
    '',
    'Options:',
  ];
  for (const [name, spec] of Object.entries(INIT_FLAGS)) {
    const arg = spec.type === 'string' ? ` ${spec.arg ?? 'VALUE'}` : '';
    const def = spec.default !== undefined ? ` (default ${spec.default})` : '';
    lines.push(`${`  --${name}${arg}`.padEnd(40)} ${spec.description}${def}`);
  }
  return lines.join('\n');
}

export interface InitOptions {
  capture: CaptureConfig;
  dryRun: boolean;
}

function parsePort(flag: string, text: string, problems: string[]): number {
  const port = Number(text);
  if (!/^\d{1,5}$/.test(text) || port < 1 || port > 65535) {
    problems.push(`--${flag}: expected a port from 1 to 65535, got ${JSON.stringify(text)}`);
    return 0;
  }
  return port;
}

/** `8080, 9090` → [8080, 9090] (ascending, without repeats; empty items ignored). */
function parsePorts(flag: string, text: string | undefined, problems: string[]): number[] {
  if (text === undefined) return [];
  const items = text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const ports = items.map((s) => parsePort(flag, s, problems)).filter((p) => p > 0);
  return [...new Set(ports)].sort((a, b) => a - b);
}

/** `10.0.0.0/8, 2001:db8::/32, 10.1.2.3` → network addresses in CIDR form (a bare address is /32 or /128). */
function parseCidrs(text: string | undefined, problems: string[]): string[] {
  if (text === undefined) return [];
  const out: string[] = [];
  for (const item of text.split(',').map((s) => s.trim())) {
    if (item === '') continue;
    const block = parseIpBlock(item);
    if (!block) {
      problems.push(`--exclude-outbound-cidrs: not an IPv4 or IPv6 CIDR: ${JSON.stringify(item)}`);
      continue;
    }
    const [addr, bits] = block;
    const cidr = `${addr.toString()}/${bits}`;
    const net =
      addr.kind() === 'ipv4'
        ? ipaddr.IPv4.networkAddressFromCIDR(cidr)
        : ipaddr.IPv6.networkAddressFromCIDR(cidr);
    const normal = `${net.toString()}/${bits}`;
    if (!out.includes(normal)) out.push(normal);
  }
  return out;
}

function parseUid(text: string, problems: string[]): number {
  const uid = Number(text);
  if (!/^\d{1,10}$/.test(text) || uid > 4294967294) {
    problems.push(`--agent-uid: expected a numeric UID, got ${JSON.stringify(text)}`);
  } else if (uid === 0) {
    problems.push(
      '--agent-uid: 0 would exempt every root process from capture; run the agent as its own UID',
    );
  }
  return uid;
}

function parseInbound(text: string | undefined, problems: string[]): number[] | '*' {
  if (text === undefined) {
    problems.push("--inbound-ports is required (the app's ports, or '*')");
    return [];
  }
  return text.trim() === '*' ? '*' : parsePorts('inbound-ports', text, problems);
}

/** Conflicts between the lists and the agent's own ports. */
function crossCheck(c: CaptureConfig, problems: string[]): void {
  const given: [number, string][] = [
    [c.inboundPort, '--inbound-port'],
    [c.outboundPort, '--outbound-port'],
    [c.adminPort, '--admin-port'],
  ];
  const own = new Map(given.filter(([p]) => p > 0));
  if (own.size < given.filter(([p]) => p > 0).length)
    problems.push('--inbound-port, --outbound-port and --admin-port must differ');
  if (c.inboundPorts !== '*') {
    for (const p of c.inboundPorts) {
      const name = own.get(p);
      if (name)
        problems.push(`--inbound-ports: ${p} is the agent's own port (${name}); it is never captured`);
      if (c.excludeInboundPorts.includes(p))
        problems.push(`--inbound-ports: ${p} is also in --exclude-inbound-ports`);
    }
  }
  if (c.excludeInboundPorts.includes(c.outboundPort))
    problems.push(
      `--exclude-inbound-ports: ${c.outboundPort} is the agent's outbound port; opening it would expose the outbound proxy`,
    );
}

/** Parses `tollgate init` flags; throws ConfigError listing every problem. Returns null for --help. */
export function parseInitArgs(args: string[]): InitOptions | null {
  const problems: string[] = [];
  const options = Object.fromEntries(
    Object.entries(INIT_FLAGS).map(([k, s]) => [
      k,
      { type: s.type, ...(s.default ? { default: s.default } : {}) },
    ]),
  );
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args, options, strict: true, allowPositionals: false }));
  } catch (e) {
    problems.push((e as Error).message.split('\n')[0] ?? 'bad arguments');
    ({ values } = parseArgs({ args, options, strict: false, allowPositionals: true }));
  }
  if (values.help === true && problems.length === 0) return null;
  const str = (k: string) => (typeof values[k] === 'string' ? (values[k] as string) : undefined);
  const capture: CaptureConfig = {
    inboundPorts: parseInbound(str('inbound-ports'), problems),
    excludeInboundPorts: parsePorts('exclude-inbound-ports', str('exclude-inbound-ports'), problems),
    excludeOutboundPorts: parsePorts('exclude-outbound-ports', str('exclude-outbound-ports'), problems),
    excludeOutboundCidrs: parseCidrs(str('exclude-outbound-cidrs'), problems),
    agentUid: parseUid(str('agent-uid') ?? '', problems),
    inboundPort: parsePort('inbound-port', str('inbound-port') ?? '', problems),
    outboundPort: parsePort('outbound-port', str('outbound-port') ?? '', problems),
    adminPort: parsePort('admin-port', str('admin-port') ?? '', problems),
  };
  crossCheck(capture, problems);
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze({ capture: Object.freeze(capture), dryRun: values['dry-run'] === true });
}
