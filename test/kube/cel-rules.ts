/**
 * CRD validation rules (`x-kubernetes-validations`) evaluated as the
 * apiextensions-apiserver does (schema/cel/validation.go), with
 * @marcbachmann/cel-js:
 *
 * - `self` is the value at the rule's node (at the root: apiVersion, kind and
 *   metadata.name/generateName plus the rest); integers are CEL ints.
 * - A rule that uses `oldSelf` is a transition rule: it runs only on update
 *   and only where the old value correlates (object fields, map keys, items
 *   of `x-kubernetes-list-type: map` lists), unless `optionalOldSelf`.
 * - A false rule reports `fieldErrorForReason` at the node's path (plus
 *   `fieldPath`): `Invalid value: "<schema type>": <message>` by default,
 *   `Forbidden: …`, `Required value: …` or `Duplicate value: …` by `reason`;
 *   the message comes from `messageExpression` (when it yields a non-empty
 *   one-line string), else `message`, else `failed rule: <rule>`.
 * - An evaluation error reports `<error> evaluating rule: <message or rule>`.
 * - Ratcheting (on by default since 1.30): a failed non-transition rule on a
 *   value unchanged from the old object is a warning, not an error.
 */
import { isDeepStrictEqual } from 'node:util';
import { Environment, Optional } from '@marcbachmann/cel-js';
import { isRecord } from './resources.ts';
import type { Obj, StatusCause } from './status.ts';

interface Rule {
  rule: string;
  message: string | undefined;
  messageExpression: string | undefined;
  reason: string | undefined;
  fieldPath: string | undefined;
  optionalOldSelf: boolean;
  usesOldSelf: boolean;
  program: (context: Obj) => unknown;
  messageProgram: ((context: Obj) => unknown) | undefined;
}

/** The outcome of validating one object: errors and ratcheted warnings. */
export interface CelOutcome {
  causes: StatusCause[];
  warnings: string[];
}

/** The reasons of schema errors after which the real server skips CEL rules. */
const BLOCKING = new Set([
  'FieldValueNotSupported',
  'FieldValueRequired',
  'FieldValueTooLong',
  'FieldValueTooMany',
  'FieldValueTypeInvalid',
]);

/** The cause the real server adds when blocking schema errors kept CEL rules from running. */
export const RULES_NOT_CHECKED: StatusCause = {
  reason: 'FieldValueInvalid',
  message:
    'Invalid value: "null": some validation rules were not checked because the object was invalid; correct the existing errors to complete validation',
  field: '<nil>',
};

/** Whether schema `causes` keep CEL rules from being evaluated. */
export function blocksRules(causes: StatusCause[]): boolean {
  return causes.some((c) => BLOCKING.has(c.reason));
}

const MAX_MESSAGE_BYTES = 5 * 1024;

function environment(): Environment {
  return new Environment({ enableOptionalTypes: true })
    .registerVariable('self', 'dyn')
    .registerVariable('oldSelf', 'dyn');
}

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0] ?? 'error';
}

/** cel-go's wording starts lowercase ("no such key: x"). */
function celError(error: unknown): string {
  const line = firstLine(error);
  return line.charAt(0).toLowerCase() + line.slice(1);
}

function child(path: string | undefined, name: string): string {
  return path === undefined ? name : `${path}.${name}`;
}

function indexed(path: string | undefined, index: string | number): string {
  return `${path ?? ''}[${index}]`;
}

/** `.spec.x['a.b']` → `spec.x[a.b]`, as field.Path prints the rule's fieldPath. */
function normalizeFieldPath(fieldPath: string): string {
  let out = '';
  for (const [, name, key] of fieldPath.matchAll(/\.([^.[\]]+)|\['((?:[^'\\]|\\.)*)'\]/g)) {
    if (name !== undefined) out += out === '' ? name : `.${name}`;
    else out += `[${(key ?? '').replace(/\\(.)/g, '$1')}]`;
  }
  return out;
}

/** A JSON value as CEL sees it under `schema`: integers become ints (BigInt). */
function toCel(value: unknown, schema: Obj | undefined): unknown {
  if (typeof value === 'number') {
    const integral = schema?.type === 'integer' || (schema?.type !== 'number' && Number.isInteger(value));
    return integral && Number.isInteger(value) ? BigInt(value) : value;
  }
  if (Array.isArray(value))
    return value.map((item) => toCel(item, isRecord(schema?.items) ? schema.items : undefined));
  if (!isRecord(value)) return value;
  const properties = isRecord(schema?.properties) ? schema.properties : {};
  const additional = isRecord(schema?.additionalProperties) ? schema.additionalProperties : undefined;
  const out: Obj = {};
  for (const [k, v] of Object.entries(value)) {
    const sub = properties[k];
    out[k] = toCel(v, isRecord(sub) ? sub : additional);
  }
  return out;
}

