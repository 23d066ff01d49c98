/**
 * The two patch formats the test server applies: JSON merge patch (RFC 7386)
 * and JSON patch (RFC 6902). Both return a new document and never mutate
 * their input; a JSON patch that cannot be applied throws an Error.
 */
import { isDeepStrictEqual } from 'node:util';

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** RFC 7386: objects merge recursively, `null` removes, anything else replaces. */
export function applyMergePatch(target: unknown, patch: unknown): unknown {
  if (!isRecord(patch)) return structuredClone(patch);
  const result: Record<string, unknown> = isRecord(target) ? structuredClone(target) : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = applyMergePatch(result[key], value);
  }
  return result;
}

function unescapeToken(token: string): string {
  return token.replaceAll('~1', '/').replaceAll('~0', '~');
}

function parsePointer(pointer: string): string[] {
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) throw new Error(`invalid JSON pointer: ${pointer}`);
  return pointer.slice(1).split('/').map(unescapeToken);
}

function arrayIndex(array: unknown[], token: string, forAdd: boolean): number {
  if (forAdd && token === '-') return array.length;
  if (!/^(0|[1-9][0-9]*)$/.test(token)) throw new Error(`invalid array index: ${token}`);
  const index = Number(token);
  if (index > array.length || (!forAdd && index === array.length))
    throw new Error('array index out of bounds');
  return index;
}

function parentOf(doc: unknown, tokens: string[]): unknown {
  let node = doc;
  for (const token of tokens.slice(0, -1)) {
    if (Array.isArray(node)) node = node[arrayIndex(node, token, false)];
    else if (isRecord(node) && Object.hasOwn(node, token)) node = node[token];
    else throw new Error(`missing path: ${tokens.join('/')}`);
  }
  return node;
}

function get(doc: unknown, pointer: string): unknown {
  const tokens = parsePointer(pointer);
  if (tokens.length === 0) return doc;
  const parent = parentOf(doc, tokens);
  const last = tokens[tokens.length - 1] ?? '';
  if (Array.isArray(parent)) return parent[arrayIndex(parent, last, false)];
  if (isRecord(parent) && Object.hasOwn(parent, last)) return parent[last];
  throw new Error(`missing value: ${pointer}`);
}

function remove(doc: unknown, pointer: string): unknown {
  const tokens = parsePointer(pointer);
  if (tokens.length === 0) return undefined;
  const parent = parentOf(doc, tokens);
  const last = tokens[tokens.length - 1] ?? '';
  if (Array.isArray(parent)) parent.splice(arrayIndex(parent, last, false), 1);
  else if (isRecord(parent) && Object.hasOwn(parent, last)) delete parent[last];
  else throw new Error(`missing value: ${pointer}`);
  return doc;
}

function add(doc: unknown, pointer: string, value: unknown, replace: boolean): unknown {
  const tokens = parsePointer(pointer);
  if (tokens.length === 0) return structuredClone(value);
  const parent = parentOf(doc, tokens);
  const last = tokens[tokens.length - 1] ?? '';
  if (Array.isArray(parent)) {
    const index = arrayIndex(parent, last, !replace);
    parent.splice(index, replace ? 1 : 0, structuredClone(value));
  } else if (isRecord(parent)) {
    if (replace && !Object.hasOwn(parent, last)) throw new Error(`missing value: ${pointer}`);
    parent[last] = structuredClone(value);
  } else {
    throw new Error(`missing path: ${pointer}`);
  }
  return doc;
}

/** RFC 6902 over a copy of `target`. */
export function applyJsonPatch(target: unknown, operations: unknown): unknown {
  if (!Array.isArray(operations)) throw new Error('a JSON patch must be an array of operations');
  let doc = structuredClone(target);
  for (const op of operations) {
    if (!isRecord(op) || typeof op.op !== 'string' || typeof op.path !== 'string') {
      throw new Error('invalid JSON patch operation');
    }
    const from = typeof op.from === 'string' ? op.from : undefined;
    switch (op.op) {
      case 'add':
        doc = add(doc, op.path, op.value, false);
        break;
      case 'replace':
        doc = add(doc, op.path, op.value, true);
        break;
      case 'remove':
        doc = remove(doc, op.path);
        break;
      case 'move': {
        if (from === undefined) throw new Error('move without from');
        const value = get(doc, from);
        doc = add(remove(doc, from), op.path, value, false);
        break;
      }
      case 'copy':
        if (from === undefined) throw new Error('copy without from');
        doc = add(doc, op.path, get(doc, from), false);
        break;
      case 'test':
        if (!isDeepStrictEqual(get(doc, op.path), op.value)) throw new Error(`test failed: ${op.path}`);
        break;
      default:
        throw new Error(`unknown JSON patch operation: ${op.op}`);
    }
  }
  return doc;
}
