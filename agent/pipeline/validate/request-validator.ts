/**
 * The compiled JSON Schema validators of a route's `request.query` and
 * `request.body`, built once per bundle (bundle-state.ts), and the checks of
 * the validation stage that need only the request head: Content-Length above
 * `maxBodyBytes` (413), the content type (415), the query (400).
 *
 * Query schemas see strings: each parameter is its first value as a string,
 * and a repeated parameter an array of strings (no coercion: `dryRun=true`
 * is the string "true"; write `enum: ["true", "false"]`, not `type: boolean`).
 *
 * Violations list where and what (`{in, pointer, message}`, at most 10),
 * never the offending value. Bodies are checked fail-fast first; only a
 * failing body of at most 64 KiB is checked again with every error collected,
 * so a large body cannot make the validator build millions of errors.
 */
import type { IncomingMessage } from 'node:http';
import type { ErrorObject, ValidateFunction } from 'ajv';
import type { Ajv2020 } from 'ajv/dist/2020.js';
import type { CompiledRoute } from '../../../policy/compile/bundle.ts';
import { createSchemaAjv } from '../../../policy/validate/json-schema.ts';
import { PolicyError } from '../../errors.ts';
import { announcesBody } from '../../proxy/request-framing.ts';
import { DEFAULT_MAX_DEPTH, parseJsonBytes, pointerToken } from './json-body.ts';
import { isJsonMediaType, mediaTypeMatches, mediaTypeOf } from './media-type.ts';

/** Most violations listed in a 400. */
export const MAX_VIOLATIONS = 10;
/** Largest failing body re-validated to list every violation (above: the first one only). */
const ALL_ERRORS_MAX_BYTES = 64 * 1024;
/** Longest pointer shown (keys come from the client). */
const MAX_POINTER = 256;

export interface Violation {
  in: 'query' | 'body';
  pointer: string;
  message: string;
}

type Check = (data: unknown) => ErrorObject[] | null;

/** A route's compiled checks. */
export interface RouteValidator {
  readonly maxBodyBytes: number;
  readonly contentTypes: readonly string[] | null;
  readonly query: Check | null;
  /** Fail-fast body check, and the all-errors one for small bodies. */
  readonly body: { first: Check; all: Check } | null;
}

function check(validate: ValidateFunction): Check {
  return (data) => (validate(data) ? null : (validate.errors ?? []));
}

/** Compiles `schema` on `ajv`, or on a fresh instance when it clashes (a `$id` used by another route). */
function compile(ajv: Ajv2020, schema: Record<string, unknown>, allErrors: boolean): Check {
  try {
    return check(ajv.compile(schema));
  } catch {
    try {
      return check(createSchemaAjv({ allErrors }).compile(schema));
    } catch {
      // The policy validator compiles the same schemas, so this is a bundle that skipped it: fail closed.
      return () => {
        throw new PolicyError('ERR_INTERNAL', 'the request schema of this route cannot be used');
      };
    }
  }
}

/** Builds the validators of every route of a bundle (keyed by the compiled route). */
export function compileRouteValidators(routes: Iterable<CompiledRoute>): Map<CompiledRoute, RouteValidator> {
  // Ajv instances are built only for a bundle that has schemas at all.
  let first: Ajv2020 | undefined;
  let all: Ajv2020 | undefined;
  const out = new Map<CompiledRoute, RouteValidator>();
  for (const route of routes) {
    const { query, body, maxBodyBytes, contentTypes } = route.request;
    if (query || body) all ??= createSchemaAjv({ allErrors: true });
    if (body) first ??= createSchemaAjv({ allErrors: false });
    out.set(route, {
      maxBodyBytes,
      contentTypes,
      query: query && all ? compile(all, query, true) : null,
      body:
        body && first && all ? { first: compile(first, body, false), all: compile(all, body, true) } : null,
    });
  }
  return out;
}

function capPointer(pointer: string): string {
  return pointer.length <= MAX_POINTER ? pointer : `${pointer.slice(0, MAX_POINTER)}…`;
}

