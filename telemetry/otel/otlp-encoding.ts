/**
 * OTLP encoding of spans and log records, done once when a record is
 * finished rather than when its batch is exported: a record becomes bytes
 * (protobuf, for `grpc` and `http/protobuf`) appended to the batch it belongs
 * to, so a batch waiting for export holds one buffer instead of thousands of
 * objects that would outlive the young generation, and a request pays for its
 * own encoding (a single pass, no intermediate objects) and nothing else.
 * `http/json` keeps the records and writes them as OTLP/JSON at export.
 *
 * The wire format is the OTLP protobuf schema (opentelemetry-proto v1:
 * ExportTraceServiceRequest and ExportLogsServiceRequest); the tests decode
 * it with the official definitions. Attribute values follow the SDK's rules:
 * an integer in the int64 range is an `int_value`, any other number a
 * `double_value`, an array an `array_value` of strings.
 */

export type AttributeValue = string | number | boolean | readonly string[];
/** Attributes as they are encoded: keys in insertion order; null and undefined values are left out. */
export type Attributes = Readonly<Record<string, AttributeValue | null | undefined>>;

/** One finished span (times in epoch ms, fractions kept). */
export interface SpanData {
  /** 32 lowercase hex digits. */
  readonly traceId: string;
  /** 16 lowercase hex digits. */
  readonly spanId: string;
  readonly parentSpanId: string | null;
  /** The parent came from another process (a `traceparent` header). */
  readonly parentRemote: boolean;
  /** The W3C `tracestate`, serialized, or null. */
  readonly traceState: string | null;
  /** W3C trace flags (1 = sampled). */
  readonly traceFlags: number;
  readonly name: string;
  /** OTLP SpanKind: 1 INTERNAL, 2 SERVER, 3 CLIENT, 4 PRODUCER, 5 CONSUMER. */
  readonly kind: number;
  readonly startTime: number;
  readonly endTime: number;
  readonly attributes: Attributes;
  /**
   * Writes `attributes` as KeyValues under field `tag`, byte for byte as
   * ProtoWriter.attributes would, straight from the publisher's own record
   * (protobuf only; OTLP/JSON reads `attributes`).
   */
  writeAttributes?(w: ProtoWriter, tag: number): void;
  /** OTLP status code: 0 UNSET, 1 OK, 2 ERROR. */
  readonly status: number;
}

/** One log record (times in epoch ms). */
export interface LogData {
  readonly time: number;
  readonly observedTime: number;
  /** OTLP SeverityNumber (9 INFO, 13 WARN); 0 leaves it unset. */
  readonly severityNumber: number;
  readonly severityText: string;
  readonly body: string;
  readonly eventName: string;
  readonly attributes: Attributes;
  /** The span the record belongs to, or null. */
  readonly traceId: string | null;
  readonly spanId: string | null;
  readonly traceFlags: number;
}

export interface InstrumentationScope {
  readonly name: string;
  readonly version?: string;
}

/** An attribute key encoded once, for ProtoWriter's `*Attribute` methods: KeyValue's `key` field. */
export function attributeKey(key: string): Uint8Array {
  const w = new ProtoWriter(64);
  w.byte(0x0a);
  w.string(key);
  return Uint8Array.from(w.buf.subarray(0, w.pos));
}

/** A batch ready for an OTLP exporter: its records, encoded as one export request. */
export interface EncodedBatch {
  readonly count: number;
  readonly payload: Uint8Array;
}

/** Accumulates records into one export request. */
export interface BatchBuilder<T> {
  readonly count: number;
  add(record: T): void;
  /** The export request of every record added (the builder is not used again). */
  finish(): EncodedBatch;
}

/** How one signal's records are encoded: a builder per batch. */
export interface BatchEncoding<T> {
  builder(): BatchBuilder<T>;
}

const TWO_32 = 2 ** 32;
const MIN_INT64 = -(2 ** 63);
const MAX_INT64 = 2 ** 63;

