import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { BatchConfig } from './config.ts';
import { type BatchExporter, ExportQueue, type ExportResult } from './export-queue.ts';
import type { BatchEncoding, EncodedBatch } from './otlp-encoding.ts';

/** Records are numbers; a batch's payload lists them, one byte each. */
const encoding: BatchEncoding<number> = {
  builder() {
    const items: number[] = [];
    return {
      get count() {
        return items.length;
      },
      add: (n: number) => {
        items.push(n);
      },
      finish: () => ({ count: items.length, payload: Uint8Array.from(items) }),
    };
  },
};

interface FakeExporter extends BatchExporter {
  batches: number[][];
  /** Answers still to give, in order; default: success at once. */
  answer: ((done: (r: ExportResult) => void) => void) | null;
  shutdowns: number;
}

function exporter(): FakeExporter {
  const e: FakeExporter = {
    batches: [],
    answer: null,
    shutdowns: 0,
    export(batch: EncodedBatch, done) {
      e.batches.push([...batch.payload]);
      if (e.answer) e.answer(done);
      else done({ code: 0 });
    },
    forceFlush: async () => {},
    shutdown: async () => {
      e.shutdowns++;
    },
  };
  return e;
}

const config = (c: Partial<BatchConfig> = {}): BatchConfig => ({
  scheduledDelayMillis: 20,
  exportTimeoutMillis: 1000,
  maxQueueSize: 8,
  maxExportBatchSize: 3,
  ...c,
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function errors(): { list: string[]; onError: (m: string, d: string) => void } {
  const list: string[] = [];
  return { list, onError: (m, d) => list.push(`${m}: ${d}`) };
}

describe('ExportQueue', () => {
  test('a full batch leaves at once; the rest after the schedule delay', async () => {
    const e = exporter();
    const q = new ExportQueue(encoding, e, config(), { what: 'spans', ...errors() });
    for (const n of [1, 2, 3, 4]) q.add(n);
    assert.deepEqual(e.batches, [[1, 2, 3]]);
    await sleep(60);
    assert.deepEqual(e.batches, [[1, 2, 3], [4]]);
  });

  test('one export at a time; a full queue drops records (and says so once)', async () => {
    const e = exporter();
    const pending: ((r: ExportResult) => void)[] = [];
    e.answer = (done) => pending.push(done);
    const errs = errors();
    const q = new ExportQueue(encoding, e, config(), { what: 'spans', onError: errs.onError });
    for (let n = 1; n <= 12; n++) q.add(n);
    // 1-3 are being exported; 4-11 fill the queue (8); 12 is dropped.
    assert.deepEqual(e.batches, [[1, 2, 3]]);
    assert.equal(q.dropped, 1);
    assert.deepEqual(errs.list, ['spans: export queue full, dropping: maxQueueSize 8']);
    pending.shift()?.({ code: 0 });
    await sleep(0);
    assert.deepEqual(e.batches, [
      [1, 2, 3],
      [4, 5, 6],
    ]);
    e.answer = null;
    pending.shift()?.({ code: 0 });
    await q.forceFlush();
    assert.deepEqual(e.batches.flat(), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
  });

  test('a failed or timed-out export is reported and the queue goes on', async () => {
    const e = exporter();
    e.answer = (done) => done({ code: 1, error: new Error('ECONNREFUSED') });
    const errs = errors();
    const q = new ExportQueue(encoding, e, config({ exportTimeoutMillis: 30 }), {
      what: 'log records',
      onError: errs.onError,
    });
    for (const n of [1, 2, 3]) q.add(n);
    e.answer = () => {};
    for (const n of [4, 5, 6]) q.add(n);
    await q.forceFlush();
    assert.deepEqual(errs.list, [
      'log records: export failed: ECONNREFUSED',
      'log records: export failed: timeout after 30 ms',
    ]);
    e.answer = null;
    q.add(7);
    await q.forceFlush();
    assert.deepEqual(e.batches.at(-1), [7]);
  });

  test('shutdown flushes, stops the exporter, and ignores later records', async () => {
    const e = exporter();
    const q = new ExportQueue(encoding, e, config({ scheduledDelayMillis: 60_000 }), {
      what: 'spans',
      ...errors(),
    });
    q.add(1);
    await q.shutdown();
    assert.deepEqual(e.batches, [[1]]);
    assert.equal(e.shutdowns, 1);
    q.add(2);
    await q.forceFlush();
    assert.deepEqual(e.batches, [[1]]);
  });
});
