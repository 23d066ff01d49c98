/**
 * The Redis connection of Global rate limits (ioredis), tuned never to make a
 * request wait on a dead store: no offline queue (a command on a broken
 * connection fails at once), no per-command retries, a bounded connect and
 * command timeout, and reconnection with backoff in the background.
 * `redis://` or `rediss://` (TLS) URLs, credentials and database included
 * (`rediss://user:pass@host:6380/0`); credentials never reach a log.
 */
import { Redis } from 'ioredis';

export interface RedisClientOptions {
  /** Command timeout in ms (the limiter's own wait is bounded the same way). */
  timeoutMs: number;
  /** Connection failures, logged at debug level: the limiter logs the transitions. */
  onError?: (e: Error) => void;
}

/** A client that has not connected yet: `connectWithin` connects it. */
export function createRedisClient(url: string, options: RedisClientOptions): Redis {
  const client = new Redis(url, {
    lazyConnect: true,
    enableAutoPipelining: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: Math.max(options.timeoutMs, 1),
    connectTimeout: 1_000,
    // Reconnect forever, backing off up to 2 s between attempts.
    retryStrategy: (times: number) => Math.min(100 * times, 2_000),
  });
  // Without a listener ioredis prints every failed reconnection to stderr.
  client.on('error', (e: Error) => options.onError?.(e));
  return client;
}

/** Starts connecting; resolves once ready or after `ms` (the limiter falls back until then). */
export async function connectWithin(client: Redis, ms: number): Promise<void> {
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
  try {
    const url = new URL(text);
    if (url.password) url.password = 'redacted';
    return url.toString();
  } catch {
    return '(invalid URL)';
  }
}
