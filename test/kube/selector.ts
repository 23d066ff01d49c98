/**
 * Label selectors in the API server's query syntax: `k=v`, `k==v`, `k!=v`,
 * `k in (a,b)`, `k notin (a,b)`, `k` (exists) and `!k` (does not exist),
 * comma-separated and all required.
 */

/** One parsed requirement. */
export interface Requirement {
  key: string;
  op: 'eq' | 'neq' | 'in' | 'notin' | 'exists' | 'notexists';
  values: string[];
}

const KEY = '[A-Za-z0-9](?:[-A-Za-z0-9_./]*[A-Za-z0-9])?';
const VALUE = '(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?)?';
const SET_RE = new RegExp(`^(${KEY})\\s+(in|notin)\\s*\\(([^)]*)\\)$`);
const EQ_RE = new RegExp(`^(${KEY})\\s*(==|=|!=)\\s*(${VALUE})$`);
const EXISTS_RE = new RegExp(`^(!?)\\s*(${KEY})$`);
const VALUE_RE = new RegExp(`^${VALUE}$`);

function splitTerms(selector: string): string[] {
  const terms: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of selector) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      terms.push(current);
      current = '';
    } else {
      current += ch;
    }
  }
  terms.push(current);
  return terms.map((t) => t.trim());
}

/** Parses `selector`; throws an Error with the server's wording when it is malformed. */
export function parseSelector(selector: string): Requirement[] {
  if (selector.trim() === '') return [];
  return splitTerms(selector).map((term) => {
    const set = SET_RE.exec(term);
    if (set) {
      const values = (set[3] ?? '').split(',').map((v) => v.trim());
      if (values.some((v) => !VALUE_RE.test(v))) throw new Error(`unable to parse requirement: ${term}`);
      return { key: set[1] ?? '', op: set[2] === 'in' ? 'in' : 'notin', values };
    }
    const eq = EQ_RE.exec(term);
    if (eq) return { key: eq[1] ?? '', op: eq[2] === '!=' ? 'neq' : 'eq', values: [eq[3] ?? ''] };
    const exists = EXISTS_RE.exec(term);
    if (exists) return { key: exists[2] ?? '', op: exists[1] === '!' ? 'notexists' : 'exists', values: [] };
    throw new Error(`unable to parse requirement: found '${term}', expected: valid label selector`);
  });
}

/** Whether `labels` satisfy every requirement. */
export function matches(requirements: Requirement[], labels: Record<string, string>): boolean {
  return requirements.every(({ key, op, values }) => {
    const has = Object.hasOwn(labels, key);
    const value = labels[key];
    switch (op) {
      case 'eq':
      case 'in':
        return has && value !== undefined && values.includes(value);
      case 'neq':
      case 'notin':
        return !has || value === undefined || !values.includes(value);
      case 'exists':
        return has;
      case 'notexists':
        return !has;
    }
    return false;
  });
}
