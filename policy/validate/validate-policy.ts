/**
 * The single entry point for checking policy documents: the schema, then the
 * semantic checks (also on schema-invalid documents, guarded, so one pass
 * reports every problem). Used by the CLI, the compiler, the agent and the
 * operator alike.
 */
import type { Diagnostic, FieldPath } from '../diagnostics.ts';
import { parseYamlSource, type SourceDocument } from '../load/yaml-source.ts';
import type { ApiPolicy, ApiPolicySpec } from '../schema/api-policy.ts';
import { validateSchema } from './schema-validator.ts';
import { validateSemantics } from './semantic.ts';

/** Validates one parsed document; diagnostics carry field paths but no file position. */
export function validatePolicy(doc: unknown): { policy: ApiPolicy | null; diagnostics: Diagnostic[] } {
  const schemaDiagnostics = validateSchema(doc);
  const spec = (doc as { spec?: unknown } | null)?.spec;
  if (spec === null || typeof spec !== 'object' || Array.isArray(spec))
    return { policy: null, diagnostics: schemaDiagnostics };
  // Semantics run even when the schema failed, so one pass reports every problem;
  // findings inside a field the schema already rejected would only repeat it.
  const rejected = schemaDiagnostics.map((d) => d.path);
  const semantic = validateSemantics(spec as ApiPolicySpec).filter(
    (d) =>
      !rejected.some((p) => isPrefix(p, d.path)) &&
      // A part that could not be checked only matters when the schema found nothing.
      !(rejected.length > 0 && d.message.startsWith('could not be validated')),
  );
  const diagnostics = [...schemaDiagnostics, ...semantic];
  const valid = !diagnostics.some((d) => d.severity === 'error');
  return { policy: valid ? (doc as ApiPolicy) : null, diagnostics };
}

function isPrefix(prefix: FieldPath, path: FieldPath): boolean {
  return prefix.length <= path.length && prefix.every((seg, i) => seg === path[i]);
}

export interface LoadedPolicy {
  policy: ApiPolicy;
  file?: string;
  document: number;
}

export interface LoadResult {
  /** Valid policies (documents with errors are left out). */
  policies: LoadedPolicy[];
  /** Every problem, positioned in its file. */
  diagnostics: Diagnostic[];
}

function place(d: Diagnostic, doc: SourceDocument, file: string | undefined): Diagnostic {
  const pos = doc.locate(d.path);
  return { ...d, ...(file === undefined ? {} : { file }), line: pos.line, col: pos.col };
}

/**
 * Parses and validates YAML text holding ApiPolicy documents. Empty documents
 * are skipped; a document of another kind is an error (a policy file holds policies).
 */
export function loadPolicyText(text: string, file?: string): LoadResult {
  const parsed = parseYamlSource(text, file);
  const out: LoadResult = { policies: [], diagnostics: [...parsed.diagnostics] };
  for (const doc of parsed.documents) {
    if (doc.value === null || doc.value === undefined) continue;
    const { policy, diagnostics } = validatePolicy(doc.value);
    out.diagnostics.push(...diagnostics.map((d) => place(d, doc, file)));
    if (policy) out.policies.push({ policy, ...(file === undefined ? {} : { file }), document: doc.index });
  }
  return out;
}
