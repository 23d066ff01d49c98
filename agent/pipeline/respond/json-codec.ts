/**
 * The byte-level steps of response minimization: undoing and redoing a
 * response's `Content-Encoding` (gzip, deflate, br, identity) with node:zlib,
 * asynchronously and with the decoded size bounded (a compression bomb stops
 * at the bound), and parsing / serializing JSON without losing number
 * precision (a number JavaScript cannot hold exactly keeps its source text).
 */
import { promisify } from 'node:util';
import * as zlib from 'node:zlib';

/** A content coding this module can decode and re-encode. */
export type Coding = 'identity' | 'gzip' | 'deflate' | 'br';

const gunzip = promisify(zlib.gunzip);
const gzip = promisify(zlib.gzip);
const inflate = promisify(zlib.inflate);
const inflateRaw = promisify(zlib.inflateRaw);
const deflate = promisify(zlib.deflate);
const brotliDecompress = promisify(zlib.brotliDecompress);
const brotliCompress = promisify(zlib.brotliCompress);

/** Brotli's default quality (11) costs about a second per MiB; 5 is about gzip's speed, and smaller. */
const BROTLI_QUALITY = 5;

/**
 * The single coding a `Content-Encoding` value names (absent: identity); null
 * for an unknown coding or a stack of several (`gzip, br`), which pass through.
 */
export function codingOf(header: string | string[] | undefined): Coding | null {
  if (header === undefined) return 'identity';
  const value = (Array.isArray(header) ? header.join(',') : header).trim().toLowerCase();
  switch (value) {
    case '':
    case 'identity':
      return 'identity';
    case 'gzip':
    case 'x-gzip':
      return 'gzip';
    case 'deflate':
      return 'deflate';
    case 'br':
      return 'br';
    default:
      return null;
  }
}

/** The decoded body; rejects when it is corrupt or decodes to more than `maxBytes` (code ERR_BUFFER_TOO_LARGE). */
export async function decode(body: Buffer, coding: Coding, maxBytes: number): Promise<Buffer> {
  const options = { maxOutputLength: maxBytes };
  switch (coding) {
    case 'identity':
      return body;
    case 'gzip':
      return gunzip(body, options);
    case 'deflate':
      // RFC 9110 deflate is zlib-wrapped; some servers send the raw stream.
      return inflate(body, options).catch((e: unknown) => {
        if (isTooLarge(e)) throw e;
        return inflateRaw(body, options);
      });
    case 'br':
      return brotliDecompress(body, options);
  }
}

export function encode(body: Buffer, coding: Coding): Promise<Buffer> {
  switch (coding) {
    case 'identity':
      return Promise.resolve(body);
    case 'gzip':
      return gzip(body);
    case 'deflate':
      return deflate(body);
    case 'br':
      return brotliCompress(body, {
        params: {
          [zlib.constants.BROTLI_PARAM_QUALITY]: BROTLI_QUALITY,
          [zlib.constants.BROTLI_PARAM_SIZE_HINT]: body.length,
        },
      });
  }
}

/** True for the error of a decoded body past `maxOutputLength`. */
export function isTooLarge(e: unknown): boolean {
  return e instanceof RangeError && (e as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE';
}

type SourceReviver = (key: string, value: unknown, context: { source?: string }) => unknown;
const json = JSON as unknown as {
  parse(text: string, reviver?: SourceReviver): unknown;
  rawJSON?: (text: string) => unknown;
};
const rawJSON = json.rawJSON;

/**
 * JSON.parse, except that a number whose shortest form differs from its source
 * text (`12345678901234567890`, `1.0`, `1e2`) is kept as that text, so
 * re-serializing changes no number. Throws on invalid JSON.
 */
export function parseJson(text: string): unknown {
  if (!rawJSON) return JSON.parse(text);
  return json.parse(text, (_key, value, context) =>
    typeof value === 'number' && context.source !== undefined && String(value) !== context.source
      ? rawJSON(context.source)
      : value,
  );
}
