/**
 * In-process counters, gauges and histograms with low-cardinality labels:
 * rendered as Prometheus text for an admin port's /metrics, and read as a
 * whole (`families()`) by the OpenTelemetry bridge (telemetry/otel/) that
 * exports the same series over OTLP. Shared by the agent and the operator.
 *
 * The hot path resolves a series once (`counter`, `histogram`) and then only
 * adds to it: no label key is built per event.
 */

export type Labels = Readonly<Record<string, string>>;

export type MetricType = 'counter' | 'gauge' | 'histogram';

/** How a family is named and described outside Prometheus. */
export interface FamilyOptions {
  help?: string;
  /** UCUM unit for OTLP (`s`, `By`, `1`); default: from the name (`_seconds` → `s`), else none. */
  unit?: string;
  /** The OTLP instrument name; default: derived from the Prometheus name (see otelNameOf). */
  otelName?: string;
}

/** One histogram series: cumulative since the registry started. */
export interface HistogramSeries {
  readonly labels: Labels;
  readonly bounds: readonly number[];
  /** Per bucket (not cumulative), the last one for values above every bound. */
  readonly counts: number[];
  sum: number;
  count: number;
  observe(value: number): void;
}

export interface ScalarSeries {
  readonly labels: Labels;
  value: number;
}

interface Family {
  readonly name: string;
  readonly type: MetricType;
  readonly help: string;
  readonly unit: string;
  readonly otelName: string;
  readonly values: Map<string, ScalarSeries | HistogramSeries>;
  /** Gauges computed when read (e.g. an age): label key → function. */
  readonly computed: Map<string, { labels: Labels; read: () => number }>;
}

/** A read-only view of one family, as the OTLP bridge reads it. */
export interface FamilyView {
  readonly name: string;
  readonly type: MetricType;
  readonly help: string;
  readonly unit: string;
  readonly otelName: string;
  readonly scalars: readonly ScalarSeries[];
  readonly histograms: readonly HistogramSeries[];
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

/** A Prometheus label name for an attribute key (`http.route` → `http_route`). */
function promLabel(key: string): string {
  return key.replace(/[^a-zA-Z0-9_]/g, '_');
}

function formatLabels(labels: Labels, extra = ''): string {
  const parts = Object.entries(labels).map(([k, v]) => `${promLabel(k)}="${escapeLabel(v)}"`);
  if (extra) parts.push(extra);
  return parts.length > 0 ? `{${parts.join(',')}}` : '';
}

function formatNumber(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Number.POSITIVE_INFINITY) return '+Inf';
  if (v === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(v);
}

/**
 * The OTLP name of a Prometheus-style family name: `_total` dropped, a unit
 * suffix (`_seconds`, `_bytes`) dropped, `_` → `.` (`tollgate_authn_failures_total`
 * → `tollgate.authn.failures`).
 */
export function otelNameOf(name: string): string {
  return name
    .replace(/_total$/, '')
    .replace(/_(seconds|bytes)$/, '')
    .replace(/_/g, '.');
}

function unitOf(name: string): string {
  if (/_seconds(_total)?$/.test(name)) return 's';
  if (/_bytes(_total)?$/.test(name)) return 'By';
  return '';
}

function newHistogram(labels: Labels, bounds: readonly number[]): HistogramSeries {
  const series: HistogramSeries = {
    labels,
    bounds,
    counts: new Array<number>(bounds.length + 1).fill(0),
    sum: 0,
    count: 0,
    observe(value: number) {
      let i = 0;
      while (i < bounds.length && value > (bounds[i] as number)) i++;
      series.counts[i] = (series.counts[i] ?? 0) + 1;
      series.sum += value;
      series.count++;
    },
  };
  return series;
}

export class Metrics {
  readonly #families = new Map<string, Family>();

  #family(name: string, type: MetricType, options: FamilyOptions): Family {
    let f = this.#families.get(name);
    if (!f) {
      f = {
        name,
        type,
        help: options.help ?? '',
        unit: options.unit ?? unitOf(name),
        otelName: options.otelName ?? otelNameOf(name),
        values: new Map(),
        computed: new Map(),
      };
      this.#families.set(name, f);
    }
    return f;
  }

  /** Declares a label-less metric so it is listed at 0 before its first event. */
  declare(name: string, type: 'counter' | 'gauge', help: string): void {
    const f = this.#family(name, type, { help });
    if (!f.values.has(labelKey({}))) f.values.set(labelKey({}), { labels: {}, value: 0 });
  }

