/**
 * The Redis connection of Global rate limits (ioredis), tuned never to make a
 * request wait on a dead store: no offline queue (a command on a broken
 * connection fails at once), no per-command retries, a bounded connect and
 * command timeout, and reconnection with backoff in the background.
 * Three URL forms, credentials never reaching a log:
 * - `redis://` or `rediss://` (TLS): one server, `rediss://user:pass@host:6380/0`;
 * - `redis-sentinel://[user:pass@]host:26379,host2:26379/<master name>[?tls=true]`:
 *   the master found through Sentinel (ioredis' own Sentinel support);
 * - `redis-cluster://[user:pass@]host:6379,host2:6379[?tls=true]`: Redis Cluster
 *   (ioredis' Cluster; all buckets of one policy share a hash slot).
 */
import { createRequire } from 'node:module';
import type { Cluster, Redis } from 'ioredis';

/** ioredis, loaded when a client is made: an agent without Global limits never loads it. */
function ioredis(): typeof import('ioredis') {
  return createRequire(import.meta.url)('ioredis') as typeof import('ioredis');
}

export interface RedisClientOptions {
  /** Command timeout in ms (the limiter's own wait is bounded the same way). */
  timeoutMs: number;
  /** Connection failures, logged at debug level: the limiter logs the transitions. */
  onError?: (e: Error) => void;
}

export type RedisTarget =
  | { kind: 'single'; url: string }
  | { kind: 'sentinel'; nodes: HostPort[]; name: string; auth: Auth; tls: boolean }
  | { kind: 'cluster'; nodes: HostPort[]; auth: Auth; tls: boolean };

interface HostPort {
  host: string;
  port: number;
}

interface Auth {
  username?: string;
  password?: string;
}

const MULTI =
  /^(redis-sentinel|redis-cluster):\/\/(?:([^:@/]*)(?::([^@/]*))?@)?([^/?#]+)(?:\/([^?#]*))?(?:\?([^#]*))?$/;

function hostPorts(list: string, defaultPort: number): HostPort[] | null {
  const out: HostPort[] = [];
  for (const item of list.split(',')) {
    const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(?::(\d{1,5}))?$/.exec(item.trim());
    if (!m?.[1]) return null;
    const port = m[2] === undefined ? defaultPort : Number(m[2]);
    if (port < 1 || port > 65535) return null;
    out.push({ host: m[1].replace(/^\[|\]$/g, ''), port });
  }
  return out.length > 0 ? out : null;
}

/**
 * Reads a store URL into what ioredis needs; a string says what is wrong (never
 * quoting the URL, which may hold a password).
 */
export function parseRedisTarget(text: string): RedisTarget | string {
  if (/^rediss?:\/\//.test(text)) {
    try {
      return new URL(text).hostname ? { kind: 'single', url: text } : 'no host';
    } catch {
      return 'not a URL';
    }
  }
  const m = MULTI.exec(text);
  if (!m) return 'expected redis://, rediss:// (TLS), redis-sentinel:// or redis-cluster://';
  const sentinel = m[1] === 'redis-sentinel';
  const nodes = hostPorts(m[4] ?? '', sentinel ? 26379 : 6379);
  if (!nodes) return 'bad host list (host[:port],host[:port]...)';
  const auth: Auth = {
    ...(m[2] ? { username: decodeURIComponent(m[2]) } : {}),
    ...(m[3] ? { password: decodeURIComponent(m[3]) } : {}),
  };
  const tls = new URLSearchParams(m[6] ?? '').get('tls') === 'true';
  if (!sentinel) return { kind: 'cluster', nodes, auth, tls };
  const name = decodeURIComponent(m[5] ?? '');
  return name ? { kind: 'sentinel', nodes, name, auth, tls } : 'a Sentinel URL names the master: .../<name>';
}

/** A client that has not connected yet: `connectWithin` connects it. */
export function createRedisClient(url: string, options: RedisClientOptions): Redis | Cluster {
  const target = parseRedisTarget(url);
  if (typeof target === 'string') throw new Error(`invalid Redis URL: ${target}`);
  const common = {
    lazyConnect: true,
    enableAutoPipelining: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: Math.max(options.timeoutMs, 1),
    connectTimeout: 1_000,
    // Reconnect forever, backing off up to 2 s between attempts.
    retryStrategy: (times: number) => Math.min(100 * times, 2_000),
  };
  const { Cluster, Redis } = ioredis();
  let client: Redis | Cluster;
  if (target.kind === 'single') client = new Redis(target.url, common);
  else if (target.kind === 'sentinel') {
    client = new Redis({
      ...common,
      ...target.auth,
      sentinels: target.nodes,
      name: target.name,
      ...(target.tls ? { tls: {}, enableTLSForSentinelMode: true } : {}),
    });
  } else {
    client = new Cluster(target.nodes, {
      lazyConnect: true,
      enableAutoPipelining: true,
      enableOfflineQueue: false,
      clusterRetryStrategy: (times: number) => Math.min(100 * times, 2_000),
      redisOptions: { ...common, ...target.auth, ...(target.tls ? { tls: {} } : {}) },
    });
  }
  // Without a listener ioredis prints every failed reconnection to stderr.
  client.on('error', (e: Error) => options.onError?.(e));
  return client;
}

/** Starts connecting; resolves once ready or after `ms` (the limiter falls back until then). */
export async function connectWithin(client: Redis | Cluster, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  // connect() rejects on the first failure; reconnection goes on in the background.
  await Promise.race([client.connect().catch(() => {}), timeout]);
  clearTimeout(timer);
}

/** The URL without its password (for logs and /config). */
export function redactRedisUrl(text: string): string {
  const multi = MULTI.exec(text);
  if (multi) return text.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:redacted@');
  try {
    const url = new URL(text);
    if (url.password) url.password = 'redacted';
    return url.toString();
  } catch {
    return '(invalid URL)';
  }
}
