import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import parsePrometheus from 'parse-prometheus-text-format';
import { Metrics } from './metrics.ts';
import { OPERATOR_METRICS, OperatorMetrics, publishOperatorEvent } from './operator-metrics.ts';

/** The samples of one family of a /metrics text, parsed by a Prometheus text parser. */
function samples(metrics: Metrics, name: string) {
  return parsePrometheus(metrics.render()).find((f) => f.name === name);
}

describe('OperatorMetrics', () => {
  const metrics = new Metrics();
  const unsubscribe = new OperatorMetrics(metrics).subscribe();
  after(unsubscribe);

  test('before any event: connected sidecars 0, compile and ACK/NACK series listed at 0', () => {
    assert.deepEqual(samples(metrics, OPERATOR_METRICS.connected)?.metrics, [{ value: '0' }]);
    assert.equal(samples(metrics, OPERATOR_METRICS.acks)?.type, 'COUNTER');
    assert.equal(metrics.get(OPERATOR_METRICS.acks, { result: 'nack' }), 0);
  });

  test('watch events, compiles, pushes, ACK/NACK and streams published on the channel are counted', () => {
    const events = [
      { type: 'watch', resource: 'ApiPolicy', event: 'ADDED' },
      { type: 'watch', resource: 'ApiPolicy', event: 'ADDED' },
      { type: 'watch', resource: 'Pod', event: 'RELIST' },
      { type: 'compile', ok: true },
      { type: 'compile', ok: false, reason: 'Invalid' },
      { type: 'push', ok: true, durationMs: 3 },
      { type: 'push', ok: false },
      { type: 'ack', result: 'ack' },
      { type: 'ack', result: 'nack' },
      { type: 'sidecar', change: 'connected' },
      { type: 'sidecar', change: 'connected' },
      { type: 'sidecar', change: 'disconnected' },
    ] as const;
    for (const e of events) publishOperatorEvent(e);
    const m = (name: string, labels: Record<string, string> = {}) => metrics.get(name, labels);
    assert.equal(m(OPERATOR_METRICS.watchEvents, { resource: 'ApiPolicy', event: 'ADDED' }), 2);
    assert.equal(m(OPERATOR_METRICS.watchEvents, { resource: 'Pod', event: 'RELIST' }), 1);
    assert.equal(m(OPERATOR_METRICS.compiles, { result: 'ok' }), 1);
    assert.equal(m(OPERATOR_METRICS.compiles, { result: 'error' }), 1);
    assert.equal(m(OPERATOR_METRICS.compileErrors, { reason: 'Invalid' }), 1);
    assert.equal(m(OPERATOR_METRICS.pushes, { result: 'ok' }), 1);
    assert.equal(m(OPERATOR_METRICS.pushes, { result: 'failed' }), 1);
    assert.equal(m(OPERATOR_METRICS.pushDuration), 1, 'one push timed');
    assert.equal(m(OPERATOR_METRICS.acks, { result: 'ack' }), 1);
    assert.equal(m(OPERATOR_METRICS.acks, { result: 'nack' }), 1);
    assert.equal(m(OPERATOR_METRICS.connected), 1);
    const parsed = samples(metrics, OPERATOR_METRICS.watchEvents);
    assert.equal(parsed?.type, 'COUNTER');
    assert.deepEqual(parsed?.metrics, [
      { labels: { resource: 'ApiPolicy', event: 'ADDED' }, value: '2' },
      { labels: { resource: 'Pod', event: 'RELIST' }, value: '1' },
    ]);
    assert.equal(samples(metrics, OPERATOR_METRICS.pushDuration)?.type, 'HISTOGRAM');
  });

  test('the connected gauge never goes below 0', () => {
    for (let i = 0; i < 3; i++) publishOperatorEvent({ type: 'sidecar', change: 'disconnected' });
    assert.equal(metrics.get(OPERATOR_METRICS.connected), 0);
  });

  test('without a subscriber nothing is counted (and publishing costs a property read)', () => {
    const other = new Metrics();
    const operator = new OperatorMetrics(other);
    publishOperatorEvent({ type: 'ack', result: 'ack' });
    assert.equal(other.get(OPERATOR_METRICS.acks, { result: 'ack' }), 0);
    operator.record({ type: 'ack', result: 'ack' });
    assert.equal(other.get(OPERATOR_METRICS.acks, { result: 'ack' }), 1);
  });
});