/** Ajv errors as violations: where (a JSON Pointer, naming the missing or extra property) and what. */
export function violationsOf(errors: readonly ErrorObject[], where: Violation['in']): Violation[] {
  const out: Violation[] = [];
  for (const e of errors) {
    let pointer = e.instancePath;
    const params = e.params as Record<string, unknown>;
    const name = params.missingProperty ?? params.additionalProperty ?? params.unevaluatedProperty;
    if (typeof name === 'string') pointer += `/${pointerToken(name)}`;
    out.push({ in: where, pointer: capPointer(pointer), message: e.message ?? 'is not valid' });
    if (out.length >= MAX_VIOLATIONS) break;
  }
  return out;
}

/** The 400 for a list of violations (shown in the problem's `errors`). */
export function validationError(violations: Violation[], detail: string): PolicyError {
  return new PolicyError('ERR_VALIDATION', detail, {}, { errors: violations.slice(0, MAX_VIOLATIONS) });
}

export function bodyTooLarge(maxBodyBytes: number): PolicyError {
  return new PolicyError('ERR_BODY_TOO_LARGE', `the request body is larger than ${maxBodyBytes} bytes`);
}

/** The query string as a query schema sees it: first values as strings, repeated parameters as arrays. */
export function queryObject(query: string | null): Record<string, string | string[]> {
  const entries = new Map<string, string | string[]>();
  for (const [k, v] of new URLSearchParams(query ?? '')) {
    const prev = entries.get(k);
    if (prev === undefined) entries.set(k, v);
    else if (Array.isArray(prev)) prev.push(v);
    else entries.set(k, [prev, v]);
  }
  // fromEntries defines own properties: a `__proto__` parameter is a plain key, never a prototype.
  return Object.fromEntries(entries);
}

/** Methods whose requests must carry a body when the route has a body schema. */
const BODY_METHODS: ReadonlySet<string> = new Set(['POST', 'PUT', 'PATCH']);

/**
 * The head-only checks, in order: Content-Length over the limit (413), the
 * content type (415), the query (400), a missing body where the schema needs
 * one (400). Returns every denial (Enforce answers the first; Audit records all).
 */
export function checkRequestHead(
  req: IncomingMessage,
  v: RouteValidator,
  query: string | null,
): PolicyError[] {
  const out: PolicyError[] = [];
  const hasBody = announcesBody(req.headers);
  const length = Number(req.headers['content-length'] ?? 0);
  if (length > v.maxBodyBytes) out.push(bodyTooLarge(v.maxBodyBytes));
  if (hasBody && (v.contentTypes !== null || v.body !== null)) {
    const type = mediaTypeOf(req.headers['content-type']);
    if (type === null) {
      out.push(new PolicyError('ERR_MEDIA_TYPE', 'a request body needs a Content-Type'));
    } else if (v.contentTypes !== null && !mediaTypeMatches(type, v.contentTypes)) {
      out.push(new PolicyError('ERR_MEDIA_TYPE', 'this route does not accept the request content type'));
    } else if (v.body !== null && !isJsonMediaType(type)) {
      out.push(new PolicyError('ERR_MEDIA_TYPE', 'this route accepts JSON request bodies only'));
    }
  }
  if (v.query) {
    const errors = v.query(queryObject(query));
    if (errors)
      out.push(validationError(violationsOf(errors, 'query'), 'the query does not match the schema'));
  }
  if (!hasBody && v.body !== null && BODY_METHODS.has(req.method ?? 'GET')) {
    out.push(
      validationError(
        [{ in: 'body', pointer: '', message: 'a request body is required' }],
        'the request body does not match the schema',
      ),
    );
  }
  return out;
}

/** Parses and validates a buffered JSON body; null when it is valid. */
export function checkJsonBody(
  bytes: Uint8Array,
  body: NonNullable<RouteValidator['body']>,
  maxDepth = DEFAULT_MAX_DEPTH,
): PolicyError | null {
  const parsed = parseJsonBytes(bytes, { maxDepth });
  if (!parsed.ok) {
    const { pointer, message } = parsed.problem;
    return validationError(
      [{ in: 'body', pointer: capPointer(pointer), message }],
      'the request body is not acceptable JSON',
    );
  }
  const first = body.first(parsed.value);
  if (first === null) return null;
  const errors = bytes.length <= ALL_ERRORS_MAX_BYTES ? (body.all(parsed.value) ?? first) : first;
  return validationError(violationsOf(errors, 'body'), 'the request body does not match the schema');
}
