/**
 * From a ruleset to `iptables-restore --noflush` input, idempotently: each of
 * Tollgate's chains is declared (which creates it, or flushes it when it
 * exists) and refilled; the jumps from the built-in chains are added only when
 * the current rules (`iptables-save` output) lack them, and stale or duplicate
 * jumps to Tollgate's chains are deleted. Other rules are never touched. Pure.
 */
import {
  type CaptureConfig,
  CHAINS,
  captureRules,
  type IpFamily,
  type Ruleset,
  type TableName,
} from './rules.ts';

/** `iptables-save` output, as the `-A` lines of each table. */
export type SavedRules = Readonly<Record<string, readonly string[]>>;

/** Parses `iptables-save` output (comments, chain headers and counters are skipped). */
export function parseSave(text: string): SavedRules {
  const tables: Record<string, string[]> = {};
  let current: string[] | null = null;
  for (const raw of text.split('\n')) {
    // `iptables-save -c` prefixes counters: `[12:720] -A ...`.
    const line = raw.trim().replace(/^\[\d+:\d+\]\s+/, '');
    if (line.startsWith('*')) {
      current = [];
      tables[line.slice(1)] = current;
    } else if (line === 'COMMIT') {
      current = null;
    } else if (current && line.startsWith('-A ')) {
      current.push(line);
    }
  }
  return tables;
}

const OWN: ReadonlySet<string> = new Set(Object.values(CHAINS).flat());

/** The target of an `-A` line (`-j NAME` or `-g NAME`), or null. */
function target(line: string): string | null {
  return /\s-[jg]\s+(\S+)/.exec(line)?.[1] ?? null;
}

/** The chain an `-A` line appends to. */
function chainOf(line: string): string {
  return line.split(/\s+/)[1] ?? '';
}

/**
 * The jump lines to add and to delete in one table: every wanted jump that is
 * missing is added; every line of a built-in chain that jumps to one of
 * Tollgate's chains and is not wanted, or repeats a wanted one, is deleted.
 */
function reconcileJumps(
  wanted: readonly string[],
  existing: readonly string[],
): { add: string[]; remove: string[] } {
  const kept = new Set<string>();
  const remove: string[] = [];
  for (const line of existing) {
    const t = target(line);
    if (t === null || !OWN.has(t) || OWN.has(chainOf(line))) continue;
    if (wanted.includes(line) && !kept.has(line)) kept.add(line);
    else remove.push(`-D${line.slice(2)}`);
  }
  return { add: wanted.filter((j) => !kept.has(j)), remove };
}

export interface RestoreOptions {
  /**
   * The rules in place (`iptables-save` output, parsed); null renders the
   * complete ruleset as for a fresh pod (what `--dry-run` prints).
   */
  existing: SavedRules | null;
  /** Comment lines printed first (without `#`). Default: none. */
  header?: readonly string[];
}

/** The `iptables-restore --noflush` input that makes the tables hold exactly `ruleset`'s share. */
export function restoreInput(ruleset: Ruleset, options: RestoreOptions): string {
  const lines = (options.header ?? []).map((h) => `# ${h}`);
  for (const table of Object.keys(ruleset) as TableName[]) {
    const rules = ruleset[table];
    const { add, remove } = options.existing
      ? reconcileJumps(rules.jumps, options.existing[table] ?? [])
      : { add: [...rules.jumps], remove: [] };
    lines.push(`*${table}`);
    for (const chain of rules.chains) lines.push(`:${chain} - [0:0]`);
    lines.push(...remove, ...rules.rules, ...add, 'COMMIT');
  }
  return `${lines.join('\n')}\n`;
}

/** The lines of `saved` that belong to Tollgate: its chains' rules and the jumps to them, per table. */
export function ownRules(saved: SavedRules): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [table, lines] of Object.entries(saved)) {
    const own = lines.filter((l) => OWN.has(chainOf(l)) || OWN.has(target(l) ?? ''));
    if (own.length > 0) out[table] = own;
  }
  return out;
}

/** What `tollgate init --dry-run` prints: both families' complete input, as for a fresh pod. */
export function dryRunText(capture: CaptureConfig): string {
  const part = (family: IpFamily) =>
    restoreInput(captureRules(capture, family), {
      existing: null,
      header:
        family === 4
          ? ['IPv4: iptables-restore --noflush (iptables-nft-restore where nf_tables works)']
          : ['IPv6: ip6tables-restore --noflush (applied when the pod has an IPv6 address)'],
    });
  return `${part(4)}${part(6)}`.trimEnd();
}
