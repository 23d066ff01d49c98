/**
 * Sections of bench/RESULTS.md owned by other benchmarks than bench/run.ts
 * (e.g. `npm run bench:operator`): kept between HTML comment markers, so each
 * benchmark rewrites only its own part and keeps the others'.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

const start = (name: string) => `<!-- section:${name} -->`;
const end = (name: string) => `<!-- /section:${name} -->`;

/** The sections found in `text`, with their markers, in order. */
export function sections(text: string): string[] {
  return [...text.matchAll(/<!-- section:([a-z-]+) -->[\s\S]*?<!-- \/section:\1 -->/g)].map((m) => m[0]);
}

/** `text` with section `name` replaced by `body` (appended when absent). */
export function withSection(text: string, name: string, body: string): string {
  const block = `${start(name)}\n${body.trim()}\n${end(name)}`;
  const re = new RegExp(`${start(name)}[\\s\\S]*?${end(name).replace('/', '\\/')}`);
  return re.test(text) ? text.replace(re, block) : `${text.trimEnd()}\n\n${block}\n`;
}

/** Writes `file`'s section `name`, keeping the rest of the file. */
export function writeSection(file: string, name: string, body: string): void {
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '# Tollgate bench results\n';
  writeFileSync(file, withSection(text, name, body));
}

/** The other benchmarks' sections of `file`, to append to a rewritten file. */
export function keptSections(file: string): string {
  if (!existsSync(file)) return '';
  const found = sections(readFileSync(file, 'utf8'));
  return found.length === 0 ? '' : `\n${found.join('\n\n')}\n`;
}

/**
 * `text` with the `## ` section whose heading starts with `heading` replaced
 * by `body` (up to the next `## ` heading or section marker); null when there
 * is no such section. bench/run.ts --write-telemetry rewrites only its case.
 */
export function withHeadingSection(text: string, heading: string, body: string): string | null {
  const start = text.indexOf(`\n${heading}`);
  if (start < 0) return null;
  const rest = text.slice(start + 1);
  const next = rest.search(/\n(## |<!-- section:)/);
  const end = next < 0 ? text.length : start + 1 + next + 1;
  return `${text.slice(0, start + 1)}${body.trimEnd()}\n\n${text.slice(end)}`;
}
