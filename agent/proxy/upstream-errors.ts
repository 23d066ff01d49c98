/**
 * What an upstream failure means for the client: which undici and socket
 * errors are "the app is not there" (503), "the app is too slow" (504) or
 * "the app answered badly" (502), and which ones are the stale keep-alive race
 * an idempotent request may be retried after. The detail shown to the client
 * never names an address; the original error is kept as `cause` for logs.
 */
import { PolicyError } from '../errors.ts';

/** Could not reach the app, or lost the connection before any response byte. */
const UNAVAILABLE: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ETIMEDOUT',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_SOCKET',
]);

/** The connection closed under a request that had not seen a response byte yet. */
const CONNECTION_LOST: ReadonlySet<string> = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET']);

/** undici SocketError messages that mean the app sent something that is not a valid answer. */
const BAD_ANSWER: ReadonlySet<string> = new Set(['bad response', 'bad upgrade']);

/** The error's `code`, looking inside an AggregateError (several addresses tried) when it has none. */
export function errorCode(error: unknown): string | undefined {
  if (!(error instanceof Error)) return undefined;
  const code: unknown = Reflect.get(error, 'code');
  if (typeof code === 'string') return code;
  if (error instanceof AggregateError) return errorCode(error.errors[0]);
  return undefined;
}

function isBadAnswer(error: unknown, code: string | undefined): boolean {
  return code === 'UND_ERR_SOCKET' && error instanceof Error && BAD_ANSWER.has(error.message);
}

/**
 * True for the stale keep-alive race: the app closed or reset the connection
 * before sending any response byte (undici's "other side closed", ECONNRESET,
 * EPIPE). The only failure Forwarder retries, once, and only for idempotent
 * requests without a body.
 */
export function isConnectionLost(error: unknown): boolean {
  const code = errorCode(error);
  return code !== undefined && CONNECTION_LOST.has(code) && !isBadAnswer(error, code);
}

/**
 * The PolicyError for an upstream failure before the response started:
 * ERR_UPSTREAM_TIMEOUT (504) when the response head did not arrive in time,
 * ERR_UPSTREAM_UNAVAILABLE (503) when the app could not be reached or dropped
 * the connection first, ERR_UPSTREAM_FAILED (502) for anything else.
 */
export function upstreamError(error: unknown): PolicyError {
  if (error instanceof PolicyError) return error;
  const code = errorCode(error);
  let mapped: PolicyError;
  if (code === 'UND_ERR_HEADERS_TIMEOUT') {
    mapped = new PolicyError('ERR_UPSTREAM_TIMEOUT', 'the upstream did not answer in time');
  } else if (code !== undefined && UNAVAILABLE.has(code) && !isBadAnswer(error, code)) {
    mapped = new PolicyError('ERR_UPSTREAM_UNAVAILABLE', 'the upstream is unavailable');
  } else {
    mapped = new PolicyError('ERR_UPSTREAM_FAILED', 'the upstream sent an invalid response');
  }
  mapped.cause = error;
  return mapped;
}
