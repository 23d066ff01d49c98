/**
 * The API inventory: what the agent has seen since it started, per declared
 * route (hits, last seen, status classes, and for deprecated routes who still
 * calls them) and for undeclared traffic (requests that matched no route,
 * collapsed into path templates by templates.ts). Served as JSON on the admin
 * port (`GET /inventory`) and read by `tollgate inventory`.
 *
 * Bounded: at most `maxTemplates` undeclared (method, template) entries — a
 * request of a new template beyond that is counted in `overflow` only — and
 * templates longer than `maxTemplateLength` characters are counted the same
 * way; at most `maxCallers` callers per deprecated route, the least recently
 * seen evicted first (counted in `callersEvicted`). Declared routes are bounded
 * by the policy. Callers are identified by their client key only (the mTLS
 * peer id, else the client IP) — never token claims, which would put personal
 * data in an unauthenticated admin endpoint.
 *
 * Pure: no I/O; the clock is injected.
 */
import { collapsePath } from './templates.ts';

export type StatusClass = '1xx' | '2xx' | '3xx' | '4xx' | '5xx' | 'aborted';

/** Status class of a response status; 0 (no response was sent) is `aborted`. */
export function statusClass(status: number): StatusClass {
  if (status >= 100 && status < 200) return '1xx';
  if (status >= 200 && status < 300) return '2xx';
  if (status >= 300 && status < 400) return '3xx';
  if (status >= 400 && status < 500) return '4xx';
  if (status >= 500 && status < 600) return '5xx';
  return 'aborted';
}

export interface InventoryOptions {
  now: () => number;
  /** Undeclared (method, template) entries kept (default 1000). */
  maxTemplates?: number;
  /** Callers kept per deprecated route (default 100). */
  maxCallers?: number;
  /** Longest template kept, in characters (default 512). */
  maxTemplateLength?: number;
}

export type StatusCounts = Partial<Record<StatusClass, number>>;

export interface CallerView {
  key: string;
  count: number;
  lastSeen: string;
}

export interface RouteView {
  name: string;
  hits: number;
  lastSeen: string;
  statuses: StatusCounts;
  deprecated: boolean;
  /** Deprecated routes only: the callers, most recently seen first. */
  callers?: CallerView[];
  /** Callers dropped from the bounded list (least recently seen first). */
  callersEvicted?: number;
}

export interface TemplateView {
  method: string;
  template: string;
  count: number;
  statuses: StatusCounts;
  firstSeen: string;
  lastSeen: string;
}

/** The JSON of `GET /inventory`. */
export interface InventorySnapshot {
  since: string;
  now: string;
  totals: {
    /** Requests that matched a declared route. */
    declared: number;
    /** Requests that matched no route (forwarded under `unmatched: Allow` or refused with 404). */
    undeclared: number;
    /** Undeclared requests not kept in a template (the table was full, or the template too long). */
    overflow: number;
  };
  limits: { templates: number; callersPerRoute: number; templateLength: number };
  routes: RouteView[];
  undeclared: TemplateView[];
}

interface RouteEntry {
  hits: number;
  lastSeen: number;
  statuses: StatusCounts;
  deprecated: boolean;
  callers: Map<string, { count: number; lastSeen: number }>;
  callersEvicted: number;
}

interface TemplateEntry {
  method: string;
  template: string;
  count: number;
  statuses: StatusCounts;
  firstSeen: number;
  lastSeen: number;
}

export class Inventory {
  readonly #now: () => number;
  readonly #maxTemplates: number;
  readonly #maxCallers: number;
  readonly #maxTemplateLength: number;
  readonly #since: number;
  readonly #routes = new Map<string, RouteEntry>();
  readonly #templates = new Map<string, TemplateEntry>();
  #declared = 0;
  #undeclared = 0;
  #overflow = 0;

  constructor(options: InventoryOptions) {
    this.#now = options.now;
    this.#maxTemplates = options.maxTemplates ?? 1000;
    this.#maxCallers = options.maxCallers ?? 100;
    this.#maxTemplateLength = options.maxTemplateLength ?? 512;
    this.#since = this.#now();
  }

  /** A request that matched the declared route `route` and was answered with `statusCode` (0: none). */
  recordRoute(route: string, statusCode: number, callerKey: string | null, deprecated: boolean): void {
    const now = this.#now();
    this.#declared++;
    let entry = this.#routes.get(route);
    if (!entry) {
      entry = { hits: 0, lastSeen: now, statuses: {}, deprecated, callers: new Map(), callersEvicted: 0 };
      this.#routes.set(route, entry);
    }
    entry.hits++;
    entry.lastSeen = now;
    entry.deprecated = deprecated;
    bump(entry.statuses, statusClass(statusCode));
    if (!deprecated || callerKey === null || callerKey === '') return;
    const caller = entry.callers.get(callerKey);
    // Delete and re-insert: Map order is then least recently seen first.
    if (caller) entry.callers.delete(callerKey);
    entry.callers.set(callerKey, { count: (caller?.count ?? 0) + 1, lastSeen: now });
    if (entry.callers.size > this.#maxCallers) {
      const oldest = entry.callers.keys().next();
      if (!oldest.done) entry.callers.delete(oldest.value);
      entry.callersEvicted++;
    }
  }

  /** A request that matched no route; `normalizedPath` without the query. */
  recordUndeclared(method: string, normalizedPath: string, statusCode: number): void {
    const now = this.#now();
    this.#undeclared++;
    const template = collapsePath(normalizedPath);
    if (template.length > this.#maxTemplateLength) {
      this.#overflow++;
      return;
    }
    const key = `${method} ${template}`;
    let entry = this.#templates.get(key);
    if (!entry) {
      if (this.#templates.size >= this.#maxTemplates) {
        this.#overflow++;
        return;
      }
      entry = { method, template, count: 0, statuses: {}, firstSeen: now, lastSeen: now };
      this.#templates.set(key, entry);
    }
    entry.count++;
    entry.lastSeen = now;
    bump(entry.statuses, statusClass(statusCode));
  }

  /** The inventory as served by `GET /inventory`: routes by name, templates by count (highest first). */
  snapshot(): InventorySnapshot {
    const routes: RouteView[] = [...this.#routes.entries()]
      .sort(([a], [b]) => compare(a, b))
      .map(([name, e]) => ({
        name,
        hits: e.hits,
        lastSeen: iso(e.lastSeen),
        statuses: { ...e.statuses },
        deprecated: e.deprecated,
        ...(e.deprecated
          ? {
              callers: [...e.callers.entries()]
                .reverse()
                .map(([key, c]) => ({ key, count: c.count, lastSeen: iso(c.lastSeen) })),
              callersEvicted: e.callersEvicted,
            }
          : {}),
      }));
    const undeclared: TemplateView[] = [...this.#templates.values()]
      .sort((a, b) => b.count - a.count || compare(a.template, b.template) || compare(a.method, b.method))
      .map((e) => ({
        method: e.method,
        template: e.template,
        count: e.count,
        statuses: { ...e.statuses },
        firstSeen: iso(e.firstSeen),
        lastSeen: iso(e.lastSeen),
      }));
    return {
      since: iso(this.#since),
      now: iso(this.#now()),
      totals: { declared: this.#declared, undeclared: this.#undeclared, overflow: this.#overflow },
      limits: {
        templates: this.#maxTemplates,
        callersPerRoute: this.#maxCallers,
        templateLength: this.#maxTemplateLength,
      },
      routes,
      undeclared,
    };
  }
}

function bump(counts: StatusCounts, cls: StatusClass): void {
  counts[cls] = (counts[cls] ?? 0) + 1;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
