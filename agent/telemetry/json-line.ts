/**
 * The per-request access line, written in pino's exact format
 * (`{"level":30,"time":…,<bindings>,<fields>,"msg":"…"}` and a newline) but
 * built in one reused buffer: pino builds a line by concatenating a string per
 * field, a few kilobytes of garbage per line, which at thousands of requests a
 * second cost more (young-generation collections) than the line itself. The
 * line goes where the logger's lines go (the CLI's LineBatch on stdout), so
 * it stays whole and in order with every other line. Values are written as pino writes
 * them: strings escaped the same way, numbers as `String(n)` (null when not
 * finite), null, arrays and objects as JSON, undefined left out.
 */

/**
 * Where a finished line goes, as UTF-8 bytes: the logger's destination, which
 * copies or writes them before returning (the bytes are only valid during the
 * call: the buffer is reused).
 */
export type LineSink = (line: Uint8Array) => void;

export interface JsonLineOptions {
  /** The logger's bindings (pino's `base`), written after `time`. */
  bindings: Readonly<Record<string, string>>;
  /** Wall clock, epoch ms. Default Date.now. */
  now?: () => number;
}

const QUOTE = 34;
const BACKSLASH = 92;

/** Writes `info`-level JSON lines of one logger. */
export class JsonLineWriter {
  readonly #sink: LineSink;
  readonly #now: () => number;
  readonly #bindings: Buffer;
  #buf = Buffer.allocUnsafe(1024);
  #pos = 0;
  /** `,"key":` of each field name seen, as bytes. */
  readonly #keys = new Map<string, Buffer>();

  constructor(sink: LineSink, options: JsonLineOptions) {
    this.#sink = sink;
    this.#now = options.now ?? Date.now;
    let bindings = '';
    for (const [k, v] of Object.entries(options.bindings)) bindings += `,${pinoString(k)}:${pinoString(v)}`;
    this.#bindings = Buffer.from(bindings, 'utf8');
  }

  /** One `info` line (level 30) with `fields`, then `msg`. */
  info(fields: Readonly<Record<string, unknown>>, msg: string): void {
    this.begin();
    for (const key in fields) this.value(key, fields[key]);
    this.end(msg);
  }

  /**
   * Starts an `info` line field by field (begin, fields, end): the bytes
   * info() writes for the same fields in the same order, without an object.
   */
  begin(): void {
    this.#pos = 0;
    this.#ascii7(`{"level":30,"time":${this.#now()}`);
    this.#bytes(this.#bindings);
  }

  /** A string field (null: `null`; undefined: left out). */
  string(key: string, value: string | null | undefined): void {
    if (value === undefined) return;
    this.#key(key);
    if (value === null) this.#ascii7('null');
    else this.#string(value);
  }

  /** A number field, as pino writes it (null when not finite). */
  number(key: string, value: number): void {
    this.#key(key);
    this.#ascii7(Number.isFinite(value) ? String(value) : 'null');
  }

