/**
 * Schema building blocks of the ApiPolicy schema: Kubernetes-flavoured types
 * (PascalCase string enums, Go durations, quantities, DNS-label names) that
 * render as structural OpenAPI in the CRD and validate with Ajv.
 */
import { type Static, type TSchema, Type } from '@sinclair/typebox';

/** A string enum that renders as `{type: string, enum: [...]}` (structural-schema friendly). */
export function StringEnum<const T extends string>(values: readonly T[], description: string, def?: T) {
  return Type.Unsafe<T>({
    type: 'string',
    enum: [...values],
    description,
    ...(def === undefined ? {} : { default: def }),
  });
}

/** A map with string keys; `additionalProperties` (not `patternProperties`) as the CRD needs. */
export function StringMap<V extends TSchema>(value: V, description: string) {
  return Type.Unsafe<Record<string, Static<V>>>({ type: 'object', additionalProperties: value, description });
}

/** Go-style duration such as `30s`, `5m`, `1h30m`, `250ms`. */
export const DURATION_PATTERN = '^([0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$';
export function Duration(description: string) {
  return Type.String({
    pattern: DURATION_PATTERN,
    description: `${description} Go-style duration (e.g. 30s, 5m, 1h).`,
  });
}

/** Kubernetes quantity (`64Ki`, `1Mi`, `1000`), as an integer or a string. */
export const QUANTITY_PATTERN =
  '^(\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?$';
export function Quantity(description: string) {
  return Type.Unsafe<number | string>({
    anyOf: [{ type: 'integer' }, { type: 'string' }],
    pattern: QUANTITY_PATTERN,
    'x-kubernetes-int-or-string': true,
    description: `${description} Kubernetes quantity (e.g. 64Ki, 1Mi) or a byte count.`,
  });
}

/** A name or a list of names. Untyped in the CRD (structural schemas cannot say "string or list"). */
export function NameOrNames(description: string) {
  return Type.Unsafe<string | string[]>({
    oneOf: [
      { type: 'string', minLength: 1 },
      // An empty list means no limit (a route opting out of defaults.rateLimit).
      { type: 'array', items: { type: 'string', minLength: 1 } },
    ],
    'x-kubernetes-preserve-unknown-fields': true,
    description,
  });
}

/** A free-form JSON Schema object (kept verbatim; compiled by the validator at compile time). */
export function JsonSchemaField(description: string) {
  return Type.Unsafe<Record<string, unknown>>({
    type: 'object',
    'x-kubernetes-preserve-unknown-fields': true,
    description,
  });
}

export const NAME_PATTERN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$';
export function Name(description: string) {
  return Type.String({ pattern: NAME_PATTERN, maxLength: 63, description });
}

export const EmptyObject = (description: string) =>
  Type.Object({}, { additionalProperties: false, description });
