/**
 * Structural validation of an ApiPolicy document against the schema (Ajv,
 * compiled once), with Ajv's errors turned into precise diagnostics.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { type Diagnostic, error, type FieldPath } from '../diagnostics.ts';
import { ApiPolicy, DURATION_PATTERN, QUANTITY_PATTERN } from '../schema/api-policy.ts';

// ajv-formats is CommonJS; its default export is the plugin function.
const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

export const K8S_KEYWORDS = [
  'x-kubernetes-int-or-string',
  'x-kubernetes-preserve-unknown-fields',
  'x-kubernetes-validations',
  'x-kubernetes-list-type',
  'x-kubernetes-map-type',
];

/** A strict Ajv instance that knows the Kubernetes annotations (as no-op keywords). */
export function createAjv(): Ajv {
  const ajv = new Ajv({ allErrors: true, strict: true, strictTypes: false, useDefaults: false });
  addFormats(ajv);
  for (const keyword of K8S_KEYWORDS) ajv.addKeyword({ keyword });
  return ajv;
}

let compiled: ValidateFunction | undefined;
function validator(): ValidateFunction {
  compiled ??= createAjv().compile(ApiPolicy);
  return compiled;
}

const PATTERN_MESSAGES: Record<string, string> = {
  [DURATION_PATTERN]: 'must be a Go-style duration such as 30s, 5m or 1h',
  [QUANTITY_PATTERN]: 'must be a size such as 64Ki, 1Mi or a byte count',
  '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$': 'must be a lowercase name of letters, digits and "-" (a DNS label)',
};

function pointerToPath(pointer: string): (string | number)[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^(0|[1-9][0-9]*)$/.test(s) ? Number(s) : s));
}

function describe(e: ErrorObject): { path: FieldPath; message: string } {
  const path = pointerToPath(e.instancePath);
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'additionalProperties':
      return {
        path: [...path, String(p.additionalProperty)],
        message: `unknown field "${p.additionalProperty}"`,
      };
    case 'required':
      return { path: [...path, String(p.missingProperty)], message: 'is required' };
    case 'enum':
      return { path, message: `must be one of ${(p.allowedValues as unknown[]).join(', ')}` };
    case 'const':
      return { path, message: `must be ${JSON.stringify(p.allowedValue)}` };
    case 'type':
      return { path, message: `must be ${p.type === 'integer' ? 'an integer' : `of type ${p.type}`}` };
    case 'pattern':
      return { path, message: PATTERN_MESSAGES[String(p.pattern)] ?? `must match ${p.pattern}` };
    case 'oneOf':
      return { path, message: 'must be a name or a list of names' };
    case 'anyOf':
      return { path, message: 'must be a size such as 64Ki, 1Mi or a byte count' };
    case 'minProperties':
      return { path, message: p.limit === 1 ? 'must not be empty' : `must have at least ${p.limit} fields` };
    case 'maxProperties':
      return { path, message: `must set only one of its fields (found more than ${p.limit})` };
    case 'minItems':
      return { path, message: `must have at least ${p.limit} item${p.limit === 1 ? '' : 's'}` };
    default:
      return { path, message: e.message ?? `fails ${e.keyword}` };
  }
}

/** Drops errors that only restate a failed oneOf/anyOf alternative. */
function prune(errors: ErrorObject[]): ErrorObject[] {
  const unions = errors.filter((e) => e.keyword === 'oneOf' || e.keyword === 'anyOf');
  return errors.filter(
    (e) =>
      e.keyword === 'oneOf' ||
      e.keyword === 'anyOf' ||
      !unions.some(
        (u) => e.schemaPath.startsWith(`${u.schemaPath}/`) && e.instancePath.startsWith(u.instancePath),
      ),
  );
}

/** Validates one document against the ApiPolicy schema; [] when valid. */
export function validateSchema(doc: unknown): Diagnostic[] {
  const validate = validator();
  if (validate(doc)) return [];
  const seen = new Set<string>();
  const out: Diagnostic[] = [];
  for (const e of prune(validate.errors ?? [])) {
    const { path, message } = describe(e);
    const key = `${path.join('\u0000')}\u0001${message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(error(path, message));
  }
  return out;
}
