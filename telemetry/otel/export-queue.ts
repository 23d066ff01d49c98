/**
 * A signal's export queue: records are encoded into the open batch as they
 * are added, and batches go to an OTLP exporter one at a time, with the
 * semantics of the SDK's batch processors (OTEL_BSP_* for spans, OTEL_BLRP_*
 * for log records): a batch leaves when it holds `maxExportBatchSize` records
 * or `scheduledDelayMillis` after its first record, an export that takes more
 * than `exportTimeoutMillis` is given up, and past `maxQueueSize` records
 * waiting, new ones are dropped (a request never waits for telemetry).
 */
import type { BatchConfig } from './config.ts';
import type { BatchBuilder, BatchEncoding, EncodedBatch } from './otlp-encoding.ts';

/** The OTLP exporter's result: code 0 is success (ExportResultCode). */
export interface ExportResult {
  code: number;
  error?: Error;
}

/** What an OTLP export delegate offers (`@opentelemetry/otlp-exporter-base`). */
export interface BatchExporter {
  export(batch: EncodedBatch, done: (result: ExportResult) => void): void;
  forceFlush(): Promise<void>;
  shutdown(): Promise<void>;
}

/** Where records go: the bridge adds, the queue batches and exports. */
export interface RecordSink<T> {
  add(record: T): void;
}

export interface ExportQueueOptions {
  /** `spans` or `log records`, for messages. */
  what: string;
  /** A failed export or dropped records (the caller rate-limits). */
  onError(message: string, detail: string): void;
}

export class ExportQueue<T> implements RecordSink<T> {
  readonly #encoding: BatchEncoding<T>;
  readonly #exporter: BatchExporter;
  readonly #config: BatchConfig;
  readonly #options: ExportQueueOptions;
  #open: BatchBuilder<T> | null = null;
  readonly #ready: EncodedBatch[] = [];
  /** Records in the open batch and the ready ones (not those being exported). */
  #queued = 0;
  #timer: NodeJS.Timeout | null = null;
  #exporting: Promise<void> | null = null;
  #stopped = false;
  #dropping = false;
  /** Records dropped because the queue was full. */
  dropped = 0;

  constructor(
    encoding: BatchEncoding<T>,
    exporter: BatchExporter,
    config: BatchConfig,
    options: ExportQueueOptions,
  ) {
    this.#encoding = encoding;
    this.#exporter = exporter;
    this.#config = config;
    this.#options = options;
  }

  add(record: T): void {
    if (this.#stopped) return;
    if (this.#queued >= this.#config.maxQueueSize) {
      this.dropped++;
      if (!this.#dropping) {
        this.#dropping = true;
        this.#options.onError(
          `${this.#options.what}: export queue full, dropping`,
          `maxQueueSize ${this.#config.maxQueueSize}`,
        );
      }
      return;
    }
    this.#dropping = false;
    if (this.#open === null) this.#open = this.#encoding.builder();
    const open = this.#open;
    open.add(record);
    this.#queued++;
    if (open.count >= this.#config.maxExportBatchSize) {
      this.#seal();
      this.#drain();
    } else if (this.#timer === null && this.#exporting === null) {
      this.#startTimer();
    }
  }

  /** Exports everything queued, then waits for the exporter. */
  async forceFlush(): Promise<void> {
    this.#stopTimer();
    this.#seal();
    while (this.#exporting !== null || this.#ready.length > 0) {
      if (this.#exporting === null) this.#drain();
      await this.#exporting;
    }
    await this.#exporter.forceFlush();
  }

  /** Flushes, then stops the exporter; later records are ignored. */
  async shutdown(): Promise<void> {
    if (this.#stopped) return;
    await this.forceFlush();
    this.#stopped = true;
    await this.#exporter.shutdown();
  }

  #startTimer(): void {
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#seal();
      this.#drain();
    }, this.#config.scheduledDelayMillis);
    this.#timer.unref();
  }

  #stopTimer(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }

  #seal(): void {
    const open = this.#open;
    if (open === null || open.count === 0) return;
    this.#open = null;
    this.#ready.push(open.finish());
  }

  /** Exports the next ready batch unless one is being exported. */
  #drain(): void {
    if (this.#exporting !== null) return;
    const batch = this.#ready.shift();
    if (batch === undefined) return;
    this.#queued -= batch.count;
    const { what, onError } = this.#options;
    const exported = new Promise<void>((resolve) => {
      let settled = false;
      const finish = (result: ExportResult) => {
        if (settled) return;
        settled = true;
        clearTimeout(timeout);
        if (result.code !== 0)
          onError(`${what}: export failed`, String(result.error?.message ?? result.error ?? 'unknown'));
        resolve();
      };
      const timeout = setTimeout(
        () => finish({ code: 1, error: new Error(`timeout after ${this.#config.exportTimeoutMillis} ms`) }),
        this.#config.exportTimeoutMillis,
      );
      timeout.unref();
      try {
        this.#exporter.export(batch, finish);
      } catch (e) {
        finish({ code: 1, error: e instanceof Error ? e : new Error(String(e)) });
      }
    });
    this.#exporting = exported.then(() => {
      this.#exporting = null;
      if (this.#ready.length > 0) this.#drain();
      else if (this.#open !== null && this.#open.count > 0 && this.#timer === null && !this.#stopped)
        this.#startTimer();
    });
  }
}
