/**
 * The body half of the validation stage, run after the pipeline allowed the
 * request head and before forwarding: `maxBodyBytes` on bodies as they
 * arrive (chunked ones included: 413), and the JSON Schema of `request.body`.
 *
 * - A route with a body schema buffers the body (never more than
 *   maxBodyBytes plus the chunk that crossed it), parses and validates it,
 *   and forwards it from the buffer with its exact Content-Length: nothing
 *   reaches the app before the whole body passed.
 * - A route without one streams the body through a byte counter (backpressure
 *   kept). Crossing the limit fails the stream: the upstream request is
 *   aborted (the app may have received a partial body, then sees the request
 *   cut) and the client gets 413 if no response started.
 * - Audit mode never refuses: violations become findings, the body passes
 *   unchanged, and a body over the limit streams through unbuffered.
 */
import type { IncomingMessage } from 'node:http';
import { PassThrough, type Readable, Transform, type TransformCallback } from 'node:stream';
import { PolicyError } from '../../errors.ts';
import { announcesBody } from '../../proxy/request-framing.ts';
import { bodyTooLarge, checkJsonBody, type RouteValidator } from './request-validator.ts';

/** What the body stage needs from the plan. */
export interface BodyPlan {
  validator: RouteValidator;
  audit: boolean;
}

export interface PreparedBody {
  /** What to forward: undefined = the request itself, as is. */
  body: Readable | undefined;
  /** Length of a buffered body: the upstream Content-Length must say it. */
  length: number | null;
  /** Audit findings known before forwarding. */
  findings: PolicyError[];
  /** The 413 raised while the body streamed (Enforce), once it happened. */
  overflow(): PolicyError | null;
}

const EARLY_END = 'the request body ended early';

/** Counts bytes as they pass; calls `onCross` once when the count exceeds `max` and fails with its error, if any. */
export class ByteLimit extends Transform {
  readonly #max: number;
  readonly #onCross: () => Error | null;
  #count = 0;
  #crossed = false;

  constructor(max: number, onCross: () => Error | null) {
    super();
    this.#max = max;
    this.#onCross = onCross;
  }

  get count(): number {
    return this.#count;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#count += chunk.length;
    if (!this.#crossed && this.#count > this.#max) {
      this.#crossed = true;
      const error = this.#onCross();
      if (error) {
        callback(error);
        return;
      }
    }
    callback(null, chunk);
  }
}

/**
 * Pipes `req` into `dest`, failing `dest` when `req` fails or closes before
 * its end. `dest` failing never destroys `req` (its socket still has to carry
 * the answer).
 */
function pipeFrom(req: IncomingMessage, dest: PassThrough | Transform): void {
  const fail = (error?: Error) => dest.destroy(error ?? new Error(EARLY_END));
  req.once('error', fail);
  req.once('close', () => {
    if (!req.readableEnded) fail();
  });
  req.pipe(dest);
}

type Buffered = { complete: true; bytes: Buffer } | { complete: false; chunks: Buffer[] };

/** Reads `req` to its end, or until more than `max` bytes arrived (then `req` is left paused). */
export function readUpTo(req: IncomingMessage, max: number): Promise<Buffered> {
  return new Promise((resolve, reject) => {
    if (req.destroyed && !req.readableEnded) {
      reject(new PolicyError('ERR_REQUEST_MALFORMED', EARLY_END));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    const done = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('close', onClose);
      req.off('error', onClose);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      chunks.push(chunk);
      if (size > max) {
        req.pause();
        done();
        resolve({ complete: false, chunks });
      }
    };
    const onEnd = () => {
      done();
      resolve({ complete: true, bytes: Buffer.concat(chunks, size) });
    };
    const onClose = () => {
      done();
      reject(new PolicyError('ERR_REQUEST_MALFORMED', EARLY_END));
    };
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('close', onClose);
    req.once('error', onClose);
  });
}

function fromBuffer(bytes: Buffer): Readable {
  const stream = new PassThrough();
  stream.end(bytes);
  return stream;
}

const AS_IS: PreparedBody = { body: undefined, length: null, findings: [], overflow: () => null };

/**
 * Applies the body checks of `plan` to `req` (call once the request head is
 * allowed, after `100 Continue`). Rejects with the 413 or 400 in Enforce mode;
 * `onFinding` hears an Audit finding that only shows up while the body streams.
 */
export async function prepareBody(
  req: IncomingMessage,
  plan: BodyPlan | null,
  onFinding: (finding: PolicyError) => void,
): Promise<PreparedBody> {
  if (plan === null || !announcesBody(req.headers)) return AS_IS;
  const { validator, audit } = plan;
  const max = validator.maxBodyBytes;
  // Audit: a declared length over the limit is already a finding; stream it unbuffered, unchecked.
  if (audit && Number(req.headers['content-length'] ?? 0) > max) return AS_IS;

  if (validator.body === null) {
    let overflow: PolicyError | null = null;
    const limit = new ByteLimit(max, () => {
      overflow = bodyTooLarge(max);
      if (!audit) return overflow;
      onFinding(overflow);
      return null;
    });
    pipeFrom(req, limit);
    return { body: limit, length: null, findings: [], overflow: () => overflow };
  }

  const read = await readUpTo(req, max);
  if (!read.complete) {
    if (!audit) throw bodyTooLarge(max);
    const rest = new PassThrough();
    for (const chunk of read.chunks) rest.write(chunk);
    pipeFrom(req, rest);
    return { body: rest, length: null, findings: [bodyTooLarge(max)], overflow: () => null };
  }
  const invalid = checkJsonBody(read.bytes, validator.body);
  if (invalid && !audit) throw invalid;
  return {
    body: fromBuffer(read.bytes),
    length: read.bytes.length,
    findings: invalid ? [invalid] : [],
    overflow: () => null,
  };
}
