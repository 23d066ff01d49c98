/**
 * The operator's metrics, fed from its events on `node:diagnostics_channel`
 * (`tollgate:operator`): the operator's loops publish plain events with
 * `publishOperatorEvent` and never touch a metric; `OperatorMetrics`
 * subscribes and counts them into a registry (telemetry/metrics.ts), which the
 * operator serves as Prometheus text on its metrics port and, when OTLP is
 * configured, exports through telemetry/otel/sdk.ts like the agent does:
 *
 * ```ts
 * const metrics = new Metrics();
 * const stop = new OperatorMetrics(metrics).subscribe();
 * // GET /metrics → metrics.render(); OTLP: startOtel(config, { scope: 'tollgate-operator', registries: [metrics], ... })
 * publishOperatorEvent({ type: 'watch', resource: 'ApiPolicy', event: 'ADDED' });
 * ```
 *
 * Labels are closed lists (event types, results, status reasons) or the
 * watched resource kind: never a policy, pod or namespace name.
 */
import diagnostics from 'node:diagnostics_channel';
import type { Metrics } from './metrics.ts';

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR' | 'RELIST';

/** What the operator reports. */
export type OperatorEvent =
  /** An informer event (`RELIST` after a 410 Gone). */
  | { type: 'watch'; resource: 'ApiPolicy' | 'Pod' | 'Namespace' | 'Service'; event: WatchEventType }
  /** A policy generation compiled: ok, or refused with its `Accepted=False` reason. */
  | { type: 'compile'; ok: true }
  | { type: 'compile'; ok: false; reason: 'Invalid' | 'Conflicted' }
  /** A bundle sent to one sidecar's stream (ok), or a send that failed. */
  | { type: 'push'; ok: boolean; durationMs?: number }
  /** A sidecar's answer to a bundle. */
  | { type: 'ack'; result: 'ack' | 'nack' }
  /** A sidecar's policy stream opened or closed. */
  | { type: 'sidecar'; change: 'connected' | 'disconnected' };

export const operatorEvents = diagnostics.channel('tollgate:operator');

/** Publishes an operator event when anyone listens. */
export function publishOperatorEvent(event: OperatorEvent): void {
  if (operatorEvents.hasSubscribers) operatorEvents.publish(event);
}

/** The metric names (Prometheus; OTLP drops `_total` and turns `_` into `.`). */
export const OPERATOR_METRICS = {
  watchEvents: 'tollgate_operator_watch_events_total',
  compiles: 'tollgate_operator_compiles_total',
  compileErrors: 'tollgate_operator_compile_errors_total',
  pushes: 'tollgate_operator_pushes_total',
  pushDuration: 'tollgate_operator_push_duration_seconds',
  acks: 'tollgate_operator_acks_total',
  connected: 'tollgate_operator_connected_sidecars',
} as const;

const PUSH_BUCKETS: readonly number[] = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5];

/** Counts operator events into a registry. */
export class OperatorMetrics {
  readonly #metrics: Metrics;
  #connected = 0;

  constructor(metrics: Metrics) {
    this.#metrics = metrics;
    metrics.set(OPERATOR_METRICS.connected, {}, 0, 'Sidecars with an open policy stream');
    for (const result of ['ok', 'error'])
      metrics.counter(OPERATOR_METRICS.compiles, { result }, 'Policy generations compiled, by result');
    for (const result of ['ack', 'nack'])
      metrics.counter(OPERATOR_METRICS.acks, { result }, 'Sidecar answers to pushed bundles (ACK / NACK)');
  }

  /** Subscribes to `tollgate:operator`; returns the unsubscribe function. */
  subscribe(): () => void {
    const handler = (message: unknown) => this.record(message as OperatorEvent);
    operatorEvents.subscribe(handler);
    return () => {
      operatorEvents.unsubscribe(handler);
    };
  }

  record(e: OperatorEvent): void {
    const m = this.#metrics;
    switch (e.type) {
      case 'watch':
        m.inc(OPERATOR_METRICS.watchEvents, { resource: e.resource, event: e.event }, 1, 'Informer events');
        return;
      case 'compile':
        m.inc(OPERATOR_METRICS.compiles, { result: e.ok ? 'ok' : 'error' });
        if (!e.ok)
          m.inc(
            OPERATOR_METRICS.compileErrors,
            { reason: e.reason },
            1,
            'Policy generations refused (Accepted=False), by reason',
          );
        return;
      case 'push':
        m.inc(OPERATOR_METRICS.pushes, { result: e.ok ? 'ok' : 'failed' }, 1, 'Bundles pushed to sidecars');
        if (e.durationMs !== undefined)
          m.histogram(OPERATOR_METRICS.pushDuration, {}, PUSH_BUCKETS, {
            help: 'Time to push one bundle to one sidecar',
          }).observe(e.durationMs / 1000);
        return;
      case 'ack':
        m.inc(OPERATOR_METRICS.acks, { result: e.result });
        return;
      case 'sidecar':
        this.#connected = Math.max(0, this.#connected + (e.change === 'connected' ? 1 : -1));
        m.set(OPERATOR_METRICS.connected, {}, this.#connected);
        return;
    }
  }
}
