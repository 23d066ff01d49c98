/**
 * OpenTelemetry wiring for `tollgate agent`, imported by cli/agent.ts only when
 * the OTEL_* environment configures an exporter (so a process without it
 * never loads the SDK): starts the SDK and subscribes the agent's spans and
 * log records to its telemetry channels.
 */
import type { Agent } from '../agent/agent.ts';
import type { AgentConfig } from '../agent/config.ts';
import { installAgentOtel } from '../agent/telemetry/otel-bridge.ts';
import type { OtelConfig } from '../telemetry/otel/config.ts';
import { type OtelLogSink, startOtel } from '../telemetry/otel/sdk.ts';
import { packageVersion } from './version.ts';

export interface AgentOtel {
  /** Unsubscribes, then flushes and stops the SDK. */
  shutdown(): Promise<void>;
}

export async function startAgentOtel(
  otelConfig: OtelConfig,
  agent: Agent,
  config: AgentConfig,
  logger: OtelLogSink & { isLevelEnabled(level: string): boolean },
): Promise<AgentOtel> {
  const otel = await startOtel(otelConfig, {
    scope: 'tollgate-agent',
    version: packageVersion(),
    registries: [agent.metrics],
    logger,
  });
  const unsubscribe = installAgentOtel({
    spans: otel.spans,
    logs: otel.logs,
    sampler: otel.sampler,
    // Access lines as log records only when asked (the span carries the same), and never without the JSON line.
    access: (config.accessLogOtlp ?? false) && (config.accessLog ?? true) && logger.isLevelEnabled('info'),
    subject: config.logSubject ?? 'none',
  });
  return {
    async shutdown() {
      unsubscribe();
      await otel.shutdown();
    },
  };
}
