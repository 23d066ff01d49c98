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
  /** mTLS from files (`--tls-cert`, `--tls-key`, `--trust-bundle`, all three or none); null/absent: plaintext only. */
  tls?: Readonly<{ cert: string; key: string; trustBundle: string }> | null;
  /** The outbound listener for the app's redirected connections (`--outbound`); null/absent: none. */
  outbound?: HostPort | null;
  /** Standalone: the meshed destinations the outbound listener sends over mTLS (`--mesh`); null/absent: none. */
  meshFile?: string | null;
  /** Pod labels for selectors; null = every policy in the file applies. */
  labels: Readonly<Record<string, string>> | null;
  logLevel: 'debug' | 'info' | 'warn' | 'error';
  /** Redis shared by `scope: Global` rate limits (`redis://` or `rediss://`); null/absent: per sidecar. */
  redisUrl?: string | null;
  /** Longest wait for Redis (ms) before a request is limited on local buckets instead (default 50). */
  redisTimeoutMs?: number;
  /** Operator mode (`--operator`): the policy comes from the operator; null/absent: standalone (`--policy`). */
  operator?: OperatorConfig | null;
  /** One `info` line per request (default true; `--log-level warn` also silences it). */
  accessLog?: boolean;
  /** Also export each access line as an OTLP log record when OTLP logs are on (default false: the span has it all). */
  accessLogOtlp?: boolean;
  /** The verified `sub` in access and security logs: none (default), hash or plain. */
  logSubject?: SubjectLogging;
}

/** Where and how the agent reaches the operator (`--operator` and its companions). */
export interface OperatorConfig {
  /** gRPC target, `HOST:PORT` as given. */
  target: string;
  /** PEM CA that signs the operator's serving certificate. */
  caFile: string;
  /** TLS name the serving certificate must carry (default the HOST of the target). */
  serverName: string;
  tokenFile: string;
  podName: string;
  podNamespace: string;
  /** Folder keeping the last good bundle; null: none kept. */
  stateDir: string | null;
  /** Reconnect backoff ceilings (ms): the first, and the largest. */
  backoffMs: Readonly<{ min: number; max: number }>;
  /**
   * mTLS on the inbound port with a certificate the operator signs (`--mtls
   * on`, the default unless certificate files are given); false: none from it.
   */
  mtls: boolean;
}

interface FlagSpec {
  type: 'string' | 'boolean';
  default?: string;
  /** Environment variable that supplies the value when the flag is not given. */
  env?: string;
  /** The value's name in --help (default the flag's name in capitals). */
  arg?: string;
  description: string;
}

