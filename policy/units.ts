/**
 * Parsing of the contract's units: Go-style durations and Kubernetes quantities.
 * Both return null on malformed input so callers can report a diagnostic.
 */

const DURATION_UNITS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};
const DURATION_PART = /([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)/y;

/** Parses a Go-style duration (`1h30m`, `250ms`, `0.5s`) into milliseconds; null when malformed. */
export function parseDuration(text: string): number | null {
  if (text.length === 0 || text.length > 64) return null;
  DURATION_PART.lastIndex = 0;
  let total = 0;
  let pos = 0;
  while (pos < text.length) {
    DURATION_PART.lastIndex = pos;
    const m = DURATION_PART.exec(text);
    if (!m) return null;
    total += Number(m[1]) * (DURATION_UNITS[m[2] ?? ''] ?? Number.NaN);
    pos = DURATION_PART.lastIndex;
  }
  return Number.isFinite(total) ? total : null;
}

const BINARY: Record<string, number> = {
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};
const DECIMAL: Record<string, number> = { '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18 };
const QUANTITY = /^\+?([0-9]+(?:\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+|Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$/;

/**
 * Parses a Kubernetes quantity used as a byte size (`64Ki`, `1Mi`, `1000`, `1e3`)
 * into a whole number of bytes (rounded up, as the API server does); null when
 * malformed, negative, fractional-milli (`m`) or beyond Number.MAX_SAFE_INTEGER.
 */
export function parseByteQuantity(value: number | string): number | null {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? value : null;
  const m = QUANTITY.exec(value.trim());
  if (!m) return null;
  const base = Number(m[1]);
  const suffix = m[2] ?? '';
  let factor: number | undefined;
  if (/^[eE][+-]?[0-9]+$/.test(suffix)) factor = 10 ** Number(suffix.slice(1));
  else factor = BINARY[suffix] ?? DECIMAL[suffix];
  if (factor === undefined) return null;
  const bytes = Math.ceil(base * factor);
  return Number.isSafeInteger(bytes) ? bytes : null;
}

/** Parses a date (`2026-06-01`, read as 00:00 UTC) or an RFC 3339 instant into epoch ms; null when malformed. */
export function parseInstant(text: string): number | null {
  const date = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
  if (date) {
    const ms = Date.UTC(Number(date[1]), Number(date[2]) - 1, Number(date[3]));
    const back = new Date(ms);
    return back.getUTCDate() === Number(date[3]) && back.getUTCMonth() === Number(date[2]) - 1 ? ms : null;
  }
  if (!/^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/.test(text)) return null;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? null : ms;
}
