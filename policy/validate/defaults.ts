/**
 * Defaults the contract gives for omitted fields, in one place, so the
 * validator, the compiler and the docs agree.
 */
import { DEFAULT_JWT_ALGORITHMS, HTTP_METHODS } from '../schema/api-policy.ts';

/** Methods of a route that omits `methods`: every method except TRACE and CONNECT. */
export function defaultMethods(): readonly string[] {
  return HTTP_METHODS.filter((m) => m !== 'TRACE' && m !== 'CONNECT');
}

export const DEFAULTS = Object.freeze({
  mode: 'Enforce',
  mtlsMode: 'Permissive',
  unmatched: 'Deny',
  maxBodyBytes: 1024 * 1024,
  clockSkewMs: 30_000,
  forwardToken: true,
  algorithms: DEFAULT_JWT_ALGORITHMS,
  tokenSources: [{ header: 'authorization', prefix: 'Bearer ' }],
  burst: 0,
  scope: 'Local',
  exposeHeaders: true,
  routeTimeoutMs: 30_000,
} as const);
