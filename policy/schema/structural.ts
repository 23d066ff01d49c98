/**
 * A pure checker for the rules the Kubernetes API server applies to a CRD's
 * `openAPIV3Schema` before it accepts the CRD: the structural-schema invariants
 * (apiextensions-apiserver pkg/apiserver/schema: convert.go, validation.go,
 * complete.go) and the apiextensions v1 static validation
 * (pkg/apis/apiextensions/validation/validation.go, pkg/apiserver/validation/formats.go).
 * Each violation is prefixed with its location, e.g.
 * `openAPIV3Schema.properties.spec.properties.routes.items.type: ...`; [] means accepted.
 */

type Node = Record<string, unknown>;

const isNode = (v: unknown): v is Node => typeof v === 'object' && v !== null && !Array.isArray(v);
const has = (n: Node, k: string): boolean => Object.hasOwn(n, k);
const words = (s: string): string[] => s.trim().split(/\s+/);
const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);
const map = (v: unknown): Node => (isNode(v) ? v : {});

// apiextensions v1 JSONSchemaProps json tags (types_jsonschema.go): any other key is an unknown field.
const KNOWN = new Set(
  words(`id $schema $ref description type format title default maximum exclusiveMaximum minimum
    exclusiveMinimum maxLength minLength pattern maxItems minItems uniqueItems multipleOf enum
    maxProperties minProperties required items allOf oneOf anyOf not properties additionalProperties
    patternProperties dependencies additionalItems definitions externalDocs example nullable
    x-kubernetes-preserve-unknown-fields x-kubernetes-embedded-resource x-kubernetes-int-or-string
    x-kubernetes-list-map-keys x-kubernetes-list-type x-kubernetes-map-type x-kubernetes-validations`),
);
// convert.go validateUnsupportedFields, validation.go specStandardValidatorV3: known but rejected.
const UNSUPPORTED = words('id $schema $ref patternProperties dependencies additionalItems definitions');
// validation.go openapiV3Types: the only type names a CRD schema may use ("null" included: use nullable).
const TYPES = words('array boolean integer number object string');
// formats.go supportedVersionedFormats (compared with '-' removed, as go-openapi normalises format names).
const STRING_FORMATS = new Set(
  words(`bsonobjectid uri email hostname ipv4 ipv6 cidr mac uuid uuid3 uuid4 uuid5 isbn isbn10 isbn13
    creditcard ssn hexcolor rgbcolor byte password date duration datetime k8sshortname k8slongname`),
);
// OpenAPI v3 numeric formats (kube-openapi strfmt); formats.go only vets string formats.
const NUM_FORMATS: Record<string, string[]> = { integer: ['int32', 'int64'], number: ['float', 'double'] };
// schema/validation.go validateNestedValueValidation: generics and extensions forbidden under a junctor.
const NESTED_FORBIDDEN = words(`type additionalProperties default title description nullable externalDocs
  x-kubernetes-preserve-unknown-fields x-kubernetes-embedded-resource x-kubernetes-int-or-string
  x-kubernetes-list-map-keys x-kubernetes-list-type x-kubernetes-map-type x-kubernetes-validations`);
const JUNCTORS = ['allOf', 'anyOf', 'oneOf'] as const;
// validation.go supportedValidationReason: the reasons an x-kubernetes-validations rule may report.
const REASONS = words('FieldValueInvalid FieldValueForbidden FieldValueRequired FieldValueDuplicate');
// apiextensions v1 ValidationRule json tags.
const RULE_KEYS = words('rule message messageExpression reason fieldPath optionalOldSelf');
const PUF = 'x-kubernetes-preserve-unknown-fields';
// schema/validation.go validateStructuralInvariants: "type: Required value: must not be empty ...".
const EMPTY_TYPE = {
  root: 'at the root',
  item: 'for specified array items',
  field: 'for specified object fields',
};
type Level = keyof typeof EMPTY_TYPE;
const IS_TYPE: Record<string, (v: unknown) => boolean> = {
  string: (v) => typeof v === 'string',
  integer: (v) => Number.isInteger(v),
  number: (v) => typeof v === 'number',
  boolean: (v) => typeof v === 'boolean',
  array: (v) => Array.isArray(v),
  object: isNode,
};

