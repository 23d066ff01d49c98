/**
 * CEL `when` conditions of allow rules: parsed and type-checked once per policy,
 * evaluated per request. An evaluation error or a non-bool result denies.
 */
import { type ASTNode, Environment, type ParseResult } from '@marcbachmann/cel-js';

/** The variables a `when` expression sees (apipolicy.md § Authorization). */
export interface WhenContext {
  request: {
    method: string;
    path: string;
    host: string;
    /** Lowercase names; repeated headers joined with ", ". */
    headers: Record<string, string>;
    /** First value of each query parameter. */
    query: Record<string, string>;
  };
  params: Record<string, string>;
  /** Verified claims; {} without a token. */
  claims: Record<string, unknown>;
  /** mTLS peer; null without mTLS. */
  peer: { id: string; namespace: string; serviceAccount: string } | null;
  source: { ip: string };
}

export const WHEN_VARIABLES = ['request', 'params', 'claims', 'peer', 'source'] as const;

function createEnvironment(): Environment {
  return new Environment({
    limits: { maxAstNodes: 500, maxDepth: 32, maxListElements: 256, maxMapEntries: 256, maxCallArguments: 8 },
  })
    .registerVariable('request', 'map')
    .registerVariable('params', 'map<string, string>')
    .registerVariable('claims', 'map')
    .registerVariable('peer', 'dyn')
    .registerVariable('source', 'map');
}

let env: Environment | undefined;
function environment(): Environment {
  env ??= createEnvironment();
  return env;
}

export interface CompiledWhen {
  source: string;
  /** Names X used as `params.X` (for checking them against the route template). */
  paramRefs: string[];
  /** Evaluates; `{ok: false}` carries the reason (error or non-bool) and means deny. */
  evaluate(ctx: WhenContext): { ok: true; value: boolean } | { ok: false; reason: string };
}

export type WhenResult = { ok: true; when: CompiledWhen } | { ok: false; message: string };

function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0] ?? 'invalid expression';
}

function collectParamRefs(node: ASTNode, out: Set<string>): void {
  if (node.op === '.' || node.op === '.?') {
    const [target, field] = node.args as [ASTNode, string];
    if (target.op === 'id' && target.args === 'params') out.add(field);
  }
  if (node.op === '[]' || node.op === '[?]') {
    const [target, key] = node.args as [ASTNode, ASTNode];
    if (
      target.op === 'id' &&
      target.args === 'params' &&
      key.op === 'value' &&
      typeof key.args === 'string'
    ) {
      out.add(key.args);
    }
  }
  const args: unknown = node.args;
  if (!Array.isArray(args)) return;
  for (const a of args.flat()) {
    if (a && typeof a === 'object' && 'op' in a) collectParamRefs(a as ASTNode, out);
  }
}

/** Parses and type-checks a `when` expression; it must be of type bool (or dyn). */
export function compileWhen(source: string): WhenResult {
  let program: ParseResult;
  try {
    program = environment().parse(source);
  } catch (e) {
    return { ok: false, message: `invalid CEL: ${firstLine(e)}` };
  }
  const checked = program.check();
  if (!checked.valid) return { ok: false, message: `invalid CEL: ${firstLine(checked.error)}` };
  if (checked.type !== 'bool' && checked.type !== 'dyn') {
    return { ok: false, message: `CEL expression must be of type bool, not ${checked.type}` };
  }
  const refs = new Set<string>();
  collectParamRefs(program.ast, refs);
  return {
    ok: true,
    when: {
      source,
      paramRefs: [...refs],
      evaluate(ctx) {
        try {
          const value: unknown = program(ctx as unknown as Record<string, unknown>);
          if (typeof value !== 'boolean')
            return { ok: false, reason: `evaluated to ${typeof value}, not bool` };
          return { ok: true, value };
        } catch (e) {
          return { ok: false, reason: firstLine(e) };
        }
      },
    },
  };
}

export interface WhenInput {
  method: string;
  /** Normalized path. */
  path: string;
  /** Lowercase names, repeated values joined with ", "; a function is called only if an expression reads them. */
  headers: Readonly<Record<string, string>> | (() => Readonly<Record<string, string>>);
  /** The Host header. */
  host: string;
  /** Raw query string (without '?'), or null. */
  query: string | null;
  params: Readonly<Record<string, string>>;
  claims: Record<string, unknown> | null;
  peer: WhenContext['peer'];
  ip: string;
}

/**
 * Builds the `when` variables. `request.headers` and `request.query` are
 * computed on first read only (most expressions use params and claims); the
 * query keeps the first value of each parameter.
 */
export function whenContext(input: WhenInput): WhenContext {
  let headers: Record<string, string> | undefined;
  let query: Record<string, string> | undefined;
  const request = {
    method: input.method,
    path: input.path,
    host: input.host,
    get headers(): Record<string, string> {
      headers ??= { ...(typeof input.headers === 'function' ? input.headers() : input.headers) };
      return headers;
    },
    get query(): Record<string, string> {
      if (query === undefined) {
        query = {};
        for (const [k, v] of new URLSearchParams(input.query ?? ''))
          if (!Object.hasOwn(query, k)) query[k] = v;
      }
      return query;
    },
  };
  return {
    request,
    params: { ...input.params },
    claims: input.claims ?? {},
    peer: input.peer,
    source: { ip: input.ip },
  };
}