function varintSize(v: number): number {
  let size = 1;
  let n = v;
  while (n >= 128) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

const HEX = new Int8Array(128).fill(-1);
for (let i = 0; i < 16; i++) {
  HEX[i.toString(16).charCodeAt(0)] = i;
  HEX[i.toString(16).toUpperCase().charCodeAt(0)] = i;
}

/**
 * A growable protobuf writer over one Buffer. The hot paths (attributes,
 * strings, ids, times) check the capacity once per field and then store
 * bytes directly.
 */
export class ProtoWriter {
  buf: Buffer;
  pos: number;

  constructor(size = 4096, start = 0) {
    this.buf = Buffer.allocUnsafe(Math.max(size, start + 64));
    this.pos = start;
  }

  ensure(n: number): void {
    const need = this.pos + n;
    if (need <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < need) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  byte(b: number): void {
    this.ensure(1);
    this.buf[this.pos++] = b;
  }

  raw(bytes: Uint8Array): void {
    this.ensure(bytes.length);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
  }

  /** An unsigned varint, 0 ≤ v ≤ 2^53. */
  uint(value: number): void {
    this.ensure(10);
    const b = this.buf;
    let p = this.pos;
    let v = value;
    if (v < 0x80000000) {
      while (v > 127) {
        b[p++] = (v & 127) | 128;
        v >>>= 7;
      }
    } else {
      while (v > 127) {
        b[p++] = (v % 128) | 128;
        v = Math.floor(v / 128);
      }
    }
    b[p++] = v;
    this.pos = p;
  }

  /** A signed int64 varint (two's complement: a negative number takes 10 bytes). */
  int64(v: number): void {
    if (v >= 0 && v <= Number.MAX_SAFE_INTEGER) {
      this.uint(v);
      return;
    }
    let n = BigInt.asUintN(64, BigInt(v));
    this.ensure(10);
    while (n > 127n) {
      this.buf[this.pos++] = Number(n & 127n) | 128;
      n >>= 7n;
    }
    this.buf[this.pos++] = Number(n);
  }

  fixed32(v: number): void {
    this.ensure(4);
    const b = this.buf;
    let p = this.pos;
    const u = v >>> 0;
    b[p++] = u & 255;
    b[p++] = (u >>> 8) & 255;
    b[p++] = (u >>> 16) & 255;
    b[p++] = u >>> 24;
    this.pos = p;
  }

  double(v: number): void {
    this.ensure(8);
    this.buf.writeDoubleLE(v, this.pos);
    this.pos += 8;
  }

  /** Epoch ms (fractions kept to the ns) as fixed64 Unix nanoseconds, exact without BigInt. */
  timeMs(ms: number): void {
    let seconds = Math.floor(ms / 1000);
    let nanos = Math.round((ms - seconds * 1000) * 1e6);
    if (nanos >= 1e9) {
      seconds += 1;
      nanos -= 1e9;
    }
    // seconds * 1e9 + nanos as two 32-bit halves: seconds = hi16 * 2^16 + lo16, each product exact.
    const low = (seconds % 65536) * 1e9;
    const high = Math.floor(seconds / 65536) * 1e9;
    const sum = low + (high % 65536) * 65536 + nanos;
    const lo = sum % TWO_32;
    const hi = (Math.floor(high / 65536) + Math.floor(sum / TWO_32)) >>> 0;
    this.ensure(8);
    const b = this.buf;
    let p = this.pos;
    b[p++] = lo & 255;
    b[p++] = (lo >>> 8) & 255;
    b[p++] = (lo >>> 16) & 255;
    b[p++] = lo >>> 24;
    b[p++] = hi & 255;
    b[p++] = (hi >>> 8) & 255;
    b[p++] = (hi >>> 16) & 255;
    b[p++] = hi >>> 24;
    this.pos = p;
  }

  /** A length-delimited string (UTF-8). */
  string(s: string): void {
    const n = s.length;
    if (n < 43) {
      this.ensure(1 + 3 * n);
      this.#short(s);
      return;
    }
    const bytes = Buffer.byteLength(s, 'utf8');
    this.uint(bytes);
    this.ensure(bytes);
    this.buf.write(s, this.pos, bytes, 'utf8');
    this.pos += bytes;
  }

  /**
   * A string of fewer than 43 UTF-16 units (at most 126 bytes: a one-byte
   * length), capacity already ensured. ASCII (the usual case) is copied as is.
   */
  #short(s: string): void {
    const n = s.length;
    const b = this.buf;
    const start = this.pos + 1;
    let i = 0;
    for (; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c > 127) break;
      b[start + i] = c;
    }
    const written = i === n ? n : b.write(s, start, 'utf8');
    b[start - 1] = written;
    this.pos = start + written;
  }

  /** Length-delimited bytes from hex (trace and span ids: 32 or 16 digits). */
  hex(h: string): void {
    const n = h.length >>> 1;
    this.ensure(n + 1);
    const b = this.buf;
    let p = this.pos;
    b[p++] = n;
    for (let i = 0; i < n; i++) {
      const hi = HEX[h.charCodeAt(2 * i)] ?? -1;
      const lo = HEX[h.charCodeAt(2 * i + 1)] ?? -1;
      if (hi < 0 || lo < 0) throw new Error(`not a hex id: ${JSON.stringify(h)}`);
      b[p++] = (hi << 4) | lo;
    }
    this.pos = p;
  }

  /** Reserves `reserve` bytes for the length of a message written next; end(at, reserve) fills it in. */
  begin(reserve = 1): number {
    this.ensure(reserve);
    const at = this.pos;
    this.pos += reserve;
    return at;
  }

  end(at: number, reserve = 1): void {
    const len = this.pos - at - reserve;
    const size = varintSize(len);
    if (size !== reserve) {
      this.ensure(size - reserve);
      this.buf.copyWithin(at + size, at + reserve, this.pos);
      this.pos += size - reserve;
    }
    let p = at;
    let v = len;
    while (v > 127) {
      this.buf[p++] = (v & 127) | 128;
      v >>>= 7;
    }
    this.buf[p] = v;
  }

  /** An AnyValue message body. */
  anyValue(v: AttributeValue): void {
    if (typeof v === 'string') {
      this.byte(0x0a);
      this.string(v);
    } else if (typeof v === 'number') {
      if (Number.isInteger(v) && v >= MIN_INT64 && v < MAX_INT64) {
        this.byte(0x18);
        this.int64(v);
      } else {
        this.byte(0x21);
        this.double(v);
      }
    } else if (typeof v === 'boolean') {
      this.byte(0x10);
      this.byte(v ? 1 : 0);
    } else if (Array.isArray(v)) {
      this.byte(0x2a);
      const array = this.begin();
      for (const item of v) {
        this.byte(0x0a);
        const value = this.begin();
        this.anyValue(item);
        this.end(value);
      }
      this.end(array);
    }
  }

  /** Copies a pre-encoded key (attributeKey()), capacity already ensured. */
  #key(key: Uint8Array): void {
    const b = this.buf;
    let p = this.pos;
    for (let i = 0; i < key.length; i++) b[p++] = key[i] as number;
    this.pos = p;
  }

  /** Fills in the one-byte length reserved at `at`, or moves what follows when it takes more. */
  #end1(at: number): void {
    const len = this.pos - at - 1;
    if (len < 128) this.buf[at] = len;
    else this.end(at);
  }

  /**
   * One KeyValue with a string value under field `tag` (nothing for null or
   * undefined): the bytes attributes() writes for the same pair.
   */
  stringAttribute(tag: number, key: Uint8Array, value: string | null | undefined): void {
    if (value === undefined || value === null) return;
    if (value.length >= 43) {
      this.#anyAttribute(tag, key, value);
      return;
    }
    this.ensure(key.length + 6 + 3 * value.length);
    const b = this.buf;
    b[this.pos++] = tag;
    const kv = this.pos++;
    this.#key(key);
    b[this.pos++] = 0x12;
    const any = this.pos++;
    b[this.pos++] = 0x0a;
    this.#short(value);
    this.#end1(any);
    this.#end1(kv);
  }

  /** One KeyValue of any value under field `tag` (nothing for null or undefined). */
  anyAttribute(tag: number, key: Uint8Array, value: AttributeValue | null | undefined): void {
    if (value === undefined || value === null) return;
    this.#anyAttribute(tag, key, value);
  }

  #anyAttribute(tag: number, key: Uint8Array, value: AttributeValue): void {
    this.ensure(key.length + 3);
    this.buf[this.pos++] = tag;
    const kv = this.pos++;
    this.#key(key);
    this.buf[this.pos++] = 0x12;
    const any = this.begin();
    this.anyValue(value);
    this.end(any);
    this.#end1(kv);
  }

  /** Repeated KeyValue under the field whose tag byte is `tag`. */
  attributes(tag: number, attributes: Attributes): void {
    for (const key in attributes) {
      const value = attributes[key];
      if (value === undefined || value === null) continue;
      if (typeof value === 'string' && key.length < 43 && value.length < 38) {
        // The common case in one go: tag, KeyValue{key, value: AnyValue{string_value}}, with
        // one-byte lengths for key (≤ 126 bytes), value (≤ 111) and AnyValue (≤ 113).
        this.ensure(8 + 3 * (key.length + value.length));
        const b = this.buf;
        b[this.pos++] = tag;
        const kv = this.pos++;
        b[this.pos++] = 0x0a;
        this.#short(key);
        b[this.pos++] = 0x12;
        const any = this.pos++;
        b[this.pos++] = 0x0a;
        this.#short(value);
        b[any] = this.pos - any - 1;
        const kvLen = this.pos - kv - 1;
        if (kvLen < 128) b[kv] = kvLen;
        else this.end(kv); // a long (non-ASCII) pair: a two-byte length
        continue;
      }
      this.byte(tag);
      const kv = this.begin();
      this.byte(0x0a);
      this.string(key);
      this.byte(0x12);
      const any = this.begin();
      this.anyValue(value);
      this.end(any);
      this.end(kv);
    }
  }
}

