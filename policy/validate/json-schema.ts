/**
 * Checks the JSON Schemas a policy embeds (`request.query`, `request.body`):
 * they must compile under strict Ajv (unknown keywords, bad regexes and
 * unresolvable references are errors) and use the draft 2020-12 subset that
 * Kubernetes structural schemas allow.
 */
import { createAjv } from './schema-validator.ts';

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
      for (const [name, sub] of Object.entries(value as object))
        findUnsupported(sub, `${path}/${key}/${name}`, out);
    } else if (key !== 'enum' && key !== 'const' && key !== 'default' && key !== 'examples') {
      findUnsupported(value, `${path}/${key}`, out);
    }
  }
}

let ajv: ReturnType<typeof createAjv> | undefined;

/** Returns problems with an embedded JSON Schema; [] when it compiles. */
export function checkJsonSchema(schema: Record<string, unknown>): string[] {
  const out: string[] = [];
  findUnsupported(schema, '', out);
  if (out.length > 0) return out;
  ajv ??= createAjv();
  try {
    ajv.compile(schema);
  } catch (e) {
    out.push(`invalid JSON Schema: ${(e as Error).message.split('\n')[0]}`);
  } finally {
    ajv.removeSchema(schema);
  }
  return out;
}
