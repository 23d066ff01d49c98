/**
 * In-process counters and gauges with low-cardinality labels, rendered as
 * Prometheus text for the admin port's /metrics. (The telemetry milestone
 * exports the same through OpenTelemetry.)
 */

type Labels = Readonly<Record<string, string>>;

interface Family {
  help: string;
  type: 'counter' | 'gauge';
  values: Map<string, { labels: Labels; value: number }>;
}

/** The series identity: sorted label pairs, JSON-encoded so no value can forge another series. */
function labelKey(labels: Labels): string {
  return JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

export class Metrics {
  readonly #families = new Map<string, Family>();

  #family(name: string, type: Family['type'], help: string): Family {
    let f = this.#families.get(name);
    if (!f) {
      f = { help, type, values: new Map() };
      this.#families.set(name, f);
    }
    return f;
  }

  /** Declares a label-less metric so it is listed at 0 before its first event. */
  declare(name: string, type: Family['type'], help: string): void {
    const f = this.#family(name, type, help);
    if (!f.values.has(labelKey({}))) f.values.set(labelKey({}), { labels: {}, value: 0 });
  }

  inc(name: string, labels: Labels = {}, by = 1, help = ''): void {
    this.counter(name, labels, help).value += by;
  }

  /** The series of a counter, resolved once so a hot path can add to it without building label keys. */
  counter(name: string, labels: Labels = {}, help = ''): { value: number } {
    const f = this.#family(name, 'counter', help);
    const key = labelKey(labels);
    let series = f.values.get(key);
    if (!series) {
      series = { labels: { ...labels }, value: 0 };
      f.values.set(key, series);
    }
    return series;
  }

  set(name: string, labels: Labels, value: number, help = ''): void {
    const f = this.#family(name, 'gauge', help);
    f.values.set(labelKey(labels), { labels: { ...labels }, value });
  }

  /** Replaces every series of a gauge (e.g. an info metric whose label changed). */
  reset(name: string): void {
    this.#families.get(name)?.values.clear();
  }

  get(name: string, labels: Labels = {}): number {
    return this.#families.get(name)?.values.get(labelKey(labels))?.value ?? 0;
  }

  /** Prometheus text exposition format 0.0.4. */
  render(): string {
    const out: string[] = [];
    for (const [name, f] of [...this.#families].sort(([a], [b]) => (a < b ? -1 : 1))) {
      out.push(`# HELP ${name} ${escapeHelp(f.help || name)}`, `# TYPE ${name} ${f.type}`);
      for (const { labels, value } of f.values.values()) {
        const l = Object.entries(labels)
          .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
          .join(',');
        out.push(`${name}${l ? `{${l}}` : ''} ${value}`);
      }
    }
    return `${out.join('\n')}\n`;
  }
}
