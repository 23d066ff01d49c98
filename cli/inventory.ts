/**
 * `tollgate inventory`: reads the API inventory a running agent serves on its
 * admin port (`GET /inventory`) and prints it as a table, as JSON, or with
 * `--suggest` as a draft `routes:` block for the undeclared templates — a
 * starting point a human reviews (it has no `allow`, so it is not a policy).
 */
import { Document, isMap, isSeq } from 'yaml';
import type { InventorySnapshot, StatusCounts, TemplateView } from '../agent/inventory/inventory.ts';
import { parseTemplate } from '../policy/route/template.ts';
import { HTTP_METHODS } from '../policy/schema/api-policy.ts';
import { type CliIo, EXIT, parseFlags, UsageError } from './cli-io.ts';

export const INVENTORY_HELP = `Usage: tollgate inventory [--admin HOST:PORT] [--suggest | --json]

Shows what a running agent has seen: declared routes (hits, status classes,
last seen, callers of deprecated routes) and undeclared traffic collapsed into
path templates.

Options:
      --admin HOST:PORT  the agent's admin address (default 127.0.0.1:15020)
      --suggest          print a draft ApiPolicy "routes:" block for the
                         undeclared templates (review it, then add "allow")
      --json             print the inventory as JSON
  -h, --help

Exit status: 0 ok, 1 the admin endpoint cannot be read, 2 bad usage.`;

const DEFAULT_ADMIN = '127.0.0.1:15020';
const TIMEOUT_MS = 5000;

/** `HOST:PORT` (IPv6 as `[::1]:15020`) → the inventory URL. */
export function inventoryUrl(admin: string): string {
  const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(admin);
  const port = Number(m?.[2]);
  if (!m?.[1] || !Number.isInteger(port) || port < 1 || port > 65535)
    throw new UsageError(`--admin must be HOST:PORT, got ${JSON.stringify(admin)}`);
  return `http://${m[1]}:${port}/inventory`;
}

export async function runInventory(
  args: string[],
  io: CliIo,
  fetchImpl: typeof fetch = fetch,
): Promise<number> {
  const { values, positionals } = parseFlags(args, {
    admin: { type: 'string' },
    suggest: { type: 'boolean' },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    io.out(INVENTORY_HELP);
    return EXIT.ok;
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
  if (values.suggest && values.json) throw new UsageError('--suggest and --json cannot be combined');
  const url = inventoryUrl(values.admin ?? DEFAULT_ADMIN);
  let snapshot: InventorySnapshot;
  try {
    const res = await fetchImpl(url, { signal: AbortSignal.timeout(TIMEOUT_MS) });
    if (!res.ok) {
      io.err(`tollgate inventory: ${url} answered ${res.status} (is this an agent's admin port?)`);
      return EXIT.failed;
    }
    const body: unknown = await res.json();
    if (!isSnapshot(body)) {
      io.err(`tollgate inventory: ${url} did not answer with an inventory`);
      return EXIT.failed;
    }
    snapshot = body;
  } catch (e) {
    io.err(`tollgate inventory: cannot reach the agent's admin endpoint at ${url}: ${reason(e)}`);
    return EXIT.failed;
  }
  if (values.json) io.out(JSON.stringify(snapshot, null, 2));
  else if (values.suggest) io.out(suggestRoutes(snapshot));
  else io.out(formatInventory(snapshot));
  return EXIT.ok;
}

function reason(e: unknown): string {
  if (e instanceof Error && e.name === 'TimeoutError') return `no answer within ${TIMEOUT_MS / 1000} s`;
  const cause = e instanceof Error ? (e.cause as { code?: string; message?: string } | undefined) : undefined;
  return cause?.code ?? cause?.message ?? (e instanceof Error ? e.message : String(e));
}

function isSnapshot(v: unknown): v is InventorySnapshot {
  if (v === null || typeof v !== 'object') return false;
  const o = v as Record<string, unknown>;
  return (
    typeof o.since === 'string' &&
    Array.isArray(o.routes) &&
    Array.isArray(o.undeclared) &&
    o.totals !== null &&
    typeof o.totals === 'object'
  );
}

function statuses(counts: StatusCounts): string {
  const parts = Object.entries(counts)
    .filter(([, n]) => (n ?? 0) > 0)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([cls, n]) => `${cls}:${n}`);
  return parts.length > 0 ? parts.join(' ') : '-';
}

/** Left-aligned columns separated by two spaces. */
function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  return [header, ...rows].map((r) =>
    r
      .map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd(),
  );
}

