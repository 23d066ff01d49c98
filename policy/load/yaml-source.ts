/**
 * Parses policy YAML text (one or more documents) keeping positions, so every
 * diagnostic can point at `file:line:col`. Pure: the caller reads the file.
 */
import {
  isMap,
  isPair,
  isScalar,
  isSeq,
  LineCounter,
  type Node,
  parseAllDocuments,
  type YAMLMap,
} from 'yaml';
import type { Diagnostic, FieldPath } from '../diagnostics.ts';

export interface SourceDocument {
  /** The plain JS value of the document. */
  value: unknown;
  /** 0-based index of the document in the file. */
  index: number;
  /** Position (1-based) of the field at `path`; the nearest existing ancestor when the field is absent. */
  locate(path: FieldPath): { line: number; col: number };
}

export interface ParsedSource {
  documents: SourceDocument[];
  diagnostics: Diagnostic[];
}

const MAX_ALIAS_COUNT = 100;

/** Parses YAML text; syntax errors become diagnostics (with positions) instead of throws. */
export function parseYamlSource(text: string, file?: string): ParsedSource {
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const diagnostics: Diagnostic[] = [];
  const documents: SourceDocument[] = [];
  const list = Array.isArray(docs) ? docs : [];
  list.forEach((doc, index) => {
    for (const e of doc.errors) {
      const pos = lineCounter.linePos(e.pos[0]);
      diagnostics.push({
        severity: 'error',
        path: [],
        message: `YAML: ${e.message.split('\n')[0]}`,
        ...(file === undefined ? {} : { file }),
        line: pos.line,
        col: pos.col,
      });
    }
    if (doc.errors.length > 0 || doc.contents === null) return;
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
    } catch (e) {
      diagnostics.push({
        severity: 'error',
        path: [],
        message: `YAML: ${(e as Error).message}`,
        ...(file === undefined ? {} : { file }),
        line: 1,
        col: 1,
      });
      return;
    }
    const root = doc.contents as Node;
    documents.push({
      value,
      index,
      locate: (path) => {
        const offset = offsetOf(root, path);
        const pos = lineCounter.linePos(offset);
        return { line: pos.line, col: pos.col };
      },
    });
  });
  return { documents, diagnostics };
}

/** Offset of the key (for map entries) or node at `path`, or of the deepest ancestor found. */
function offsetOf(root: Node, path: FieldPath): number {
  let node: unknown = root;
  let offset = root.range?.[0] ?? 0;
  for (const seg of path) {
    if (isMap(node) && typeof seg === 'string') {
      const pair = (node as YAMLMap).items.find((p) => isPair(p) && isScalar(p.key) && p.key.value === seg);
      if (!pair) break;
      const key = pair.key as Node;
      offset = key.range?.[0] ?? offset;
      node = pair.value;
    } else if (isSeq(node) && typeof seg === 'number') {
      const item = node.items[seg] as Node | undefined;
      if (!item) break;
      offset = item.range?.[0] ?? offset;
      node = item;
    } else {
      break;
    }
  }
  return offset;
}