/** The compiled rules of one CRD version's schema. */
export class CelRules {
  readonly #schema: Obj;
  readonly #rules = new Map<Obj, Rule[]>();

  private constructor(schema: Obj) {
    this.#schema = schema;
  }

  /**
   * Compiles every rule in `openAPIV3Schema`; `errors` lists the rules that do
   * not parse, as causes under `schemaPath`. `rules` is undefined when the
   * schema has none.
   */
  static compile(
    openAPIV3Schema: Obj,
    schemaPath: string,
  ): { rules: CelRules | undefined; errors: StatusCause[] } {
    const compiled = new CelRules(openAPIV3Schema);
    const errors: StatusCause[] = [];
    compiled.#compileNode(environment(), openAPIV3Schema, schemaPath, errors);
    return { rules: compiled.#rules.size > 0 ? compiled : undefined, errors };
  }

  #compileNode(env: Environment, node: Obj, path: string, errors: StatusCause[]): void {
    const validations = Array.isArray(node['x-kubernetes-validations'])
      ? node['x-kubernetes-validations']
      : [];
    const rules: Rule[] = [];
    validations.forEach((raw: unknown, i) => {
      if (!isRecord(raw) || typeof raw.rule !== 'string') return;
      const where = `${path}.x-kubernetes-validations[${i}]`;
      const rule = raw.rule;
      const messageExpression = typeof raw.messageExpression === 'string' ? raw.messageExpression : undefined;
      try {
        rules.push({
          rule,
          message: typeof raw.message === 'string' ? raw.message : undefined,
          messageExpression,
          reason: typeof raw.reason === 'string' ? raw.reason : undefined,
          fieldPath: typeof raw.fieldPath === 'string' ? raw.fieldPath : undefined,
          optionalOldSelf: raw.optionalOldSelf === true,
          usesOldSelf: /\boldSelf\b/.test(rule),
          program: env.parse(rule) as unknown as (context: Obj) => unknown,
          messageProgram:
            messageExpression === undefined
              ? undefined
              : (env.parse(messageExpression) as unknown as (context: Obj) => unknown),
        });
      } catch (error) {
        errors.push({
          reason: 'FieldValueInvalid',
          message: `Invalid value: ${JSON.stringify(rule)}: compilation failed: ${firstLine(error)}`,
          field: `${where}.rule`,
        });
      }
    });
    if (rules.length > 0) this.#rules.set(node, rules);
    const properties = isRecord(node.properties) ? node.properties : {};
    for (const [name, sub] of Object.entries(properties)) {
      if (isRecord(sub)) this.#compileNode(env, sub, `${path}.properties[${name}]`, errors);
    }
    if (isRecord(node.items)) this.#compileNode(env, node.items, `${path}.items`, errors);
    if (isRecord(node.additionalProperties)) {
      this.#compileNode(env, node.additionalProperties, `${path}.additionalProperties`, errors);
    }
  }

  /** Evaluates every rule against `object` (and `old` on update). */
  validate(object: Obj, old: Obj | undefined): CelOutcome {
    const outcome: CelOutcome = { causes: [], warnings: [] };
    this.#walk(this.#schema, object, old, { path: undefined, root: true, parentUnchanged: false }, outcome);
    return outcome;
  }

