/**
 * A pure checker for the rules the Kubernetes API server applies to a CRD's
 * `openAPIV3Schema` before it accepts the CRD: structural-schema invariants
 * (apiextensions-apiserver pkg/apiserver/schema: convert.go, validation.go,
 * complete.go) and the apiextensions v1 static validation
 * (pkg/apis/apiextensions/validation/validation.go, pkg/apiserver/validation/formats.go).
 * It returns human-readable violations, each prefixed with its location
 * (`openAPIV3Schema.properties.spec.properties.routes.items.type: ...`); [] means accepted.
 */

type Node = Record<string, unknown>;
type Level = 'root' | 'item' | 'field';

const isNode = (v: unknown): v is Node => typeof v === 'object' && v !== null && !Array.isArray(v);
const has = (n: Node, k: string): boolean => Object.hasOwn(n, k);

// apiextensions v1 JSONSchemaProps json tags (types_jsonschema.go): any other key is an unknown field.
const KNOWN = new Set([
  ...[
    'id',
    '$schema',
    '$ref',
    'description',
    'type',
    'format',
    'title',
    'default',
    'maximum',
    'exclusiveMaximum',
  ],
  ...[
    'minimum',
    'exclusiveMinimum',
    'maxLength',
    'minLength',
    'pattern',
    'maxItems',
    'minItems',
    'uniqueItems',
  ],
  ...['multipleOf', 'enum', 'maxProperties', 'minProperties', 'required', 'items', 'allOf', 'oneOf', 'anyOf'],
  ...['not', 'properties', 'additionalProperties', 'patternProperties', 'dependencies', 'additionalItems'],
  ...['definitions', 'externalDocs', 'example', 'nullable', 'x-kubernetes-preserve-unknown-fields'],
  ...['x-kubernetes-embedded-resource', 'x-kubernetes-int-or-string', 'x-kubernetes-list-map-keys'],
  ...['x-kubernetes-list-type', 'x-kubernetes-map-type', 'x-kubernetes-validations'],
]);
// convert.go validateUnsupportedFields + validation.go specStandardValidatorV3.validate: known but rejected.
const UNSUPPORTED = [
  'id',
  '$schema',
  '$ref',
  'patternProperties',
  'dependencies',
  'additionalItems',
  'definitions',
];
// validation.go openapiV3Types: the only type names a CRD schema may use.
const TYPES = new Set(['array', 'boolean', 'integer', 'number', 'object', 'string']);
// formats.go supportedVersionedFormats (names compared with '-' removed, as go-openapi normalises them).
const STRING_FORMATS = new Set([
  ...['bsonobjectid', 'uri', 'email', 'hostname', 'ipv4', 'ipv6', 'cidr', 'mac', 'uuid', 'uuid3', 'uuid4'],
  ...['uuid5', 'isbn', 'isbn10', 'isbn13', 'creditcard', 'ssn', 'hexcolor', 'rgbcolor', 'byte', 'password'],
  ...['date', 'duration', 'datetime', 'k8sshortname', 'k8slongname'],
]);
// OpenAPI v3 numeric formats (kube-openapi strfmt); formats.go only vets string formats.
const NUMERIC_FORMATS: Record<string, string[]> = {
  integer: ['int32', 'int64'],
  number: ['float', 'double'],
};
// schema/validation.go validateNestedValueValidation: generics and extensions forbidden under a junctor.
const NESTED_FORBIDDEN = [
  ...['type', 'additionalProperties', 'default', 'title', 'description', 'nullable', 'externalDocs'],
  ...['x-kubernetes-preserve-unknown-fields', 'x-kubernetes-embedded-resource', 'x-kubernetes-int-or-string'],
  ...[
    'x-kubernetes-list-map-keys',
    'x-kubernetes-list-type',
    'x-kubernetes-map-type',
    'x-kubernetes-validations',
  ],
];
const JUNCTORS = ['allOf', 'anyOf', 'oneOf'] as const;
// validation.go supportedValidationReason: the reasons an x-kubernetes-validations rule may report.
const REASONS = ['FieldValueInvalid', 'FieldValueForbidden', 'FieldValueRequired', 'FieldValueDuplicate'];
const RULE_KEYS = new Set(['rule', 'message', 'messageExpression', 'reason', 'fieldPath', 'optionalOldSelf']);
const TYPE_MESSAGE: Record<Level, string> = {
  root: 'must not be empty at the root',
  item: 'must not be empty for specified array items',
  field: 'must not be empty for specified object fields',
};