export const AGENT_FLAGS: Readonly<Record<string, FlagSpec>> = {
  policy: {
    type: 'string',
    description: 'ApiPolicy YAML file or folder (standalone mode); reloaded on change',
  },
  operator: {
    type: 'string',
    arg: 'HOST:PORT',
    description: 'the operator to stream policy from (operator mode, instead of --policy)',
  },
  'operator-ca': {
    type: 'string',
    arg: 'FILE',
    description: "PEM CA that signs the operator's serving certificate (required with --operator)",
  },
  'operator-server-name': {
    type: 'string',
    arg: 'NAME',
    description: "TLS name the operator's certificate must carry (default the HOST of --operator)",
  },
  'token-file': {
    type: 'string',
    arg: 'FILE',
    default: '/var/run/secrets/tollgate/serviceaccount/token',
    description: 'projected ServiceAccount token (audience tollgate) for the Hello, re-read on every connect',
  },
  'pod-name': { type: 'string', arg: 'NAME', env: 'POD_NAME', description: 'this pod (operator mode)' },
  'pod-namespace': {
    type: 'string',
    arg: 'NAMESPACE',
    env: 'POD_NAMESPACE',
    description: "this pod's namespace (operator mode)",
  },
  'state-dir': {
    type: 'string',
    arg: 'DIR',
    description: 'keeps the last good bundle, enforced at start when the operator is down; none: not kept',
  },
  'operator-backoff-ms': {
    type: 'string',
    arg: 'MIN,MAX',
    default: '500,30000',
    description: 'reconnect backoff: first and largest ceiling in ms (full jitter)',
  },
  mtls: {
    type: 'string',
    description:
      'on | off: operator mode, mTLS on the inbound port with a certificate the operator signs (default on; off with --tls-cert)',
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
  outbound: {
    type: 'string',
    arg: 'HOST:PORT',
    description: "outbound listener: forwards the app's captured HTTP by its Host header (none: off)",
  },
  mesh: {
    type: 'string',
    arg: 'FILE',
    description:
      'standalone: meshed destinations (addresses, ports, SPIFFE IDs) the outbound listener sends over mTLS; reloaded on change',
  },
  'tls-cert': {
    type: 'string',
    arg: 'FILE',
    description: 'PEM certificate (SPIFFE URI SAN) for mTLS on the inbound port; reloaded on change',
  },
  'tls-key': { type: 'string', arg: 'FILE', description: 'its PEM private key' },
  'trust-bundle': {
    type: 'string',
    arg: 'FILE',
    description: 'PEM CA certificates client certificates must chain to',
  },
  labels: { type: 'string', description: 'pod labels k=v,... matched against policy selectors' },
  'log-level': { type: 'string', default: 'info', description: 'debug | info | warn | error' },
  'access-log': {
    type: 'string',
    default: 'on',
    description: 'on | off: one JSON line per request (at info level)',
  },
  'access-log-otlp': {
    type: 'string',
    default: 'off',
    description: 'on | off: also export each access line as an OTLP log record (OTLP logs on)',
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
  const lines = [
    'Usage: tollgate agent --policy PATH --upstream URL [options]',
    '       tollgate agent --operator HOST:PORT --operator-ca FILE --upstream URL [options]',
    '',
    'Options:',
  ];
  for (const [name, spec] of Object.entries(AGENT_FLAGS)) {
    const arg = spec.type === 'string' ? ` ${spec.arg ?? name.toUpperCase().replaceAll('-', '_')}` : '';
    const def =
      spec.default !== undefined ? ` (default ${spec.default})` : spec.env ? ` (default $${spec.env})` : '';
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

/** `HOST:PORT` (IPv6 in brackets); a problem is added and a placeholder returned when it is not one. */
export function parseHostPort(flag: string, text: string, problems: string[]): HostPort {
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

function parseBackoff(text: string, problems: string[]): { min: number; max: number } {
  const m = /^(\d{1,7}),(\d{1,7})$/.exec(text);
  const min = Number(m?.[1]);
  const max = Number(m?.[2]);
  if (!m || min < 1 || max < min) {
    problems.push(
      `--operator-backoff-ms: expected MIN,MAX in ms with 1 <= MIN <= MAX, got ${JSON.stringify(text)}`,
    );
    return { min: 500, max: 30_000 };
  }
  return { min, max };
}

/** Flags that only mean something with --operator (labels select policies only in standalone mode). */
const OPERATOR_ONLY = [
  'operator-ca',
  'operator-server-name',
  'token-file',
  'state-dir',
  'operator-backoff-ms',
  'mtls',
];

function parseOperator(
  values: Record<string, string | boolean | undefined>,
  given: ReadonlySet<string>,
  env: Readonly<Record<string, string | undefined>>,
  problems: string[],
): OperatorConfig | null {
  const str = (k: string) => (typeof values[k] === 'string' ? (values[k] as string) : undefined);
  const target = str('operator');
  if (target === undefined) {
    for (const flag of OPERATOR_ONLY) if (given.has(flag)) problems.push(`--${flag} needs --operator`);
    return null;
  }
  if (str('policy') !== undefined) problems.push('--policy and --operator exclude each other');
  if (given.has('labels')) problems.push('--labels is for --policy (the operator selects the policies)');
  const address = parseHostPort('operator', target, problems);
  const fromEnv = (flag: string) => {
    const name = AGENT_FLAGS[flag]?.env ?? '';
    const value = str(flag) ?? env[name];
    if (!value) problems.push(`--${flag} (or $${name}) is required with --operator`);
    return value ?? '';
  };
  const caFile = str('operator-ca');
  if (!caFile) problems.push('--operator-ca is required with --operator');
  const tokenFile = str('token-file') ?? '';
  if (!tokenFile) problems.push('--token-file: a file is required');
  const stateDir = str('state-dir');
  if (stateDir === '') problems.push('--state-dir: a folder is required');
  const serverName = str('operator-server-name');
  if (serverName === '') problems.push('--operator-server-name: a name is required');
  const files = given.has('tls-cert') || given.has('tls-key') || given.has('trust-bundle');
  const mtls = str('mtls') ?? (files ? 'off' : 'on');
  if (!['on', 'off'].includes(mtls)) problems.push(`--mtls: on | off, got ${JSON.stringify(mtls)}`);
  if (mtls === 'on' && files)
    problems.push('--mtls on and --tls-cert/--tls-key/--trust-bundle exclude each other (one identity)');
  return {
    target,
    caFile: caFile ?? '',
    serverName: serverName || address.host,
    tokenFile,
    podName: fromEnv('pod-name'),
    podNamespace: fromEnv('pod-namespace'),
    stateDir: stateDir || null,
    backoffMs: Object.freeze(parseBackoff(str('operator-backoff-ms') ?? '', problems)),
    mtls: mtls === 'on',
  };
}

function parseMeshFile(
  file: string | undefined,
  outbound: boolean,
  operatorMode: boolean,
  problems: string[],
): string | null {
  if (file === undefined) return null;
  if (file === '') problems.push('--mesh: a file is required');
  else if (operatorMode) problems.push('--mesh: in operator mode the operator streams the mesh');
  else if (!outbound) problems.push('--mesh needs --outbound (it says which outbound destinations get mTLS)');
  return file;
}

function parseTlsFiles(
  cert: string | undefined,
  key: string | undefined,
  trustBundle: string | undefined,
  problems: string[],
): Readonly<{ cert: string; key: string; trustBundle: string }> | null {
  const given = [cert, key, trustBundle].filter((v) => v !== undefined).length;
  if (given === 0) return null;
  if (given < 3 || !cert || !key || !trustBundle) {
    problems.push('--tls-cert, --tls-key and --trust-bundle go together');
    return null;
  }
  return Object.freeze({ cert, key, trustBundle });
}

/**
 * Parses agent flags (`env` supplies the values of flags declared with one:
 * POD_NAME, POD_NAMESPACE); throws ConfigError listing every problem. Returns
 * null for --help.
 */
export function parseAgentConfig(
  args: string[],
  env: Readonly<Record<string, string | undefined>> = process.env,
): AgentConfig | null {
  const problems: string[] = [];
  const options = Object.fromEntries(
    Object.entries(AGENT_FLAGS).map(([k, s]) => [
      k,
      { type: s.type, ...(s.default ? { default: s.default } : {}) },
    ]),
  );
  let values: Record<string, string | boolean | undefined>;
  let tokens: { kind: string; name?: string }[];
  try {
    ({ values, tokens } = parseArgs({ args, options, strict: true, allowPositionals: false, tokens: true }));
  } catch (e) {
    // Report it, then read the rest leniently so every other problem is listed too.
    problems.push((e as Error).message.split('\n')[0] ?? 'bad arguments');
    ({ values, tokens } = parseArgs({ args, options, strict: false, allowPositionals: true, tokens: true }));
  }
  const given = new Set(tokens.flatMap((t) => (t.kind === 'option' && t.name ? [t.name] : [])));
  if (values.help === true && problems.length === 0) return null;
  const str = (k: string) => (typeof values[k] === 'string' ? (values[k] as string) : undefined);
  const policyPath = str('policy');
  const operator = parseOperator(values, given, env, problems);
  if (!policyPath && !operator) problems.push('--policy (standalone) or --operator is required');
  const logLevel = str('log-level') ?? 'info';
  if (!['debug', 'info', 'warn', 'error'].includes(logLevel))
    problems.push('--log-level: debug | info | warn | error');
  const accessLog = str('access-log') ?? 'on';
  if (!['on', 'off'].includes(accessLog)) problems.push('--access-log: on | off');
  const accessLogOtlp = str('access-log-otlp') ?? 'off';
  if (!['on', 'off'].includes(accessLogOtlp)) problems.push('--access-log-otlp: on | off');
  const logSubject = str('log-subject') ?? 'none';
  if (!['none', 'hash', 'plain'].includes(logSubject)) problems.push('--log-subject: none | hash | plain');
  const config: AgentConfig = {
    policyPath: policyPath ?? '',
    upstream: parseUpstream(str('upstream'), problems),
    listen: parseHostPort('listen', str('listen') ?? '', problems),
    admin: parseHostPort('admin', str('admin') ?? '', problems),
    outbound:
      str('outbound') === undefined ? null : parseHostPort('outbound', str('outbound') ?? '', problems),
    tls: parseTlsFiles(str('tls-cert'), str('tls-key'), str('trust-bundle'), problems),
    meshFile: parseMeshFile(str('mesh'), str('outbound') !== undefined, operator !== null, problems),
    labels: parseLabels(str('labels'), problems),
    logLevel: logLevel as AgentConfig['logLevel'],
    redisUrl: parseRedisUrl(str('redis-url'), problems),
    redisTimeoutMs: parseTimeout(str('redis-timeout') ?? '50', problems),
    operator: operator ? Object.freeze(operator) : null,
    accessLog: accessLog !== 'off',
    accessLogOtlp: accessLogOtlp === 'on',
    logSubject: logSubject as SubjectLogging,
  };
  if (problems.length > 0) throw new ConfigError(problems);
  Object.freeze(config.listen);
  Object.freeze(config.admin);
  if (config.outbound) Object.freeze(config.outbound);
  if (config.labels) Object.freeze(config.labels);
  return Object.freeze(config);
}