/** The span flags field: W3C flags plus the OTLP "has is_remote" / "is_remote" bits. */
function spanFlags(traceFlags: number, parentRemote: boolean): number {
  return (traceFlags & 0xff) | 0x100 | (parentRemote ? 0x200 : 0);
}

/** Writes the body of an OTLP `Span` message. */
export function writeSpan(w: ProtoWriter, s: SpanData): void {
  w.byte(0x0a);
  w.hex(s.traceId);
  w.byte(0x12);
  w.hex(s.spanId);
  if (s.traceState) {
    w.byte(0x1a);
    w.string(s.traceState);
  }
  if (s.parentSpanId) {
    w.byte(0x22);
    w.hex(s.parentSpanId);
  }
  w.byte(0x2a);
  w.string(s.name);
  if (s.kind !== 0) {
    w.byte(0x30);
    w.uint(s.kind);
  }
  w.byte(0x39);
  w.timeMs(s.startTime);
  w.byte(0x41);
  w.timeMs(s.endTime);
  if (s.writeAttributes) s.writeAttributes(w, 0x4a);
  else w.attributes(0x4a, s.attributes);
  w.byte(0x7a);
  const status = w.begin();
  w.byte(0x18);
  w.uint(s.status);
  w.end(status);
  // Field 16, wire type 5: a two-byte tag.
  w.byte(0x85);
  w.byte(0x01);
  w.fixed32(spanFlags(s.traceFlags, s.parentRemote));
}