  inc(name: string, labels: Labels = {}, by = 1, help = ''): void {
    this.counter(name, labels, help).value += by;
  }

  /** The series of a counter, resolved once so a hot path can add to it without building label keys. */
  counter(name: string, labels: Labels = {}, help: string | FamilyOptions = ''): { value: number } {
    const f = this.#family(name, 'counter', typeof help === 'string' ? { help } : help);
    const key = labelKey(labels);
    let series = f.values.get(key) as ScalarSeries | undefined;
    if (!series) {
      series = { labels: { ...labels }, value: 0 };
      f.values.set(key, series);
    }
    return series;
  }

  /**
   * The series of a histogram with these (inclusive upper) bucket bounds,
   * resolved once; the first bounds given for a family are kept for all its series.
   */
  histogram(
    name: string,
    labels: Labels,
    bounds: readonly number[],
    options: FamilyOptions = {},
  ): HistogramSeries {
    const f = this.#family(name, 'histogram', options);
    const key = labelKey(labels);
    let series = f.values.get(key) as HistogramSeries | undefined;
    if (!series) {
      const first = f.values.values().next().value as HistogramSeries | undefined;
      series = newHistogram({ ...labels }, first ? first.bounds : [...bounds]);
      f.values.set(key, series);
    }
    return series;
  }

  set(name: string, labels: Labels, value: number, help: string | FamilyOptions = ''): void {
    const f = this.#family(name, 'gauge', typeof help === 'string' ? { help } : help);
    f.values.set(labelKey(labels), { labels: { ...labels }, value });
  }

  /** A gauge whose value is read from `read()` whenever the registry is rendered or exported. */
  gauge(name: string, labels: Labels, read: () => number, help: string | FamilyOptions = ''): void {
    const f = this.#family(name, 'gauge', typeof help === 'string' ? { help } : help);
    f.computed.set(labelKey(labels), { labels: { ...labels }, read });
  }

  /** Replaces every series of a gauge (e.g. an info metric whose label changed). */
  reset(name: string): void {
    const f = this.#families.get(name);
    f?.values.clear();
    f?.computed.clear();
  }

  get(name: string, labels: Labels = {}): number {
    const f = this.#families.get(name);
    const key = labelKey(labels);
    const computed = f?.computed.get(key);
    if (computed) return computed.read();
    const series = f?.values.get(key);
    if (!series) return 0;
    return 'observe' in series ? series.count : series.value;
  }

  /** Every family, sorted by name, with its series as they are now (computed gauges read). */
  families(): FamilyView[] {
    return [...this.#families.values()]
      .sort((a, b) => (a.name < b.name ? -1 : 1))
      .map((f) => {
        const scalars: ScalarSeries[] = [];
        const histograms: HistogramSeries[] = [];
        for (const s of f.values.values()) {
          if ('observe' in s) histograms.push(s);
          else scalars.push(s);
        }
        for (const c of f.computed.values()) scalars.push({ labels: c.labels, value: c.read() });
        return {
          name: f.name,
          type: f.type,
          help: f.help,
          unit: f.unit,
          otelName: f.otelName,
          scalars,
          histograms,
        };
      });
  }

  /** Prometheus text exposition format 0.0.4. */
  render(): string {
    const out: string[] = [];
    for (const f of this.families()) {
      out.push(`# HELP ${f.name} ${escapeHelp(f.help || f.name)}`, `# TYPE ${f.name} ${f.type}`);
      for (const { labels, value } of f.scalars)
        out.push(`${f.name}${formatLabels(labels)} ${formatNumber(value)}`);
      for (const h of f.histograms) {
        let cumulative = 0;
        for (let i = 0; i < h.counts.length; i++) {
          cumulative += h.counts[i] ?? 0;
          const le = i < h.bounds.length ? formatNumber(h.bounds[i] as number) : '+Inf';
          out.push(`${f.name}_bucket${formatLabels(h.labels, `le="${le}"`)} ${cumulative}`);
        }
        out.push(`${f.name}_sum${formatLabels(h.labels)} ${formatNumber(h.sum)}`);
        out.push(`${f.name}_count${formatLabels(h.labels)} ${h.count}`);
      }
    }
    return `${out.join('\n')}\n`;
  }
}
