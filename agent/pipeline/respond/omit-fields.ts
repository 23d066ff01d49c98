/**
 * `response.omitFields` compiled into a path trie, once per route of a bundle
 * (cached by the CompiledRoute object, which a new bundle replaces), and
 * applied in place to a parsed JSON response body.
 *
 * Paths are dotted (`supplier.contact`); a `*` segment matches every key of an
 * object. Arrays are transparent at every level: `items.cost` removes `cost`
 * from each element of `items`, and from each element of a top-level array.
 * A `*` also matches each element of an array at its level: `tags.*` empties
 * `tags`, and `items.*.secret` removes `secret` from each element and from
 * every object-valued key of each element (it errs toward removing more).
 *
 * The walk is iterative (no recursion on the document's depth), looks up keys
 * in Maps and with own-property checks only (so `__proto__`, `constructor`
 * and friends are ordinary keys), and never throws on any JSON shape.
 */
import type { CompiledRoute } from '../../../policy/compile/bundle.ts';

interface TrieNode {
  /** The field this node names is removed (its subtree is irrelevant). */
  terminal: boolean;
  readonly children: Map<string, TrieNode>;
  star: TrieNode | null;
}

/** A compiled omitFields list: `omit(value)` removes the fields in place and says whether it removed any. */
export interface OmitFields {
  readonly paths: readonly string[];
  omit(value: unknown): boolean;
}

function node(): TrieNode {
  return { terminal: false, children: new Map(), star: null };
}

/** Compiles dotted paths (empty segments, which validation refuses, are skipped) into a trie. */
export function compileOmitFields(paths: readonly string[]): OmitFields {
  const root = node();
  for (const path of paths) {
    const segments = path.split('.').filter((s) => s !== '');
    if (segments.length === 0) continue;
    let at = root;
    for (const segment of segments) {
      if (segment === '*') {
        at.star ??= node();
        at = at.star;
      } else {
        let next = at.children.get(segment);
        if (!next) {
          next = node();
          at.children.set(segment, next);
        }
        at = next;
      }
    }
    at.terminal = true;
  }
  return { paths: [...paths], omit: (value) => omitIn(value, root) };
}

type Container = Record<string, unknown> | unknown[];

function isContainer(value: unknown): value is Container {
  return typeof value === 'object' && value !== null;
}

/** Adds `n` to `into` unless it is already there (the sets are as small as the trie). */
function add(into: TrieNode[], n: TrieNode | null | undefined): void {
  if (n && !into.includes(n)) into.push(n);
}

function omitIn(value: unknown, root: TrieNode): boolean {
  if (!isContainer(value) || (root.children.size === 0 && root.star === null)) return false;
  let removed = false;
  const work: { value: Container; nodes: TrieNode[] }[] = [{ value, nodes: [root] }];
  for (let item = work.pop(); item; item = work.pop()) {
    const { value: v, nodes } = item;
    if (Array.isArray(v)) {
      // Elements are visited with the same nodes (transparent arrays) and with their `*` children.
      const next: TrieNode[] = [];
      let empty = false;
      for (const n of nodes) {
        add(next, n);
        if (n.star?.terminal) empty = true;
        else add(next, n.star);
      }
      if (empty) {
        removed ||= v.length > 0;
        v.length = 0;
        continue;
      }
      for (const element of v) if (isContainer(element)) work.push({ value: element, nodes: next });
      continue;
    }
    for (const key of Object.keys(v)) {
      const matched: TrieNode[] = [];
      for (const n of nodes) {
        add(matched, n.children.get(key));
        add(matched, n.star);
      }
      if (matched.length === 0) continue;
      if (matched.some((n) => n.terminal)) {
        delete v[key];
        removed = true;
        continue;
      }
      const child = v[key];
      if (isContainer(child)) work.push({ value: child, nodes: matched });
    }
  }
  return removed;
}

const cache = new WeakMap<CompiledRoute, OmitFields | null>();

/** The route's compiled omitFields (null when it has none), compiled once per CompiledRoute. */
export function omitFieldsFor(route: CompiledRoute): OmitFields | null {
  let compiled = cache.get(route);
  if (compiled === undefined) {
    const paths = route.response.omitFields;
    compiled = paths && paths.length > 0 ? compileOmitFields(paths) : null;
    cache.set(route, compiled);
  }
  return compiled;
}