/** Writes the body of an OTLP `LogRecord` message. */
export function writeLogRecord(w: ProtoWriter, l: LogData): void {
  w.byte(0x09);
  w.timeMs(l.time);
  if (l.severityNumber !== 0) {
    w.byte(0x10);
    w.uint(l.severityNumber);
  }
  if (l.severityText) {
    w.byte(0x1a);
    w.string(l.severityText);
  }
  w.byte(0x2a);
  const body = w.begin();
  w.anyValue(l.body);
  w.end(body);
  w.attributes(0x32, l.attributes);
  if (l.traceFlags) {
    w.byte(0x45);
    w.fixed32(l.traceFlags);
  }
  if (l.traceId) {
    w.byte(0x4a);
    w.hex(l.traceId);
  }
  if (l.spanId) {
    w.byte(0x52);
    w.hex(l.spanId);
  }
  w.byte(0x59);
  w.timeMs(l.observedTime);
  if (l.eventName) {
    w.byte(0x62);
    w.string(l.eventName);
  }
}

/** A field-1 message holding `write`'s output: `[0x0a, length, body]`. */
function field1(write: (w: ProtoWriter) => void): Buffer {
  const w = new ProtoWriter(256);
  w.byte(0x0a);
  const at = w.begin();
  write(w);
  w.end(at);
  return Buffer.from(w.buf.subarray(0, w.pos));
}

