/**
 * The agent's process configuration: every flag declared once (name, default,
 * description), parsed once, all problems listed together, then frozen.
 */
import { parseArgs } from 'node:util';
import { parseRedisTarget } from './pipeline/ratelimit/redis-client.ts';
import type { SubjectLogging } from './telemetry/access-log.ts';

export interface HostPort {
  host: string;
  port: number;
}

export interface AgentConfig {
  policyPath: string;
  upstream: URL;
  listen: HostPort;
  admin: HostPort;
  /** Pod labels for selectors; null = every policy in the file applies. */
  labels: Readonly<Record<string, string>> | null;
  logLevel: 'debug' | 'info' | 'warn' | 'error';
  /** Redis shared by `scope: Global` rate limits (`redis://` or `rediss://`); null/absent: per sidecar. */
  redisUrl?: string | null;
  /** Longest wait for Redis (ms) before a request is limited on local buckets instead (default 50). */
  redisTimeoutMs?: number;
  /** One `info` line per request (default true; `--log-level warn` also silences it). */
  accessLog?: boolean;
  /** The verified `sub` in access and security logs: none (default), hash or plain. */
  logSubject?: SubjectLogging;
}

interface FlagSpec {
  type: 'string' | 'boolean';
  default?: string;
  description: string;
}

export const AGENT_FLAGS: Readonly<Record<string, FlagSpec>> = {
  policy: {
    type: 'string',
    description: 'ApiPolicy YAML file or folder (standalone mode); reloaded on change',
  },
  upstream: {
    type: 'string',
    description: 'the app, e.g. http://127.0.0.1:8080 (its port selects policies)',
  },
  listen: { type: 'string', default: '0.0.0.0:15006', description: 'inbound listener HOST:PORT' },
  admin: {
    type: 'string',
    default: '127.0.0.1:15020',
    description: 'admin listener HOST:PORT (/healthz /readyz /metrics /config)',
  },
  labels: { type: 'string', description: 'pod labels k=v,... matched against policy selectors' },
  'log-level': { type: 'string', default: 'info', description: 'debug | info | warn | error' },
  'access-log': {
    type: 'string',
    default: 'on',
    description: 'on | off: one JSON line per request (at info level)',
  },
  'log-subject': {
    type: 'string',
    default: 'none',
    description: "none | hash | plain: the token's sub in access and security logs",
  },
  'redis-url': {
    type: 'string',
    description:
      'Redis for Global rate limits: redis://, rediss:// (TLS), redis-sentinel://h1,h2/master or redis-cluster://h1,h2; none: per sidecar',
  },
  'redis-timeout': {
    type: 'string',
    default: '50',
    description: 'ms to wait for Redis before falling back to local buckets',
  },
  help: { type: 'boolean', description: 'show this help' },
};

export function agentHelp(): string {
  const lines = ['Usage: tollgate agent --policy PATH --upstream URL [options]', '', 'Options:'];
  for (const [name, spec] of Object.entries(AGENT_FLAGS)) {
    const arg = spec.type === 'string' ? ` ${name.toUpperCase().replace('-', '_')}` : '';
    const def = spec.default === undefined ? '' : ` (default ${spec.default})`;
    lines.push(`${`  --${name}${arg}`.padEnd(27)} ${spec.description}${def}`);
  }
  return lines.join('\n');
}

export class ConfigError extends Error {
  readonly code = 'ERR_CONFIG_INVALID';
  readonly problems: string[];
  constructor(problems: string[]) {
    super(problems.join('; '));
    this.problems = problems;
  }
}

function parseHostPort(flag: string, text: string, problems: string[]): HostPort {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+):(\d{1,5})$/.exec(text);
  const port = Number(m?.[2]);
  if (!m?.[1] || !Number.isInteger(port) || port > 65535) {
    problems.push(`--${flag}: expected HOST:PORT, got ${JSON.stringify(text)}`);
    return { host: '127.0.0.1', port: 0 };
  }
  return { host: m[1].replace(/^\[|\]$/g, ''), port };
}