  #walk(
    schema: Obj,
    value: unknown,
    old: unknown,
    at: { path: string | undefined; root: boolean; parentUnchanged: boolean },
    outcome: CelOutcome,
  ): void {
    if (value === null || value === undefined) return;
    // A correlated node ratchets when it equals its old value; an uncorrelated one when its nearest correlated ancestor does.
    const unchanged = old === undefined ? at.parentUnchanged : isDeepStrictEqual(value, old);
    this.#evaluate(schema, value, old, at, unchanged, outcome);
    const next = (path: string, v: unknown, o: unknown, s: unknown): void => {
      if (isRecord(s)) this.#walk(s, v, o, { path, root: false, parentUnchanged: unchanged }, outcome);
    };
    if (Array.isArray(value)) {
      const oldItems = Array.isArray(old) ? old : [];
      const keys =
        schema['x-kubernetes-list-type'] === 'map' ? schema['x-kubernetes-list-map-keys'] : undefined;
      value.forEach((item, i) => {
        const match = Array.isArray(keys)
          ? oldItems.find(
              (o) => isRecord(o) && isRecord(item) && keys.every((k) => isDeepStrictEqual(o[k], item[k])),
            )
          : undefined;
        next(indexed(at.path, i), item, match, schema.items);
      });
      return;
    }
    if (!isRecord(value)) return;
    const oldMap = isRecord(old) && schema['x-kubernetes-map-type'] !== 'unknown' ? old : {};
    const properties = isRecord(schema.properties) ? schema.properties : {};
    for (const [k, v] of Object.entries(value)) {
      if (at.root && (k === 'apiVersion' || k === 'kind' || k === 'metadata')) continue;
      if (properties[k] !== undefined) next(child(at.path, k), v, oldMap[k], properties[k]);
      else next(indexed(at.path, k), v, oldMap[k], schema.additionalProperties);
    }
  }

  #evaluate(
    schema: Obj,
    value: unknown,
    old: unknown,
    at: { path: string | undefined; root: boolean },
    unchanged: boolean,
    outcome: CelOutcome,
  ): void {
    const rules = this.#rules.get(schema);
    if (rules === undefined) return;
    const type = typeof schema.type === 'string' ? schema.type : at.root ? 'object' : '';
    const self = toCel(at.root ? rootView(value) : value, schema);
    const oldSelf = old === undefined ? undefined : toCel(at.root ? rootView(old) : old, schema);
    for (const rule of rules) {
      if (rule.usesOldSelf && old === undefined && !rule.optionalOldSelf) continue;
      const context: Obj = { self };
      if (rule.optionalOldSelf)
        context.oldSelf = oldSelf === undefined ? Optional.none() : Optional.of(oldSelf);
      else if (oldSelf !== undefined) context.oldSelf = oldSelf;
      const cause = this.#check(rule, context, at.path, type);
      if (cause === undefined) continue;
      if (!rule.usesOldSelf && unchanged) outcome.warnings.push(`${cause.field}: ${cause.message}`);
      else outcome.causes.push(cause);
    }
  }

  /** The cause a rule reports, or undefined when it holds. */
  #check(rule: Rule, context: Obj, path: string | undefined, type: string): StatusCause | undefined {
    const ruleString = (rule.message ?? '').trim() || rule.rule.trim();
    let result: unknown;
    try {
      result = rule.program(context);
    } catch (error) {
      const message = celError(error);
      const detail = message.startsWith('no such overload')
        ? `'${message}': call arguments did not match a supported operator, function or macro signature for rule: ${ruleString}`
        : `${message} evaluating rule: ${ruleString}`;
      return {
        reason: 'FieldValueInvalid',
        message: `Invalid value: "${type}": ${detail}`,
        field: path ?? '<nil>',
      };
    }
    if (result === true) return undefined;
    const field =
      rule.fieldPath === undefined ? (path ?? '<nil>') : child(path, normalizeFieldPath(rule.fieldPath));
    const detail = this.#message(rule, context) ?? (rule.message?.trim() || `failed rule: ${ruleString}`);
    switch (rule.reason) {
      case 'FieldValueForbidden':
        return { reason: rule.reason, message: `Forbidden: ${detail}`, field };
      case 'FieldValueRequired':
        return { reason: rule.reason, message: `Required value: ${detail}`, field };
      case 'FieldValueDuplicate':
        return { reason: rule.reason, message: `Duplicate value: "${type}"`, field };
      default:
        return { reason: 'FieldValueInvalid', message: `Invalid value: "${type}": ${detail}`, field };
    }
  }

  /** The evaluated messageExpression, when it yields a usable message. */
  #message(rule: Rule, context: Obj): string | undefined {
    if (rule.messageProgram === undefined) return undefined;
    try {
      const message = rule.messageProgram(context);
      if (typeof message !== 'string') return undefined;
      const trimmed = message.trim();
      if (trimmed === '' || trimmed.includes('\n') || Buffer.byteLength(trimmed) > MAX_MESSAGE_BYTES)
        return undefined;
      return trimmed;
    } catch {
      // As the real server: a failing messageExpression falls back to message (it only logs).
      return undefined;
    }
  }
}

/** The root object as rules see it: metadata reduced to name and generateName. */
function rootView(object: unknown): unknown {
  if (!isRecord(object)) return object;
  const meta = isRecord(object.metadata) ? object.metadata : {};
  const metadata: Obj = {};
  if (typeof meta.name === 'string') metadata.name = meta.name;
  if (typeof meta.generateName === 'string') metadata.generateName = meta.generateName;
  return { ...object, metadata };
}
