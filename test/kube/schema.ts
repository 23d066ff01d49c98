/**
 * A CRD version's structural `openAPIV3Schema` applied as the API server
 * does: unknown fields are found and pruned (or refused under
 * `fieldValidation=Strict`), `default`s are filled in, then the object is
 * validated (types, enums, patterns, bounds, required) with Ajv and every
 * error is reported as a `Status` cause with a Kubernetes field path
 * (`spec.routes[0].name`). CEL rules (`x-kubernetes-validations`) are
 * evaluated separately (cel-rules.ts).
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { Obj, StatusCause } from './status.ts';

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

function isRecord(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `/spec/routes/0/name` → `spec.routes[0].name`. */
export function fieldPath(instancePath: string, extra?: string): string {
  const tokens = instancePath === '' ? [] : instancePath.slice(1).split('/');
  if (extra !== undefined) tokens.push(extra);
  let out = '';
  for (const raw of tokens) {
    const token = raw.replaceAll('~1', '/').replaceAll('~0', '~');
    if (/^(0|[1-9][0-9]*)$/.test(token)) out += `[${token}]`;
    else out += out === '' ? token : `.${token}`;
  }
  return out;
}

function render(value: unknown): string {
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') {
    return JSON.stringify(value);
  }
  return `"${Array.isArray(value) ? 'array' : value === null ? 'null' : 'object'}"`;
}

function typeName(value: unknown): string {
  if (Array.isArray(value)) return 'array';
  if (value === null) return 'null';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

function cause(error: ErrorObject): StatusCause | undefined {
  const field = fieldPath(error.instancePath);
  const value = error.data;
  const params = error.params as Record<string, unknown>;
  const invalid = (detail: string): StatusCause => ({
    reason: 'FieldValueInvalid',
    message: `Invalid value: ${render(value)}: ${field} in body ${detail}`,
    field,
  });
  switch (error.keyword) {
    case 'required':
      return {
        reason: 'FieldValueRequired',
        message: 'Required value',
        field: fieldPath(error.instancePath, String(params.missingProperty)),
      };
    case 'enum': {
      const allowed = Array.isArray(params.allowedValues) ? params.allowedValues : [];
      return {
        reason: 'FieldValueNotSupported',
        message: `Unsupported value: ${render(value)}: supported values: ${allowed.map((v) => JSON.stringify(v)).join(', ')}`,
        field,
      };
    }
    case 'type':
      return {
        reason: 'FieldValueTypeInvalid',
        message: `Invalid value: "${typeName(value)}": ${field} in body must be of type ${String(params.type)}: "${typeName(value)}"`,
        field,
      };
    case 'pattern':
      return invalid(`should match '${String(params.pattern)}'`);
    case 'minimum':
      return invalid(`should be greater than or equal to ${String(params.limit)}`);
    case 'maximum':
      return invalid(`should be less than or equal to ${String(params.limit)}`);
    case 'minLength':
      return invalid(`should be at least ${String(params.limit)} chars long`);
    case 'maxLength':
      return {
        reason: 'FieldValueTooLong',
        message: `Too long: may not be more than ${String(params.limit)} bytes`,
        field,
      };
    case 'minItems':
      return invalid(`should have at least ${String(params.limit)} items`);
    case 'maxItems':
    case 'maxProperties': {
      const count = Array.isArray(value) ? value.length : isRecord(value) ? Object.keys(value).length : 0;
      return {
        reason: 'FieldValueTooMany',
        message: `Too many: ${count}: must have at most ${String(params.limit)} items`,
        field,
      };
    }
    case 'minProperties':
      return invalid(`should have at least ${String(params.limit)} properties`);
    case 'format':
      return invalid(`must be of type ${String(params.format)}`);
    case 'anyOf':
      return invalid('must validate at least one schema (anyOf)');
    default:
      return invalid(error.message ?? error.keyword);
  }
}

/** Removes from `value` (in place) what `schema` does not declare; returns the removed paths. */
function prune(value: unknown, schema: unknown, path: string, removed: string[]): void {
  if (!isRecord(schema)) return;
  if (Array.isArray(value)) {
    value.forEach((item, i) => {
      prune(item, schema.items, `${path}[${i}]`, removed);
    });
    return;
  }
  if (!isRecord(value)) return;
  const properties = isRecord(schema.properties) ? schema.properties : undefined;
  const additional = isRecord(schema.additionalProperties) ? schema.additionalProperties : undefined;
  const preserve = schema['x-kubernetes-preserve-unknown-fields'] === true;
  if (properties === undefined && additional === undefined && preserve) return;
  for (const key of Object.keys(value)) {
    const child = path === '' ? key : `${path}.${key}`;
    if (path === '' && (key === 'apiVersion' || key === 'kind' || key === 'metadata')) continue;
    const sub = properties?.[key] ?? additional;
    if (sub !== undefined) prune(value[key], sub, child, removed);
    else if (!preserve) {
      removed.push(child);
      delete value[key];
    }
  }
}

/** One CRD version's schema, compiled once. */
export class CrdSchema {
  readonly #schema: Obj;
  readonly #validate: ValidateFunction;

  constructor(openAPIV3Schema: Obj) {
    this.#schema = openAPIV3Schema;
    const ajv = new Ajv({ allErrors: true, strict: false, useDefaults: true, verbose: true });
    addFormats(ajv);
    this.#validate = ajv.compile(structuredClone(openAPIV3Schema));
  }

  /** Prunes unknown fields from `object` in place and returns their paths (`spec.foo`). */
  prune(object: Obj): string[] {
    const removed: string[] = [];
    prune(object, this.#schema, '', removed);
    return removed;
  }

  /** Fills in defaults (in place) and returns the validation causes; [] when valid. */
  validate(object: Obj): StatusCause[] {
    if (this.#validate(object)) return [];
    const errors = this.#validate.errors ?? [];
    const causes: StatusCause[] = [];
    for (const error of errors) {
      if (error.schemaPath.includes('/anyOf/')) continue;
      const c = cause(error);
      if (c !== undefined) causes.push(c);
    }
    return causes;
  }
}
