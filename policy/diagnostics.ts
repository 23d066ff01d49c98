/**
 * Diagnostics: what validation, compilation and the CLI report about a policy.
 * A diagnostic names the field by path (`spec.routes[1].when`) and, for YAML
 * sources, the file position of that field.
 */

/** A path into a document: property names and array indexes. */
export type FieldPath = readonly (string | number)[];

export interface Diagnostic {
  severity: 'error' | 'warning';
  /** Field the problem is at, e.g. ['spec', 'routes', 1, 'when']. */
  path: FieldPath;
  message: string;
  /** Source file, when the policy came from one. */
  file?: string;
  /** 1-based position of the field in the source, when known. */
  line?: number;
  col?: number;
}

/** Renders a field path as `spec.routes[1].when` (keys that are not identifiers are quoted). */
export function formatPath(path: FieldPath): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(seg)) out += out === '' ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out === '' ? '(root)' : out;
}

/** Renders one diagnostic as `file:line:col: spec.path: message` (the CLI's line format). */
export function formatDiagnostic(d: Diagnostic): string {
  const where = d.file === undefined ? '' : `${d.file}:${d.line ?? 1}:${d.col ?? 1}: `;
  const prefix = d.severity === 'warning' ? 'warning: ' : '';
  return `${where}${formatPath(d.path)}: ${prefix}${d.message}`;
}

export function error(path: FieldPath, message: string): Diagnostic {
  return { severity: 'error', path, message };
}

export function warning(path: FieldPath, message: string): Diagnostic {
  return { severity: 'warning', path, message };
}

export function hasErrors(diagnostics: readonly Diagnostic[]): boolean {
  return diagnostics.some((d) => d.severity === 'error');
}
