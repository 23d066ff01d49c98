/** Field-level checks shared by the semantic validators. */
import { type Diagnostic, error, type FieldPath } from '../diagnostics.ts';
import { parseDuration } from '../units.ts';

/** An HTTP header name (RFC 9110 token). */
export const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** Parses a Go-style duration, reporting a malformed one; null when absent or malformed. */
export function checkDuration(value: string | undefined, path: FieldPath, out: Diagnostic[]): number | null {
  if (value === undefined) return null;
  const ms = parseDuration(value);
  if (ms === null) out.push(error(path, 'must be a Go-style duration such as 30s, 5m or 1h'));
  return ms;
}