function resourceField(attributes: Attributes): Buffer {
  return field1((w) => w.attributes(0x0a, attributes));
}

function scopeField(scope: InstrumentationScope): Buffer {
  return field1((w) => {
    w.byte(0x0a);
    w.string(scope.name);
    if (scope.version) {
      w.byte(0x12);
      w.string(scope.version);
    }
  });
}

/**
 * Protobuf batches: records are appended as they come, after head room for
 * the request's envelope (ExportTrace/LogsServiceRequest → Resource{Spans,Logs}
 * → Scope{Spans,Logs}, whose fields have the same numbers for both signals),
 * written in front of them at finish, so the payload is never copied.
 */
class ProtoBatchBuilder<T> implements BatchBuilder<T> {
  count = 0;
  readonly #w: ProtoWriter;
  readonly #head: number;
  readonly #resource: Buffer;
  readonly #scope: Buffer;
  readonly #write: (w: ProtoWriter, record: T) => void;
  readonly #sized: (bytes: number) => void;

  constructor(
    resource: Buffer,
    scope: Buffer,
    write: (w: ProtoWriter, record: T) => void,
    size: number,
    sized: (bytes: number) => void,
  ) {
    this.#resource = resource;
    this.#scope = scope;
    this.#write = write;
    this.#sized = sized;
    this.#head = resource.length + scope.length + 24;
    this.#w = new ProtoWriter(size, this.#head);
  }

  add(record: T): void {
    const w = this.#w;
    w.byte(0x12);
    // A span or log record is usually 128 bytes to 16 KiB: a two-byte length.
    const at = w.begin(2);
    this.#write(w, record);
    w.end(at, 2);
    this.count++;
  }