  /**
   * A number field given in thousandths (`Math.round(x * 1000)`, ≥ 0): the
   * bytes number() writes for `thousandths / 1000`, without converting a
   * double to text. Below 10^15 thousandths (31 years in ms) doubles are
   * closer together than 0.001, so the decimal with at most 3 fraction
   * digits is the shortest text that reads back as that double: String's.
   */
  thousandths(key: string, thousandths: number): void {
    if (!Number.isInteger(thousandths) || thousandths < 0 || thousandths >= 1e15) {
      this.number(key, thousandths / 1000);
      return;
    }
    this.#key(key);
    const whole = Math.floor(thousandths / 1000);
    let frac = thousandths - whole * 1000;
    this.#ascii7(String(whole));
    if (frac === 0) return;
    this.#ensure(4);
    const b = this.#buf;
    b[this.#pos++] = 46; // '.'
    b[this.#pos++] = 48 + Math.floor(frac / 100);
    frac %= 100;
    if (frac === 0) return;
    b[this.#pos++] = 48 + Math.floor(frac / 10);
    frac %= 10;
    if (frac !== 0) b[this.#pos++] = 48 + frac;
  }

  /** A field of any type, as info() writes it (undefined and functions left out). */
  value(key: string, value: unknown): void {
    if (value === undefined || typeof value === 'function') return;
    if (typeof value === 'string') this.string(key, value);
    else if (typeof value === 'number') this.number(key, value);
    else {
      this.#key(key);
      if (typeof value === 'boolean') this.#ascii7(value ? 'true' : 'false');
      else this.#text(JSON.stringify(value) ?? 'null');
    }
  }

  /** Ends the line with `msg` and hands it to the sink. */
  end(msg: string): void {
    this.#ascii7(',"msg":');
    this.#string(msg);
    this.#ascii7('}\n');
    this.#sink(this.#buf.subarray(0, this.#pos));
  }

  #ensure(n: number): void {
    if (this.#pos + n <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < this.#pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.#buf.copy(next, 0, 0, this.#pos);
    this.#buf = next;
  }

  #key(key: string): void {
    let bytes = this.#keys.get(key);
    if (bytes === undefined) {
      bytes = Buffer.from(`,${pinoString(key)}:`, 'utf8');
      if (this.#keys.size < 256) this.#keys.set(key, bytes);
    }
    this.#bytes(bytes);
  }

  #bytes(bytes: Buffer): void {
    const n = bytes.length;
    this.#ensure(n);
    const b = this.#buf;
    let p = this.#pos;
    for (let i = 0; i < n; i++) b[p++] = bytes[i] as number;
    this.#pos = p;
  }

  /** Text known to be ASCII (numbers, punctuation, pino's fixed parts). */
  #ascii7(s: string): void {
    const n = s.length;
    this.#ensure(n);
    const b = this.#buf;
    let p = this.#pos;
    for (let i = 0; i < n; i++) b[p++] = s.charCodeAt(i);
    this.#pos = p;
  }

  /** Any text, as UTF-8. */
  #text(s: string): void {
    this.#ensure(3 * s.length);
    this.#pos += this.#buf.write(s, this.#pos, 'utf8');
  }

  /** A string value, quoted and escaped as pino's `asString` does. */
  #string(s: string): void {
    const n = s.length;
    if (n > 100) {
      this.#text(JSON.stringify(s));
      return;
    }
    // Worst case: every character escaped (2 bytes) or 3 UTF-8 bytes, plus the quotes.
    this.#ensure(3 * n + 2);
    const b = this.#buf;
    let p = this.#pos;
    b[p++] = QUOTE;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c < 32) {
        // pino hands any string with a control character to JSON.stringify.
        this.#text(JSON.stringify(s));
        return;
      }
      if (c > 127) {
        // Not ASCII: the rest as UTF-8, escaped the same way (control characters were ruled out above only
        // for what was scanned, so check the rest first).
        const rest = s.slice(i);
        for (let j = 0; j < rest.length; j++) {
          if (rest.charCodeAt(j) < 32) {
            this.#text(JSON.stringify(s));
            return;
          }
        }
        this.#pos = p;
        this.#text(rest.replace(/["\\]/g, '\\$&'));
        this.#ensure(1);
        this.#buf[this.#pos++] = QUOTE;
        return;
      }
      if (c === QUOTE || c === BACKSLASH) b[p++] = BACKSLASH;
      b[p++] = c;
    }
    b[p++] = QUOTE;
    this.#pos = p;
  }
}

/** pino's `asString`: `"…"` with `"` and `\` escaped; JSON.stringify past 100 characters or with a control character. */
export function pinoString(s: string): string {
  if (s.length > 100) return JSON.stringify(s);
  let result = '';
  let last = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 32) return JSON.stringify(s);
    if (c === QUOTE || c === BACKSLASH) {
      result += `${s.slice(last, i)}\\`;
      last = i;
    }
  }
  return `"${result}${s.slice(last)}"`;
}
