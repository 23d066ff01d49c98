/**
 * Checks the JSON Schemas a policy embeds (`request.query`, `request.body`):
 * they must compile under strict Ajv (unknown keywords, bad regexes and
 * unresolvable references are errors) and use the draft 2020-12 subset that
 * Kubernetes structural schemas allow.
 */
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import safeRegex from 'safe-regex2';
import { K8S_KEYWORDS } from './schema-validator.ts';

// ajv-formats is CommonJS; its default export is the plugin function.
const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;

/**
 * The validator for schemas users embed: JSON Schema draft 2020-12 (the
 * contract's dialect), strict, no type coercion, formats from ajv-formats.
 */
export function createSchemaAjv(options: { allErrors?: boolean } = {}): Ajv2020 {
  const ajv = new Ajv2020({
    strict: true,
    strictTypes: false,
    allErrors: options.allErrors ?? true,
    coerceTypes: false,
    useDefaults: false,
  });
  addFormats(ajv);
  for (const keyword of K8S_KEYWORDS) ajv.addKeyword({ keyword });
  return ajv;
}

/** Keywords outside the Kubernetes structural subset (no references, no dynamic schemas). */
const UNSUPPORTED = ['$ref', '$dynamicRef', '$defs', 'definitions', 'dependentSchemas', 'if', 'then', 'else'];

function findUnsupported(node: unknown, path: string, out: string[]): void {
  if (Array.isArray(node)) {
    node.forEach((n, i) => {
      findUnsupported(n, `${path}/${i}`, out);
    });
    return;
  }
  if (!node || typeof node !== 'object') return;
  for (const [key, value] of Object.entries(node)) {
    if (UNSUPPORTED.includes(key))
      out.push(`JSON Schema keyword "${key}" at ${path || '/'} is not supported`);
    // `properties` and friends hold user names as keys: look only at their values.
    if (key === 'properties' || key === 'patternProperties') {
      // A non-object here is left to Ajv's meta-schema check, which reports it.
      if (!value || typeof value !== 'object') continue;
      for (const [name, sub] of Object.entries(value)) findUnsupported(sub, `${path}/${key}/${name}`, out);
    } else if (key !== 'enum' && key !== 'const' && key !== 'default' && key !== 'examples') {
      findUnsupported(value, `${path}/${key}`, out);
    }
  }
}

let ajv: Ajv2020 | undefined;

/**
 * Patterns (`pattern` values and `patternProperties` keys) that could take
 * exponential time on a crafted input (nested quantifiers, star height > 1):
 * request bodies are attacker-controlled, so such a schema is refused.
 */
function findCatastrophicPatterns(node: unknown, path: string, out: string[]): void {
  if (Array.isArray(node)) {
    node.forEach((n, i) => {
      findCatastrophicPatterns(n, `${path}/${i}`, out);
    });
    return;
  }
  if (!node || typeof node !== 'object') return;
  for (const [key, value] of Object.entries(node)) {
    if (key === 'pattern' && typeof value === 'string' && isValidRegex(value) && !safeRegex(value)) {
      out.push(`pattern at ${path || '/'} could take exponential time (nested quantifiers); rewrite it`);
    }
    if (key === 'patternProperties' && value && typeof value === 'object') {
      for (const p of Object.keys(value)) {
        if (isValidRegex(p) && !safeRegex(p)) {
          out.push(
            `patternProperties key at ${path || '/'} could take exponential time (nested quantifiers)`,
          );
        }
      }
    }
    if (key === 'properties' || key === 'patternProperties') {
      if (!value || typeof value !== 'object') continue;
      for (const [name, sub] of Object.entries(value))
        findCatastrophicPatterns(sub, `${path}/${key}/${name}`, out);
    } else if (key !== 'enum' && key !== 'const' && key !== 'default' && key !== 'examples') {
      findCatastrophicPatterns(value, `${path}/${key}`, out);
    }
  }
}

/** An invalid pattern is reported by Ajv's compile, with its own message. */
function isValidRegex(p: string): boolean {
  try {
    new RegExp(p, 'u');
    return true;
  } catch {
    return false;
  }
}

/** Returns problems with an embedded JSON Schema; [] when it compiles. */
export function checkJsonSchema(schema: Record<string, unknown>): string[] {
  const out: string[] = [];
  findUnsupported(schema, '', out);
  findCatastrophicPatterns(schema, '', out);
  if (out.length > 0) return out;
  // One meta-schema violation is enough to say what is wrong.
  ajv ??= createSchemaAjv({ allErrors: false });
  try {
    ajv.compile(schema);
  } catch (e) {
    out.push(`invalid JSON Schema: ${(e as Error).message.split('\n')[0]}`);
  } finally {
    ajv.removeSchema(schema);
  }
  return out;
}