/** Whether `anyOf` is exactly [{type: integer}, {type: string}] (schema/validation.go intOrStringAnyOf). */
function isIntOrStringAnyOf(anyOf: unknown): boolean {
  if (!Array.isArray(anyOf) || anyOf.length !== 2) return false;
  return ['integer', 'string'].every((t, i) => JSON.stringify(anyOf[i]) === JSON.stringify({ type: t }));
}

/** Basic JSON type check of a value against a node's type (default and enum values). */
function typeOk(v: unknown, n: Node): boolean {
  if (v === null) return n.nullable === true;
  if (n['x-kubernetes-int-or-string'] === true) return Number.isInteger(v) || typeof v === 'string';
  switch (n.type) {
    case 'string':
      return typeof v === 'string';
    case 'integer':
      return Number.isInteger(v);
    case 'number':
      return typeof v === 'number';
    case 'boolean':
      return typeof v === 'boolean';
    case 'array':
      return Array.isArray(v);
    case 'object':
      return isNode(v);
    default:
      return true;
  }
}

/** Why a default value would not survive pruning + validation (validation.go: prune, then "must validate"). */
function defaultProblem(v: unknown, n: Node): string | undefined {
  if (!typeOk(v, n)) return `must be of type ${String(n.type ?? 'int-or-string')}`;
  if (Array.isArray(n.enum) && !n.enum.some((e) => JSON.stringify(e) === JSON.stringify(v))) {
    return 'must be one of the enum values';
  }
  if (Array.isArray(v) && isNode(n.items)) {
    for (const item of v) {
      const p = defaultProblem(item, n.items);
      if (p) return p;
    }
  }
  if (!isNode(v) || n.type !== 'object') return undefined;
  const props = isNode(n.properties) ? n.properties : {};
  for (const [k, item] of Object.entries(v)) {
    const sub = props[k] ?? n.additionalProperties;
    if (isNode(sub)) {
      const p = defaultProblem(item, sub);
      if (p) return p;
    } else if (sub !== true && n['x-kubernetes-preserve-unknown-fields'] !== true) {
      return `must not have unknown fields (${k} would be pruned)`;
    }
  }
  return undefined;
}

