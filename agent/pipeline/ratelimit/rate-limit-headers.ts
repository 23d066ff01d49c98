/**
 * Response headers for a limited route: IETF `RateLimit-*` (limit = the bucket's
 * capacity, reset in seconds until a token is available) and `X-RateLimit-*`
 * (reset as Unix seconds); on refusal `Retry-After` is always sent, the rest
 * only with `exposeHeaders`.
 */
import type { LimitOutcome } from '../../../policy/ratelimit/rate-limiter.ts';

export function rateLimitHeaders(o: LimitOutcome, nowMs: number): Record<string, string> {
  const resetSeconds = Math.ceil(o.resetMs / 1000);
  const headers: Record<string, string> = {};
  if (!o.allowed) headers['retry-after'] = String(Math.max(1, resetSeconds));
  if (!o.limit.exposeHeaders) return headers;
  // The bucket's capacity (limit + burst), as Envoy reports it: Remaining never exceeds Limit.
  const limit = String(o.limit.limit + o.limit.burst);
  const remaining = String(o.remaining);
  headers['ratelimit-limit'] = limit;
  headers['ratelimit-remaining'] = remaining;
  headers['ratelimit-reset'] = String(resetSeconds);
  headers['x-ratelimit-limit'] = limit;
  headers['x-ratelimit-remaining'] = remaining;
  headers['x-ratelimit-reset'] = String(Math.ceil((nowMs + o.resetMs) / 1000));
  return headers;
}