/** Whether `anyOf` is exactly [{type: integer}, {type: string}] (schema/validation.go intOrStringAnyOf). */
const isIntOrString = (anyOf: unknown): boolean => same(anyOf, [{ type: 'integer' }, { type: 'string' }]);

/** Basic JSON type check of a value against a node (used for default and enum values). */
function typeOk(v: unknown, n: Node): boolean {
  if (v === null) return n.nullable === true;
  if (n['x-kubernetes-int-or-string'] === true) return Number.isInteger(v) || typeof v === 'string';
  return IS_TYPE[String(n.type)]?.(v) ?? true;
}

/** Why a default would not survive pruning + validation (validation.go: Prune, then "must validate"). */
function defaultProblem(v: unknown, n: Node): string | undefined {
  if (!typeOk(v, n)) return `must be of type ${String(n.type ?? 'int-or-string')}`;
  if (Array.isArray(n.enum) && !n.enum.some((e) => same(e, v))) return 'must be one of the enum values';
  const children: [string, unknown, unknown][] = [];
  if (Array.isArray(v)) for (const [i, x] of v.entries()) children.push([String(i), x, n.items]);
  if (isNode(v) && n.type === 'object') {
    for (const [k, x] of Object.entries(v))
      children.push([k, x, map(n.properties)[k] ?? n.additionalProperties]);
  }
  for (const [k, x, sub] of children) {
    const problem = isNode(sub) ? defaultProblem(x, sub) : undefined;
    if (problem) return problem;
    if (!isNode(sub) && sub !== true && n['x-kubernetes-preserve-unknown-fields'] !== true) {
      return `must not have unknown fields (${k} would be pruned)`;
    }
  }
  return undefined;
}

/** Whether a `.a.b` fieldPath names a declared property below n. */
function resolves(n: Node, fieldPath: string): boolean {
  let cur: unknown = n;
  for (const seg of fieldPath.slice(1).split('.')) {
    cur = has(map(map(cur).properties), seg) ? map(map(cur).properties)[seg] : map(cur).additionalProperties;
  }
  return fieldPath.startsWith('.') && isNode(cur);
}