  finish(): EncodedBatch {
    const w = this.#w;
    const records = w.pos - this.#head;
    const scopeLen = this.#scope.length + records;
    const resourceLen = this.#resource.length + 1 + varintSize(scopeLen) + scopeLen;
    const envelope = 1 + varintSize(resourceLen) + this.#resource.length + 1 + varintSize(scopeLen);
    const envelopeStart = this.#head - this.#scope.length - envelope;
    const end = w.pos;
    w.pos = envelopeStart;
    w.byte(0x0a);
    w.uint(resourceLen);
    w.raw(this.#resource);
    w.byte(0x12);
    w.uint(scopeLen);
    w.raw(this.#scope);
    w.pos = end;
    this.#sized(end);
    return { count: this.count, payload: w.buf.subarray(envelopeStart, end) };
  }
}

/** Protobuf batches of records written by `write` (starting buffers sized after the last batch). */
function protobufEncoding<T>(
  resource: Attributes,
  scope: InstrumentationScope,
  write: (w: ProtoWriter, record: T) => void,
): BatchEncoding<T> {
  const resourceBytes = resourceField(resource);
  const scopeBytes = scopeField(scope);
  let last = 16 * 1024;
  const sized = (bytes: number) => {
    last = bytes;
  };
  return {
    builder: () =>
      new ProtoBatchBuilder(resourceBytes, scopeBytes, write, Math.min(last + 4096, 8 << 20), sized),
  };
}

export function protobufSpans(resource: Attributes, scope: InstrumentationScope): BatchEncoding<SpanData> {
  return protobufEncoding(resource, scope, writeSpan);
}

export function protobufLogs(resource: Attributes, scope: InstrumentationScope): BatchEncoding<LogData> {
  return protobufEncoding(resource, scope, writeLogRecord);
}

// --- OTLP/JSON (http/json): what the SDK's JSON serializers write (hex ids, string nanoseconds).

type JsonAnyValue =
  | { stringValue: string }
  | { intValue: number }
  | { doubleValue: number }
  | { boolValue: boolean }
  | { arrayValue: { values: JsonAnyValue[] } };

function jsonAnyValue(v: AttributeValue): JsonAnyValue {
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'number') return Number.isInteger(v) ? { intValue: v } : { doubleValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  return { arrayValue: { values: v.map(jsonAnyValue) } };
}

function jsonAttributes(attributes: Attributes): { key: string; value: JsonAnyValue }[] {
  const out: { key: string; value: JsonAnyValue }[] = [];
  for (const key in attributes) {
    const value = attributes[key];
    if (value !== undefined && value !== null) out.push({ key, value: jsonAnyValue(value) });
  }
  return out;
}

/** Epoch ms as decimal Unix nanoseconds. */
export function nanosString(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  const nanos = Math.round((ms - seconds * 1000) * 1e6);
  return (BigInt(seconds) * 1_000_000_000n + BigInt(nanos)).toString();
}

function jsonSpan(s: SpanData): object {
  return {
    traceId: s.traceId,
    spanId: s.spanId,
    ...(s.parentSpanId ? { parentSpanId: s.parentSpanId } : {}),
    ...(s.traceState ? { traceState: s.traceState } : {}),
    name: s.name,
    kind: s.kind,
    startTimeUnixNano: nanosString(s.startTime),
    endTimeUnixNano: nanosString(s.endTime),
    attributes: jsonAttributes(s.attributes),
    droppedAttributesCount: 0,
    events: [],
    droppedEventsCount: 0,
    status: { code: s.status },
    links: [],
    droppedLinksCount: 0,
    flags: spanFlags(s.traceFlags, s.parentRemote),
  };
}

function jsonLogRecord(l: LogData): object {
  return {
    timeUnixNano: nanosString(l.time),
    observedTimeUnixNano: nanosString(l.observedTime),
    ...(l.severityNumber !== 0 ? { severityNumber: l.severityNumber } : {}),
    ...(l.severityText ? { severityText: l.severityText } : {}),
    body: { stringValue: l.body },
    ...(l.eventName ? { eventName: l.eventName } : {}),
    attributes: jsonAttributes(l.attributes),
    droppedAttributesCount: 0,
    ...(l.traceFlags ? { flags: l.traceFlags } : {}),
    ...(l.traceId ? { traceId: l.traceId } : {}),
    ...(l.spanId ? { spanId: l.spanId } : {}),
  };
}

function jsonEncoding<T>(
  resource: Attributes,
  scope: InstrumentationScope,
  signal: 'spans' | 'logs',
  toJson: (record: T) => object,
): BatchEncoding<T> {
  const resourceJson = { attributes: jsonAttributes(resource), droppedAttributesCount: 0 };
  const scopeJson = { name: scope.name, ...(scope.version ? { version: scope.version } : {}) };
  return {
    builder: () => {
      // Converted when added: a record may hold its publisher's state (a request), which must not wait for
      // the export.
      const items: object[] = [];
      return {
        get count() {
          return items.length;
        },
        add: (record: T) => {
          items.push(toJson(record));
        },
        finish: () => {
          const request =
            signal === 'spans'
              ? {
                  resourceSpans: [
                    { resource: resourceJson, scopeSpans: [{ scope: scopeJson, spans: items }] },
                  ],
                }
              : {
                  resourceLogs: [
                    { resource: resourceJson, scopeLogs: [{ scope: scopeJson, logRecords: items }] },
                  ],
                };
          return { count: items.length, payload: Buffer.from(JSON.stringify(request), 'utf8') };
        },
      };
    },
  };
}

export function jsonSpans(resource: Attributes, scope: InstrumentationScope): BatchEncoding<SpanData> {
  return jsonEncoding(resource, scope, 'spans', jsonSpan);
}

export function jsonLogs(resource: Attributes, scope: InstrumentationScope): BatchEncoding<LogData> {
  return jsonEncoding(resource, scope, 'logs', jsonLogRecord);
}

// --- Export responses: only a partial success is of interest (the exporter logs it).

/** A collector's answer, as the OTLP exporter's response handler reads it. */
export interface ExportResponse {
  partialSuccess?: { rejected?: number; errorMessage?: string };
}

function readVarint(b: Uint8Array, at: number): [value: number, next: number] {
  let value = 0;
  let scale = 1;
  let p = at;
  for (;;) {
    if (p >= b.length) throw new Error('truncated varint');
    const byte = b[p++] as number;
    value += (byte & 127) * scale;
    if (byte < 128) return [value, p];
    scale *= 128;
    if (scale > 2 ** 63) throw new Error('varint too long');
  }
}

/** Skips a field of `wire` type at `at`; returns the offset after it. */
function skip(b: Uint8Array, wire: number, at: number): number {
  if (wire === 0) return readVarint(b, at)[1];
  if (wire === 1) return at + 8;
  if (wire === 5) return at + 4;
  if (wire === 2) {
    const [len, next] = readVarint(b, at);
    return next + len;
  }
  throw new Error(`unsupported wire type ${wire}`);
}

/**
 * The partial success of an Export{Trace,Logs}ServiceResponse (protobuf, or
 * OTLP/JSON when `json`); `{}` when there is none. Throws on a malformed body.
 */
export function decodeExportResponse(data: Uint8Array, json: boolean): ExportResponse {
  if (data.length === 0) return {};
  if (json) {
    const parsed = JSON.parse(Buffer.from(data).toString('utf8')) as ExportResponse;
    return typeof parsed === 'object' && parsed !== null ? parsed : {};
  }
  let p = 0;
  while (p < data.length) {
    const [tag, next] = readVarint(data, p);
    p = next;
    if (tag !== 0x0a) {
      p = skip(data, tag & 7, p);
      continue;
    }
    const [len, start] = readVarint(data, p);
    const end = start + len;
    const partial: { rejected?: number; errorMessage?: string } = {};
    let q = start;
    while (q < end) {
      const [t, n] = readVarint(data, q);
      q = n;
      if (t === 0x08) {
        [partial.rejected, q] = readVarint(data, q);
      } else if (t === 0x12) {
        const [l, s] = readVarint(data, q);
        partial.errorMessage = Buffer.from(data.subarray(s, s + l)).toString('utf8');
        q = s + l;
      } else {
        q = skip(data, t & 7, q);
      }
    }
    return partial.rejected || partial.errorMessage ? { partialSuccess: partial } : {};
  }
  return {};
}