/** Returns the violations of `schema` (a CRD version's openAPIV3Schema); [] when the API server would accept it. */
export function checkStructural(schema: unknown, rootPath = 'openAPIV3Schema'): string[] {
  const errors: string[] = [];
  const add = (path: string, message: string) => errors.push(`${path}: ${message}`);

  /** Rules on keywords, shared by structural nodes and nodes under a junctor. */
  function keywords(n: Node, path: string): void {
    for (const k of Object.keys(n)) {
      // Unknown JSONSchemaProps fields (const, examples, $id, $defs, if/then/else, ...) are rejected or dropped.
      if (!KNOWN.has(k))
        add(`${path}.${k}`, 'unknown field, not part of apiextensions.k8s.io/v1 JSONSchemaProps');
      // convert.go validateUnsupportedFields / validation.go: "<field> is not supported".
      else if (UNSUPPORTED.includes(k)) add(`${path}.${k}`, `${k} is not supported`);
    }
    // validation.go: uniqueItems would make validation quadratic.
    if (n.uniqueItems === true)
      add(`${path}.uniqueItems`, 'cannot be set to true (runtime complexity is quadratic)');
    // validation.go: items must be a schema object and not an array (tuple validation unsupported).
    if (Array.isArray(n.items)) add(`${path}.items`, 'must be a schema object and not an array');
    // validation.go: "type cannot be set to null, use nullable"; openapiV3Types for everything else.
    if (has(n, 'type') && n.type !== '' && !(typeof n.type === 'string' && TYPES.has(n.type))) {
      add(
        `${path}.type`,
        `unsupported type ${JSON.stringify(n.type)}: must be one of ${[...TYPES].join(', ')}`,
      );
    }
    // schema/validation.go validateValueValidation: pattern must compile (RE2: no lookaround, no backreferences).
    if (has(n, 'pattern')) {
      const p = n.pattern;
      let ok = typeof p === 'string' && !/\(\?<?[=!]|\\[1-9]/.test(p);
      try {
        if (ok) new RegExp(p as string);
      } catch {
        ok = false;
      }
      if (!ok) add(`${path}.pattern`, 'must be a valid (RE2) regular expression');
    }
    // formats.go supportedVersionedFormats (string) and OpenAPI numeric formats.
    if (has(n, 'format')) {
      const f = typeof n.format === 'string' ? n.format : '';
      const known = NUMERIC_FORMATS[String(n.type)]?.includes(f) || STRING_FORMATS.has(f.replaceAll('-', ''));
      if (!known) add(`${path}.format`, `unsupported format ${JSON.stringify(n.format)}`);
    }
  }

  /** A node under allOf/anyOf/oneOf/not: value validations only (schema/validation.go validateNestedValueValidation). */
  function nested(n: unknown, path: string, skipAnyOf: boolean): void {
    if (!isNode(n)) return add(path, 'must be a schema object');
    keywords(n, path);
    for (const k of NESTED_FORBIDDEN) {
      if (has(n, k) && !(k === 'nullable' && n.nullable === false))
        add(`${path}.${k}`, 'must be undefined to be structural');
    }
    junctors(n, path, skipAnyOf, false);
    if (has(n, 'items') && !Array.isArray(n.items)) nested(n.items, `${path}.items`, false);
    for (const [k, v] of Object.entries(isNode(n.properties) ? n.properties : {})) {
      // schema/validation.go: metadata must not be specified in a nested context.
      if (k === 'metadata') add(`${path}.properties.metadata`, 'must not be specified in a nested context');
      nested(v, `${path}.properties.${k}`, false);
    }
  }

  /** Walks the junctors of n; skips the int-or-string anyOf exceptions (schema/validation.go isIntOrString*Pattern). */
  function junctors(n: Node, path: string, skipAnyOf: boolean, structural: boolean): void {
    const allOfHead = Array.isArray(n.allOf) && isNode(n.allOf[0]) && isIntOrStringAnyOf(n.allOf[0].anyOf);
    for (const j of JUNCTORS) {
      if (!has(n, j)) continue;
      const list = n[j];
      if (!Array.isArray(list)) {
        add(`${path}.${j}`, 'must be a list of schemas');
        continue;
      }
      if (j === 'anyOf' && (skipAnyOf || (structural && isIntOrStringAnyOf(list)))) continue;
      list.forEach((v, i) =>
        nested(v, `${path}.${j}[${i}]`, j === 'allOf' && i === 0 && structural && allOfHead),
      );
    }
    if (has(n, 'not')) nested(n.not, `${path}.not`, false);
  }

  /** complete.go: every field or items a junctor mentions must also be specified in the structural part. */
  function complete(v: unknown, s: Node, sPath: string, vPath: string): void {
    if (!isNode(v)) return;
    for (const j of JUNCTORS) {
      if (Array.isArray(v[j])) v[j].forEach((x, i) => complete(x, s, sPath, `${vPath}.${j}[${i}]`));
    }
    complete(v.not, s, sPath, `${vPath}.not`);
    if (isNode(v.items)) {
      if (isNode(s.items)) complete(v.items, s.items, `${sPath}.items`, `${vPath}.items`);
      else add(`${sPath}.items`, `required because it is defined in ${vPath}.items`);
    }
    const sProps = isNode(s.properties) ? s.properties : {};
    for (const [k, x] of Object.entries(isNode(v.properties) ? v.properties : {})) {
      const sub = sProps[k];
      if (isNode(sub)) complete(x, sub, `${sPath}.properties.${k}`, `${vPath}.properties.${k}`);
      else add(`${sPath}.properties.${k}`, `required because it is defined in ${vPath}.properties.${k}`);
    }
  }

  /** x-kubernetes-validations entries (validation.go, CEL rules section). */
  function rules(n: Node, path: string): void {
    const list = n['x-kubernetes-validations'];
    if (!Array.isArray(list)) return add(`${path}.x-kubernetes-validations`, 'must be a list of rules');
    list.forEach((r: unknown, i) => {
      const at = `${path}.x-kubernetes-validations[${i}]`;
      if (!isNode(r)) return add(at, 'must be an object');
      for (const k of Object.keys(r)) if (!RULE_KEYS.has(k)) add(`${at}.${k}`, 'unknown field');
      const text = (k: string) => (typeof r[k] === 'string' ? (r[k] as string) : '');
      if (text('rule').trim() === '') add(`${at}.rule`, 'rule is not specified');
      for (const k of ['message', 'messageExpression', 'fieldPath']) {
        if (!has(r, k)) continue;
        if (text(k).trim() === '') add(`${at}.${k}`, `${k} must be a non-empty string if specified`);
        else if (k !== 'messageExpression' && /[\r\n]/.test(text(k)))
          add(`${at}.${k}`, `${k} must not contain line breaks`);
      }
      if (/[\r\n]/.test(text('rule').trim()) && !has(r, 'message') && !has(r, 'messageExpression')) {
        add(`${at}.message`, 'message must be specified if rule contains line breaks');
      }
      if (has(r, 'reason') && !REASONS.includes(text('reason'))) {
        add(`${at}.reason`, `must be one of ${REASONS.join(', ')}`);
      }
      if (has(r, 'optionalOldSelf') && typeof r.optionalOldSelf !== 'boolean')
        add(`${at}.optionalOldSelf`, 'must be a boolean');
      // validation.go: fieldPath must be a valid path to a field of this node (dotted form checked here).
      if (text('fieldPath').trim() !== '' && !resolves(n, text('fieldPath')))
        add(`${at}.fieldPath`, 'must be a valid path');
    });
  }

  /** Whether a `.a.b` fieldPath names a declared property below n. */
  function resolves(n: Node, fieldPath: string): boolean {
    if (!fieldPath.startsWith('.')) return false;
    let cur: unknown = n;
    for (const seg of fieldPath.slice(1).split('.')) {
      if (!isNode(cur)) return false;
      const props: unknown = cur.properties;
      cur = isNode(props) && has(props, seg) ? props[seg] : cur.additionalProperties;
    }
    return isNode(cur);
  }

  /** x-kubernetes-list-type / list-map-keys / map-type (validation.go, listtype and maptype section). */
  function listAndMapTypes(n: Node, path: string): void {
    const listType = n['x-kubernetes-list-type'];
    const keys = n['x-kubernetes-list-map-keys'];
    const items = isNode(n.items) ? n.items : undefined;
    if (has(n, 'x-kubernetes-list-type')) {
      if (!['atomic', 'set', 'map'].includes(String(listType))) {
        add(`${path}.x-kubernetes-list-type`, 'must be one of atomic, set, map');
      }
      if (n.type !== 'array') add(`${path}.type`, 'must be array if x-kubernetes-list-type is specified');
    }
    if (listType === 'map') {
      if (!Array.isArray(keys) || keys.length === 0) {
        add(`${path}.x-kubernetes-list-map-keys`, 'must not be empty if x-kubernetes-list-type is map');
      }
      if (items?.type !== 'object') add(`${path}.items.type`, 'must be object for an array of type map');
      const props = isNode(items?.properties) ? items.properties : {};
      for (const k of Array.isArray(keys) ? keys : []) {
        if (!has(props, String(k)))
          add(`${path}.x-kubernetes-list-map-keys`, `${String(k)} is not a property of items`);
      }
    } else if (has(n, 'x-kubernetes-list-map-keys')) {
      add(`${path}.x-kubernetes-list-map-keys`, 'must be empty if x-kubernetes-list-type is not map');
    }
    if (listType === 'set' && items?.type === 'object' && items['x-kubernetes-map-type'] !== 'atomic') {
      add(
        `${path}.items.x-kubernetes-map-type`,
        'must be atomic as item of a list with x-kubernetes-list-type=set',
      );
    }
    if (has(n, 'x-kubernetes-map-type')) {
      if (!['atomic', 'granular'].includes(String(n['x-kubernetes-map-type']))) {
        add(`${path}.x-kubernetes-map-type`, 'must be one of atomic, granular');
      }
      if (n.type !== 'object') add(`${path}.type`, 'must be object if x-kubernetes-map-type is specified');
    }
  }

  /** A node of the structural part (root, property, items or additionalProperties). */
  function walk(n: unknown, path: string, level: Level, inMeta: boolean): void {
    if (!isNode(n)) return add(path, 'must be a schema object');
    keywords(n, path);
    const intOrString = n['x-kubernetes-int-or-string'] === true;
    const preserve = n['x-kubernetes-preserve-unknown-fields'];
    const typed = typeof n.type === 'string' && n.type !== '';
    // schema/validation.go validateStructuralInvariants: a non-empty type, except int-or-string / preserve nodes.
    if (!typed && !intOrString && preserve !== true) add(`${path}.type`, TYPE_MESSAGE[level]);
    // validation.go: x-kubernetes-preserve-unknown-fields must be true or undefined.
    if (has(n, 'x-kubernetes-preserve-unknown-fields') && preserve !== true) {
      add(`${path}.x-kubernetes-preserve-unknown-fields`, 'must be true or undefined');
    }
    // validation.go: type must be empty if x-kubernetes-int-or-string is true (the anyOf carries the types).
    if (intOrString && typed) add(`${path}.type`, 'must be empty if x-kubernetes-int-or-string is true');
    // schema/validation.go validateExtensions: int-or-string excludes preserve-unknown-fields.
    if (intOrString && preserve === true) {
      add(
        `${path}.x-kubernetes-preserve-unknown-fields`,
        'must be false if x-kubernetes-int-or-string is true',
      );
    }
    // schema/validation.go: an embedded resource must be an object.
    if (n['x-kubernetes-embedded-resource'] === true && n.type !== 'object') {
      add(`${path}.type`, 'must be object if x-kubernetes-embedded-resource is true');
    }
    if (level === 'root') {
      // schema/validation.go + validation.go: root is an object, not nullable, without additionalProperties.
      if (typed && n.type !== 'object') add(`${path}.type`, 'must be object at the root');
      if (n.nullable === true) add(`${path}.nullable`, 'nullable cannot be true at the root');
      if (has(n, 'additionalProperties')) add(`${path}.additionalProperties`, 'must not be used at the root');
    }
    const props = n.properties;
    if (has(n, 'properties') && !isNode(props)) add(`${path}.properties`, 'must be a map of schemas');
    const propMap = isNode(props) ? props : {};
    for (const [k, v] of Object.entries(propMap)) {
      const meta = level === 'root' && ['apiVersion', 'kind', 'metadata'].includes(k);
      walk(v, `${path}.properties.${k}`, 'field', inMeta || meta);
    }
    if (level === 'root') rootMeta(propMap, path);
    const ap = n.additionalProperties;
    // CRD docs ("Validation") / validation.go: additionalProperties cannot be set to false.
    if (ap === false) add(`${path}.additionalProperties`, 'cannot be set to false');
    else if (has(n, 'additionalProperties') && ap !== true)
      walk(ap, `${path}.additionalProperties`, 'field', inMeta);
    // validation.go: additionalProperties and properties are mutual exclusive.
    if (Object.keys(propMap).length > 0 && (ap === false || isNode(ap))) {
      add(`${path}.additionalProperties`, 'additionalProperties and properties are mutual exclusive');
    }
    // schema/validation.go: an array node must specify items.
    if (n.type === 'array' && !has(n, 'items')) add(`${path}.items`, 'must be specified');
    if (isNode(n.items)) walk(n.items, `${path}.items`, 'item', inMeta);
    junctors(n, path, false, true);
    for (const j of JUNCTORS)
      if (Array.isArray(n[j])) n[j].forEach((v, i) => complete(v, n, path, `${path}.${j}[${i}]`));
    complete(n.not, n, path, `${path}.not`);
    // validation.go withForbiddenDefaults("in top-level metadata"); otherwise the default must prune and validate.
    if (has(n, 'default')) {
      const problem = inMeta ? 'must not be set in top-level metadata' : defaultProblem(n.default, n);
      if (problem) add(`${path}.default`, problem);
    }
    // enum values must be valid values of the node (kube-openapi validates them against the type).
    if (has(n, 'enum')) {
      if (!Array.isArray(n.enum)) add(`${path}.enum`, 'must be a list');
      else
        n.enum.forEach(
          (v, i) => typeOk(v, n) || add(`${path}.enum[${i}]`, `must be of type ${String(n.type)}`),
        );
    }
    if (has(n, 'x-kubernetes-validations')) rules(n, path);
    listAndMapTypes(n, path);
  }

  /** schema/validation.go: apiVersion/kind are strings; metadata may only be an object restricting name/generateName. */
  function rootMeta(props: Node, path: string): void {
    for (const k of ['apiVersion', 'kind']) {
      const p = props[k];
      if (isNode(p) && p.type !== 'string') add(`${path}.properties.${k}.type`, 'must be string');
    }
    const meta = props.metadata;
    if (!isNode(meta)) return;
    if (meta.type !== 'object') add(`${path}.properties.metadata.type`, 'must be object');
    const metaProps = isNode(meta.properties) ? Object.keys(meta.properties) : [];
    const extra = Object.keys(meta).filter((k) => k !== 'type' && k !== 'properties' && k !== 'default');
    if (extra.length > 0 || metaProps.some((k) => k !== 'name' && k !== 'generateName')) {
      add(`${path}.properties.metadata`, 'must not specify anything other than name and generateName');
    }
  }

  walk(schema, rootPath, 'root', false);
  return errors;
}