/** The violations of `schema` (a CRD version's openAPIV3Schema); [] when the API server accepts it. */
export function checkStructural(schema: unknown, rootPath = 'openAPIV3Schema'): string[] {
  const errors: string[] = [];
  const add = (path: string, message: string): void => {
    errors.push(`${path}: ${message}`);
  };

  /** Rules on keywords, shared by structural nodes and nodes under a junctor. */
  function keywords(n: Node, path: string): void {
    for (const k of Object.keys(n)) {
      // Keys outside JSONSchemaProps (const, examples, $id, $defs, if/then/else, ...) are unknown fields.
      if (!KNOWN.has(k)) add(`${path}.${k}`, 'unknown field (not in v1 JSONSchemaProps)');
      // convert.go validateUnsupportedFields / validation.go: "<field> is not supported".
      else if (UNSUPPORTED.includes(k)) add(`${path}.${k}`, `${k} is not supported`);
    }
    // validation.go: "uniqueItems cannot be set to true since the runtime complexity becomes quadratic".
    if (n.uniqueItems === true) add(`${path}.uniqueItems`, 'cannot be set to true (quadratic complexity)');
    // validation.go / convert.go: "items must be a schema object and not an array".
    if (Array.isArray(n.items)) add(`${path}.items`, 'must be a schema object and not an array');
    // validation.go: type is one of openapiV3Types ("type cannot be set to null, use nullable").
    if (has(n, 'type') && n.type !== '' && !TYPES.includes(String(n.type)))
      add(`${path}.type`, `must be one of ${TYPES}`);
    // schema/validation.go validateValueValidation: pattern must compile as RE2 (no lookaround/backrefs).
    if (has(n, 'pattern')) {
      let ok = typeof n.pattern === 'string' && !/\(\?<?[=!]|\\[1-9]/.test(n.pattern);
      try {
        if (ok) new RegExp(String(n.pattern));
      } catch {
        ok = false;
      }
      if (!ok) add(`${path}.pattern`, 'must be a valid (RE2) regular expression');
    }
    // formats.go supportedVersionedFormats for strings; OpenAPI int32/int64/float/double for numbers.
    const f = typeof n.format === 'string' ? n.format : '';
    const formatOk = NUM_FORMATS[String(n.type)]?.includes(f) || STRING_FORMATS.has(f.replaceAll('-', ''));
    if (has(n, 'format') && !formatOk)
      add(`${path}.format`, `unsupported format ${JSON.stringify(n.format)}`);
  }

  /** A node under allOf/anyOf/oneOf/not: value validations only (schema/validation.go). */
  function nested(n: unknown, path: string, skipAnyOf: boolean) {
    if (!isNode(n)) return add(path, 'must be a schema object');
    keywords(n, path);
    // schema/validation.go validateNestedValueValidation: "must be undefined/empty/false to be structural".
    for (const k of NESTED_FORBIDDEN)
      if (has(n, k) && n[k] !== false) add(`${path}.${k}`, 'must be undefined to be structural');
    junctors(n, path, skipAnyOf, false);
    if (isNode(n.items)) nested(n.items, `${path}.items`, false);
    for (const [k, v] of Object.entries(map(n.properties))) {
      // schema/validation.go: metadata "must not be specified in a nested context".
      if (k === 'metadata') add(`${path}.properties.metadata`, 'must not be specified in a nested context');
      nested(v, `${path}.properties.${k}`, false);
    }
  }

  /** The junctors of n, minus the int-or-string anyOf exceptions (schema/validation.go isIntOrString*). */
  function junctors(n: Node, path: string, skipAnyOf: boolean, structural: boolean): void {
    const allOf0 = structural && Array.isArray(n.allOf) && isIntOrString(map(n.allOf[0]).anyOf);
    for (const j of JUNCTORS) {
      const list = n[j];
      if (!has(n, j) || (j === 'anyOf' && (skipAnyOf || (structural && isIntOrString(list))))) continue;
      if (!Array.isArray(list)) add(`${path}.${j}`, 'must be a list of schemas');
      for (const [i, v] of (Array.isArray(list) ? list : []).entries())
        nested(v, `${path}.${j}[${i}]`, allOf0 && i === 0);
    }
    if (has(n, 'not')) nested(n.not, `${path}.not`, false);
  }

  /** complete.go: every field or items a junctor mentions must also be specified in the structural part. */
  function complete(v: unknown, s: Node, sPath: string, vPath: string): void {
    if (!isNode(v)) return;
    for (const j of JUNCTORS) {
      for (const [i, x] of (Array.isArray(v[j]) ? v[j] : []).entries())
        complete(x, s, sPath, `${vPath}.${j}[${i}]`);
    }
    complete(v.not, s, sPath, `${vPath}.not`);
    const pairs: [string, unknown, unknown][] = isNode(v.items) ? [['items', v.items, s.items]] : [];
    for (const [k, x] of Object.entries(map(v.properties)))
      pairs.push([`properties.${k}`, x, map(s.properties)[k]]);
    for (const [k, x, sub] of pairs) {
      if (isNode(sub)) complete(x, sub, `${sPath}.${k}`, `${vPath}.${k}`);
      else add(`${sPath}.${k}`, `required because it is defined in ${vPath}.${k}`);
    }
  }

  /** x-kubernetes-validations entries (validation.go, the x-kubernetes-validations section). */
  function rules(n: Node, path: string) {
    const list = n['x-kubernetes-validations'];
    if (!Array.isArray(list)) return add(`${path}.x-kubernetes-validations`, 'must be a list of rules');
    for (const [i, r] of list.entries()) {
      const at = `${path}.x-kubernetes-validations[${i}]`;
      const rule = map(r);
      const text = (k: string): string => (typeof rule[k] === 'string' ? String(rule[k]) : '');
      if (!isNode(r)) add(at, 'must be an object');
      for (const k of Object.keys(rule)) if (!RULE_KEYS.includes(k)) add(`${at}.${k}`, 'unknown field');
      if (text('rule').trim() === '') add(`${at}.rule`, 'rule is not specified');
      for (const k of ['message', 'messageExpression', 'fieldPath']) {
        if (has(rule, k) && text(k).trim() === '') add(`${at}.${k}`, 'must be non-empty if specified');
        else if (k !== 'messageExpression' && /[\r\n]/.test(text(k)))
          add(`${at}.${k}`, 'must not have line breaks');
      }
      const multiLine = /[\r\n]/.test(text('rule').trim()) && !has(rule, 'messageExpression');
      if (multiLine && !has(rule, 'message'))
        add(`${at}.message`, 'must be specified if rule has line breaks');
      if (has(rule, 'reason') && !REASONS.includes(text('reason')))
        add(`${at}.reason`, `must be one of ${REASONS}`);
      const oldSelf = rule.optionalOldSelf;
      if (oldSelf !== undefined && typeof oldSelf !== 'boolean')
        add(`${at}.optionalOldSelf`, 'must be a boolean');
      // validation.go: fieldPath must be a valid path to a field of this node (dotted form checked here).
      const fieldPath = text('fieldPath');
      if (fieldPath.trim() !== '' && !resolves(n, fieldPath))
        add(`${at}.fieldPath`, 'must be a valid field path');
    }
  }

  /** x-kubernetes-list-type / list-map-keys / map-type values and placement (validation.go). */
  function listAndMapTypes(n: Node, path: string): void {
    const [lt, keys, mt] = ['list-type', 'list-map-keys', 'map-type'].map((k) => n[`x-kubernetes-${k}`]);
    const x = `${path}.x-kubernetes-`;
    if (lt !== undefined && !['atomic', 'set', 'map'].includes(String(lt)))
      add(`${x}list-type`, 'must be atomic, set or map');
    if (lt !== undefined && n.type !== 'array')
      add(`${path}.type`, 'must be array if x-kubernetes-list-type is set');
    const noKeys = !Array.isArray(keys) || keys.length === 0;
    if (lt === 'map' && noKeys)
      add(`${x}list-map-keys`, 'must not be empty if x-kubernetes-list-type is map');
    if (lt === 'map' && map(n.items).type !== 'object')
      add(`${path}.items.type`, 'must be object for a list map');
    if (lt !== 'map' && keys !== undefined)
      add(`${x}list-map-keys`, 'must be empty unless x-kubernetes-list-type is map');
    if (mt !== undefined && !['atomic', 'granular'].includes(String(mt)))
      add(`${x}map-type`, 'must be atomic or granular');
    if (mt !== undefined && n.type !== 'object')
      add(`${path}.type`, 'must be object if x-kubernetes-map-type is set');
  }

  /** schema/validation.go: apiVersion/kind are strings; metadata only restricts name/generateName. */
  function rootMeta(props: Node, path: string) {
    for (const k of ['apiVersion', 'kind']) {
      if (isNode(props[k]) && props[k].type !== 'string')
        add(`${path}.properties.${k}.type`, 'must be string');
    }
    if (!isNode(props.metadata)) return;
    const meta = props.metadata;
    if (meta.type !== 'object') add(`${path}.properties.metadata.type`, 'must be object');
    // A default here is reported on its own (validation.go: "must not be set in top-level metadata").
    const extra = Object.keys(meta).filter((k) => !['type', 'properties', 'default'].includes(k));
    extra.push(...Object.keys(map(meta.properties)).filter((k) => k !== 'name' && k !== 'generateName'));
    if (extra.length > 0)
      add(`${path}.properties.metadata`, 'must not specify anything but name and generateName');
  }

  /** A node of the structural part: the root, a property, items or additionalProperties. */
  function walk(n: unknown, path: string, level: Level, inMeta: boolean) {
    if (!isNode(n)) return add(path, 'must be a schema object');
    keywords(n, path);
    const intOrString = n['x-kubernetes-int-or-string'] === true;
    const preserve = n[PUF];
    const typed = typeof n.type === 'string' && n.type !== '';
    // schema/validation.go validateStructuralInvariants: a type unless int-or-string or preserve-unknown.
    if (!typed && !intOrString && preserve !== true)
      add(`${path}.type`, `must not be empty ${EMPTY_TYPE[level]}`);
    // validation.go: "x-kubernetes-preserve-unknown-fields must be true or undefined".
    if (preserve !== undefined && preserve !== true) add(`${path}.${PUF}`, 'must be true or undefined');
    // validation.go: type must be empty if x-kubernetes-int-or-string is true (the anyOf carries the types).
    if (intOrString && typed) add(`${path}.type`, 'must be empty if x-kubernetes-int-or-string is true');
    // schema/validation.go validateExtensions: int-or-string excludes preserve-unknown-fields.
    if (intOrString && preserve === true)
      add(`${path}.${PUF}`, 'must be false if x-kubernetes-int-or-string');
    if (level === 'root') {
      // schema/validation.go + validation.go: the root is a non-nullable object without additionalProperties.
      if (typed && n.type !== 'object') add(`${path}.type`, 'must be object at the root');
      if (n.nullable === true) add(`${path}.nullable`, 'cannot be true at the root');
      if (has(n, 'additionalProperties')) add(`${path}.additionalProperties`, 'must not be used at the root');
    }
    if (has(n, 'properties') && !isNode(n.properties)) add(`${path}.properties`, 'must be a map of schemas');
    const props = map(n.properties);
    for (const [k, v] of Object.entries(props)) {
      const meta = inMeta || (level === 'root' && ['apiVersion', 'kind', 'metadata'].includes(k));
      walk(v, `${path}.properties.${k}`, 'field', meta);
    }
    if (level === 'root') rootMeta(props, path);
    const ap = n.additionalProperties;
    // CRD docs (Validation: "additionalProperties cannot be set to false") and validation.go.
    if (ap === false) add(`${path}.additionalProperties`, 'cannot be set to false');
    else if (has(n, 'additionalProperties') && ap !== true)
      walk(ap, `${path}.additionalProperties`, 'field', inMeta);
    // validation.go: "additionalProperties and properties are mutual exclusive".
    const exclusive = Object.keys(props).length > 0 && (ap === false || isNode(ap));
    if (exclusive)
      add(`${path}.additionalProperties`, 'additionalProperties and properties are mutual exclusive');
    // schema/validation.go: an array node's items "must be specified".
    if (n.type === 'array' && !has(n, 'items')) add(`${path}.items`, 'must be specified');
    if (isNode(n.items)) walk(n.items, `${path}.items`, 'item', inMeta);
    junctors(n, path, false, true);
    complete({ allOf: n.allOf, anyOf: n.anyOf, oneOf: n.oneOf, not: n.not }, n, path, path);
    // validation.go: withForbiddenDefaults("in top-level metadata"); else a default must prune and validate.
    const problem = inMeta ? 'must not be set in top-level metadata' : defaultProblem(n.default, n);
    if (has(n, 'default') && problem) add(`${path}.default`, problem);
    // kube-openapi validates enum values against the node's type.
    if (has(n, 'enum') && !Array.isArray(n.enum)) add(`${path}.enum`, 'must be a list');
    const list = Array.isArray(n.enum) ? n.enum : [];
    for (const [i, v] of list.entries())
      if (!typeOk(v, n)) add(`${path}.enum[${i}]`, `must be a ${String(n.type)}`);
    if (has(n, 'x-kubernetes-validations')) rules(n, path);
    listAndMapTypes(n, path);
  }

  walk(schema, rootPath, 'root', false);
  return errors;
}