function parseUpstream(text: string | undefined, problems: string[]): URL {
  if (text === undefined) {
    problems.push('--upstream is required');
    return new URL('http://127.0.0.1:1');
  }
  try {
    const url = new URL(text);
    if (url.protocol !== 'http:')
      problems.push('--upstream: only http:// upstreams are supported (the app is on loopback)');
    if (url.pathname !== '/' || url.search || url.hash)
      problems.push('--upstream: give an origin (no path or query)');
    if (url.username || url.password) problems.push('--upstream: credentials do not belong in the URL');
    return url;
  } catch {
    problems.push(`--upstream: not a URL: ${JSON.stringify(text)}`);
    return new URL('http://127.0.0.1:1');
  }
}

function parseRedisUrl(text: string | undefined, problems: string[]): string | null {
  if (text === undefined) return null;
  const target = parseRedisTarget(text);
  if (typeof target === 'string') {
    // The text may carry a password: never echo it.
    problems.push(`--redis-url: ${target}`);
    return null;
  }
  return text;
}

function parseTimeout(text: string, problems: string[]): number {
  const ms = Number(text);
  if (!/^\d+$/.test(text) || ms < 1 || ms > 60_000) {
    problems.push(`--redis-timeout: expected milliseconds from 1 to 60000, got ${JSON.stringify(text)}`);
    return 50;
  }
  return ms;
}

function parseLabels(text: string | undefined, problems: string[]): Record<string, string> | null {
  if (text === undefined) return null;
  const labels: Record<string, string> = {};
  for (const pair of text.split(',').filter(Boolean)) {
    const i = pair.indexOf('=');
    const key = pair.slice(0, Math.max(i, 0)).trim();
    if (i < 0 || key === '') problems.push(`--labels: expected k=v, got ${JSON.stringify(pair)}`);
    else labels[key] = pair.slice(i + 1).trim();
  }
  return labels;
}

/** Parses agent flags; throws ConfigError listing every problem. Returns null for --help. */
export function parseAgentConfig(args: string[]): AgentConfig | null {
  const problems: string[] = [];
  const options = Object.fromEntries(
    Object.entries(AGENT_FLAGS).map(([k, s]) => [
      k,
      { type: s.type, ...(s.default ? { default: s.default } : {}) },
    ]),
  );
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({ args, options, strict: true, allowPositionals: false }).values;
  } catch (e) {
    // Report it, then read the rest leniently so every other problem is listed too.
    problems.push((e as Error).message.split('\n')[0] ?? 'bad arguments');
    values = parseArgs({ args, options, strict: false, allowPositionals: true }).values;
  }
  if (values.help === true && problems.length === 0) return null;
  const str = (k: string) => (typeof values[k] === 'string' ? (values[k] as string) : undefined);
  const policyPath = str('policy');
  if (!policyPath) problems.push('--policy is required (standalone mode)');
  const logLevel = str('log-level') ?? 'info';
  if (!['debug', 'info', 'warn', 'error'].includes(logLevel))
    problems.push('--log-level: debug | info | warn | error');
  const accessLog = str('access-log') ?? 'on';
  if (!['on', 'off'].includes(accessLog)) problems.push('--access-log: on | off');
  const logSubject = str('log-subject') ?? 'none';
  if (!['none', 'hash', 'plain'].includes(logSubject)) problems.push('--log-subject: none | hash | plain');
  const config: AgentConfig = {
    policyPath: policyPath ?? '',
    upstream: parseUpstream(str('upstream'), problems),
    listen: parseHostPort('listen', str('listen') ?? '', problems),
    admin: parseHostPort('admin', str('admin') ?? '', problems),
    labels: parseLabels(str('labels'), problems),
    logLevel: logLevel as AgentConfig['logLevel'],
    redisUrl: parseRedisUrl(str('redis-url'), problems),
    redisTimeoutMs: parseTimeout(str('redis-timeout') ?? '50', problems),
    accessLog: accessLog !== 'off',
    logSubject: logSubject as SubjectLogging,
  };
  if (problems.length > 0) throw new ConfigError(problems);
  Object.freeze(config.listen);
  Object.freeze(config.admin);
  if (config.labels) Object.freeze(config.labels);
  return Object.freeze(config);
}
