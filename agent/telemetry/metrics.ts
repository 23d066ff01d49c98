/** The agent's import path for the shared metrics registry (telemetry/metrics.ts). */
export { type Labels, Metrics } from '../../telemetry/metrics.ts';
