/**
 * The per-request route matcher: built once per policy into a segment trie, then run on every request
 * to pick the most specific route that declares the request's method.
 *
 * Specificity compares templates segment by segment, literal > `{param}` > `**`, and a template that
 * ends exactly where the path ends beats a `/**` that matches the empty remainder. A depth-first walk
 * that tries a node's literal child, then its param child, then its rest routes visits the matching
 * templates in exactly that order, so the first match that declares the method is the winner.
 *
 * Cost is bounded: each trie node is reached through one fixed sequence of edges, so a request visits
 * every node at most once and never more than one node per template segment in the policy; each
 * request segment is percent-decoded at most once.
 */

import type { PathTemplate } from './template.ts';

/** A route as the matcher sees it. */
export interface MatchableRoute<R> {
  template: PathTemplate;
  methods: readonly string[];
  /** opaque route payload returned on match */
  value: R;
}

/** Outcome of {@link RouteMatcher.match}. */
export type MatchResult<R> =
  | { kind: 'matched'; value: R; params: Record<string, string> }
  /** sorted, unique, methods of every route whose template matches the path (for the `Allow` header) */
  | { kind: 'method-not-allowed'; allow: string[] }
  | { kind: 'unmatched' };

type Matched<R> = Extract<MatchResult<R>, { kind: 'matched' }>;

interface Entry<R> {
  value: R;
  methods: ReadonlySet<string>;
  /** Names of the template's params, in path order; bound positionally to the walk's decoded values. */
  paramNames: readonly string[];
}

interface TrieNode<R> {
  literals: Map<string, TrieNode<R>>;
  param: TrieNode<R> | undefined;
  /** Routes whose template ends exactly at this node. */
  entries: Entry<R>[];
  /** Routes whose template ends with `/**` after this node. */
  rest: Entry<R>[];
}

/** Per-request walk state. */
interface Search {
  method: string;
  segments: readonly string[];
  /** Decoded segment values by index: undefined = not yet decoded, null = does not bind a param. */
  decoded: (string | null | undefined)[];
  /** Decoded values of the params bound on the current trie path. */
  bound: string[];
  pathMatched: boolean;
  allow: Set<string>;
}

/** Matches normalized request paths against a fixed route table. */
export class RouteMatcher<R> {
  readonly #root: TrieNode<R> = newNode();

  /**
   * Builds the trie. Input order only breaks ties between routes of identical shape and overlapping
   * methods (rejected at compile time elsewhere): the first such route wins.
   */
  constructor(routes: readonly MatchableRoute<R>[]) {
    for (const route of routes) insert(this.#root, route);
  }

  /**
   * Matches a request. `segments` is the normalized path split on '/' without the leading empty
   * segment ('/' → [''], '/a/' → ['a', '']). Methods are compared case-sensitively.
   */
  match(method: string, segments: readonly string[]): MatchResult<R> {
    const search: Search = { method, segments, decoded: [], bound: [], pathMatched: false, allow: new Set() };
    const hit = walk(this.#root, 0, search);
    if (hit) return hit;
    if (search.pathMatched) return { kind: 'method-not-allowed', allow: [...search.allow].sort() };
    return { kind: 'unmatched' };
  }
}

/** True when the two method lists share at least one method. */
export function methodsOverlap(a: readonly string[], b: readonly string[]): boolean {
  return a.some((m) => b.includes(m));
}

function newNode<R>(): TrieNode<R> {
  return { literals: new Map(), param: undefined, entries: [], rest: [] };
}

function insert<R>(root: TrieNode<R>, route: MatchableRoute<R>): void {
  const paramNames: string[] = [];
  for (const s of route.template.segments) if (s.kind === 'param') paramNames.push(s.name);
  const entry: Entry<R> = { value: route.value, methods: new Set(route.methods), paramNames };
  let node = root;
  for (const segment of route.template.segments) {
    if (segment.kind === 'rest') {
      // The parser only allows `**` last, so the template ends here.
      node.rest.push(entry);
      return;
    }
    if (segment.kind === 'param') {
      node.param ??= newNode();
      node = node.param;
      continue;
    }
    let next = node.literals.get(segment.value);
    if (next === undefined) {
      next = newNode();
      node.literals.set(segment.value, next);
    }
    node = next;
  }
  node.entries.push(entry);
}

/** Depth-first walk in specificity order; returns the first route that declares the method. */
function walk<R>(node: TrieNode<R>, i: number, search: Search): Matched<R> | undefined {
  const segment = search.segments[i];
  if (segment === undefined) return visit(node.entries, search) ?? visit(node.rest, search);
  const literal = node.literals.get(segment);
  if (literal !== undefined) {
    const hit = walk(literal, i + 1, search);
    if (hit) return hit;
  }
  if (node.param !== undefined) {
    const value = decodeSegment(search, i, segment);
    if (value !== null) {
      search.bound.push(value);
      const hit = walk(node.param, i + 1, search);
      search.bound.pop();
      if (hit) return hit;
    }
  }
  return visit(node.rest, search);
}

/** Checks routes whose template matches the path; records their methods for a 405 if none fits. */
function visit<R>(entries: readonly Entry<R>[], search: Search): Matched<R> | undefined {
  for (const entry of entries) {
    if (entry.methods.has(search.method)) {
      return { kind: 'matched', value: entry.value, params: bindParams(entry.paramNames, search.bound) };
    }
  }
  for (const entry of entries) {
    search.pathMatched = true;
    for (const m of entry.methods) search.allow.add(m);
  }
  return undefined;
}

function bindParams(names: readonly string[], values: readonly string[]): Record<string, string> {
  // Null prototype: a param named `__proto__` or `constructor` is just a key.
  const params: Record<string, string> = Object.create(null);
  names.forEach((name, j) => {
    params[name] = values[j] ?? '';
  });
  return params;
}

/** Fully percent-decodes a segment once per request; empty or undecodable segments bind no param. */
function decodeSegment(search: Search, i: number, segment: string): string | null {
  const cached = search.decoded[i];
  if (cached !== undefined) return cached;
  let value: string | null = null;
  if (segment !== '') {
    try {
      value = decodeURIComponent(segment);
    } catch {
      // Invalid escapes or UTF-8 are rejected upstream; here they simply do not match a param.
      value = null;
    }
  }
  search.decoded[i] = value;
  return value;
}