/** The readable form: declared routes, then undeclared templates. */
export function formatInventory(s: InventorySnapshot): string {
  const lines = [`Inventory since ${s.since} (now ${s.now})`, ''];
  lines.push(`Declared routes: ${s.totals.declared} requests`);
  if (s.routes.length === 0) lines.push('  (none seen)');
  else {
    const rows = s.routes.map((r) => [
      r.name + (r.deprecated ? ' (deprecated)' : ''),
      String(r.hits),
      statuses(r.statuses),
      r.lastSeen,
    ]);
    lines.push(...table(['ROUTE', 'HITS', 'STATUS', 'LAST SEEN'], rows).map((l) => `  ${l}`));
    for (const r of s.routes.filter((x) => x.deprecated && (x.callers?.length ?? 0) > 0)) {
      lines.push('', `  Callers of deprecated route ${r.name}:`);
      const rows = (r.callers ?? []).map((c) => [c.key, String(c.count), c.lastSeen]);
      lines.push(...table(['CALLER', 'COUNT', 'LAST SEEN'], rows).map((l) => `    ${l}`));
      if (r.callersEvicted) lines.push(`    (${r.callersEvicted} less recent callers not kept)`);
    }
  }
  lines.push('', `Undeclared traffic: ${s.totals.undeclared} requests matched no route`);
  if (s.undeclared.length === 0) lines.push('  (none seen)');
  else {
    const rows = s.undeclared.map((t) => [
      t.method,
      t.template,
      String(t.count),
      statuses(t.statuses),
      t.firstSeen,
      t.lastSeen,
    ]);
    lines.push(
      ...table(['METHOD', 'TEMPLATE', 'COUNT', 'STATUS', 'FIRST SEEN', 'LAST SEEN'], rows).map(
        (l) => `  ${l}`,
      ),
    );
  }
  if (s.totals.overflow > 0)
    lines.push(`  (${s.totals.overflow} requests not kept: more than ${s.limits.templates} templates)`);
  return lines.join('\n');
}

const KNOWN_METHODS: ReadonlySet<string> = new Set(HTTP_METHODS);

/** A DNS label (≤ 63 characters) from methods and a template: `get-v1-orders-order-id`. */
function routeName(methods: readonly string[], template: string): string {
  const words = template
    .split('/')
    .filter((s) => s !== '')
    .map((s) => s.replace(/^\{(.*)\}$/, '$1').replace(/([a-z0-9])([A-Z])/g, '$1-$2'));
  const text = [...methods, ...(words.length > 0 ? words : ['root'])].join('-').toLowerCase();
  const name = text
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 63)
    .replace(/-+$/, '');
  return name === '' ? 'route' : name;
}

function uniqueName(base: string, used: Set<string>): string {
  let name = base;
  for (let i = 2; used.has(name); i++) {
    const suffix = `-${i}`;
    name = `${base.slice(0, 63 - suffix.length).replace(/-+$/, '')}${suffix}`;
  }
  used.add(name);
  return name;
}

/**
 * The draft `routes:` block for the undeclared templates: one route per
 * template (the methods seen on it merged), named from methods and path, each
 * with a comment saying what was seen. Templates that are not valid policy
 * paths and methods a policy cannot declare are listed in comments instead.
 */
export function suggestRoutes(s: InventorySnapshot): string {
  const byTemplate = new Map<string, TemplateView[]>();
  for (const t of s.undeclared) {
    const list = byTemplate.get(t.template) ?? [];
    list.push(t);
    byTemplate.set(t.template, list);
  }
  const header = [
    `# Draft routes for the undeclared traffic seen by the agent since ${s.since}.`,
    '# This is NOT a policy: review each route, add an `allow` (or `public: true`),',
    '# rename it if you like, and merge it into the ApiPolicy spec.routes.',
  ];
  const skipped: string[] = [];
  const used = new Set<string>();
  const routes: { comment: string; route: { name: string; methods: string[]; path: string } }[] = [];
  const templates = [...byTemplate.keys()].sort();
  for (const template of templates) {
    const seen = byTemplate.get(template) ?? [];
    const parsed = parseTemplate(template);
    if (!parsed.ok) {
      skipped.push(`# skipped ${template}: ${parsed.message}`);
      continue;
    }
    const methods = [...new Set(seen.map((t) => t.method))].filter((m) => KNOWN_METHODS.has(m)).sort();
    for (const m of new Set(seen.map((t) => t.method))) {
      if (!KNOWN_METHODS.has(m)) skipped.push(`# skipped method ${m} on ${template}: not a policy method`);
    }
    if (methods.length === 0) continue;
    const count = seen.reduce((n, t) => n + t.count, 0);
    const last =
      seen
        .map((t) => t.lastSeen)
        .sort()
        .at(-1) ?? s.now;
    const merged: StatusCounts = {};
    for (const t of seen)
      for (const [cls, n] of Object.entries(t.statuses) as [keyof StatusCounts, number][])
        merged[cls] = (merged[cls] ?? 0) + n;
    routes.push({
      comment: ` seen ${count} times (${statuses(merged)}), last ${last}; TODO: add allow`,
      route: { name: uniqueName(routeName(methods, template), used), methods, path: template },
    });
  }
  const doc = new Document({ routes: routes.map((r) => r.route) });
  const seq = doc.get('routes', true);
  if (isSeq(seq)) {
    seq.items.forEach((item, i) => {
      if (!isMap(item)) return;
      item.commentBefore = routes[i]?.comment ?? null;
      const methods = item.get('methods', true);
      if (isSeq(methods)) methods.flow = true;
    });
  }
  const body = routes.length > 0 ? doc.toString({ lineWidth: 0 }).trimEnd() : 'routes: []';
  return [...header, ...skipped, body].join('\n');
}
