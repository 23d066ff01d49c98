import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { pino } from 'pino';
import { JsonLineWriter } from './json-line.ts';
import { LineBatch } from './line-batch.ts';

/** A batch whose writes are recorded, with the deferred flush under the test's control. */
function recorded(maxBytes?: number) {
  const writes: string[] = [];
  const deferred: (() => void)[] = [];
  const batch = new LineBatch((bytes) => writes.push(Buffer.from(bytes).toString('utf8')), {
    ...(maxBytes !== undefined ? { maxBytes } : {}),
    defer: (flush) => deferred.push(flush),
  });
  const endTurn = () => {
    for (const flush of deferred.splice(0)) flush();
  };
  return { batch, writes, deferred, endTurn };
}

const line = (i: number) => `{"n":${i},"pad":"${'x'.repeat(i % 7)}"}\n`;

describe('LineBatch', () => {
  test('the lines of one turn go out in one write, in order, when the turn ends', () => {
    const { batch, writes, deferred, endTurn } = recorded();
    for (let i = 0; i < 100; i++) batch.write(line(i));
    assert.deepEqual(writes, []);
    assert.equal(deferred.length, 1, 'one deferred flush per turn, not per line');
    endTurn();
    assert.equal(writes.length, 1);
    assert.equal(writes[0], Array.from({ length: 100 }, (_, i) => line(i)).join(''));
    assert.equal(batch.pending, 0);
    batch.write(line(100));
    assert.equal(deferred.length, 1, 'the next turn schedules again');
    endTurn();
    assert.deepEqual(writes.slice(1), [line(100)]);
  });

  test('past maxBytes the pending lines are written at once, never a line cut in two', () => {
    const { batch, writes, endTurn } = recorded(256);
    const all: string[] = [];
    for (let i = 0; i < 500; i++) {
      const l = line(i);
      all.push(l);
      if (i % 2 === 0) batch.write(l);
      else batch.append(Buffer.from(l));
    }
    endTurn();
    assert.ok(writes.length > 10, `${writes.length} writes`);
    for (const w of writes) {
      assert.ok(w.endsWith('\n'), 'every write ends a line');
      assert.ok(Buffer.byteLength(w) < 256 + 32, 'a write holds at most maxBytes plus one line');
    }
    assert.equal(writes.join(''), all.join(''), 'nothing lost, duplicated or reordered');
  });

  test('flush writes what is pending now; the turn-end flush then has nothing left to write', () => {
    const { batch, writes, endTurn } = recorded();
    batch.write(line(1));
    batch.append(Buffer.from(line(2)));
    let called = 0;
    batch.flush(() => called++);
    assert.equal(called, 1, "pino's flush callback");
    assert.deepEqual(writes, [line(1) + line(2)]);
    endTurn();
    batch.flush();
    assert.equal(writes.length, 1, 'an empty batch writes nothing');
  });

  test('append copies: the caller may reuse its buffer', () => {
    const { batch, writes, endTurn } = recorded();
    const reused = Buffer.from('{"a":1}\n');
    batch.append(reused);
    reused.write('{"b":2}\n');
    batch.append(reused);
    endTurn();
    assert.deepEqual(writes, ['{"a":1}\n{"b":2}\n']);
  });

  test('a line larger than the buffer grows it; non-ASCII text is written as UTF-8', () => {
    const { batch, writes, endTurn } = recorded();
    const big = `{"big":"${'é'.repeat(40_000)}"}\n`;
    batch.write(line(1));
    batch.write(big);
    batch.write(line(2));
    endTurn();
    assert.equal(writes.join(''), line(1) + big + line(2));
  });

  test('a sink that throws loses that batch once, and the next lines still go out', () => {
    const writes: string[] = [];
    let fail = true;
    const batch = new LineBatch(
      (bytes) => {
        if (fail) throw new Error('EIO');
        writes.push(Buffer.from(bytes).toString());
      },
      { defer: () => {} },
    );
    batch.write(line(1));
    assert.throws(() => batch.flush(), /EIO/);
    fail = false;
    batch.write(line(2));
    batch.flush();
    assert.deepEqual(writes, [line(2)]);
  });

  test("pino's lines and the access lines share the batch and keep their order (default defer: setImmediate)", async () => {
    const writes: string[] = [];
    const batch = new LineBatch((bytes) => writes.push(Buffer.from(bytes).toString()));
    const base = { component: 'agent' };
    const logger = pino({ level: 'info', base, timestamp: () => ',"time":1' }, batch);
    const access = new JsonLineWriter((l) => batch.append(l), { bindings: base, now: () => 1 });
    access.info({ event: 'tollgate.access', requestId: 'a' }, 'request');
    logger.info({ event: 'tollgate.security.auth_failure', requestId: 'a' }, 'authentication failed');
    access.info({ event: 'tollgate.access', requestId: 'b' }, 'request');
    assert.equal(writes.length, 0, 'nothing written before the turn ends');
    await nextTurn();
    assert.equal(writes.length, 1);
    const lines = (writes[0] as string).split('\n');
    assert.equal(lines.pop(), '');
    assert.deepEqual(
      lines
        .map((l) => JSON.parse(l) as { requestId: string; msg: string })
        .map((l) => `${l.requestId} ${l.msg}`),
      ['a request', 'a authentication failed', 'b request'],
    );
  });
});
