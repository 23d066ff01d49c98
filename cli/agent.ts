/** `tollgate agent`: process wiring for the sidecar (config, logger, signals). */
import { pino } from 'pino';
import { Agent, PolicyLoadError } from '../agent/agent.ts';
import { agentHelp, ConfigError, parseAgentConfig } from '../agent/config.ts';
import { JsonLineWriter } from '../agent/telemetry/json-line.ts';
import { formatDiagnostic } from '../policy/diagnostics.ts';
import { type OtelConfig, OtelConfigError, readOtelConfig } from '../telemetry/otel/config.ts';
import { type CliIo, EXIT } from './cli-io.ts';
import { stdoutLines } from './fd-lines.ts';
import type { AgentOtel } from './telemetry.ts';
import { packageVersion } from './version.ts';

export const AGENT_HELP = agentHelp();

/** Starts the agent; resolves with an exit code only when it cannot start (it runs until a signal). */
export async function runAgent(args: string[], io: CliIo): Promise<number> {
  let config: ReturnType<typeof parseAgentConfig>;
  try {
    config = parseAgentConfig(args);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    for (const p of e.problems) io.err(`tollgate agent: ${p}`);
    io.err("Run 'tollgate agent --help' for usage.");
    return EXIT.usage;
  }
  if (!config) {
    io.out(AGENT_HELP);
    return EXIT.ok;
  }
  let otelConfig: OtelConfig | null;
  try {
    otelConfig = readOtelConfig(process.env, 'tollgate-agent');
  } catch (e) {
    if (!(e instanceof OtelConfigError)) throw e;
    for (const p of e.problems) io.err(`tollgate agent: ${p}`);
    return EXIT.usage;
  }
  // Every stdout line goes through one batch: written synchronously, whole and in order, once per
  // event-loop turn (one write(2) for the lines of every request finished in the turn) and on exit.
  // pino's default (asynchronous) destination hands every line to the libuv thread pool, which cost
  // more per access line than building it (bench: telemetry case).
  const lines = stdoutLines();
  const base = { component: 'agent' };
  const logger = pino({ level: config.logLevel, base }, lines);
  // The access line (one per request) in the same format and destination, without pino's per-field strings.
  const accessLine = new JsonLineWriter((line) => lines.append(line), { bindings: base });
  const agent = new Agent(config, { logger, accessLine, agentVersion: packageVersion() });
  let otel: AgentOtel | null = null;
  try {
    if (otelConfig) {
      // Loaded only when configured: without OTEL_* the SDK costs nothing, not even its import.
      const { startAgentOtel } = await import('./telemetry.ts');
      otel = await startAgentOtel(otelConfig, agent, config, logger);
      logger.info(
        { traces: otelConfig.traces, metrics: otelConfig.metrics, logs: otelConfig.logs },
        'OpenTelemetry export on',
      );
    }
    const { listen, admin, outbound } = await agent.start();
    logger.info(
      {
        listen: `${listen.address}:${listen.port}`,
        admin: `${admin.address}:${admin.port}`,
        ...(outbound ? { outbound: `${outbound.address}:${outbound.port}` } : {}),
      },
      'agent started',
    );
  } catch (e) {
    // What did start (the operator stream, a listener) must not keep the process alive.
    await agent.stop(0).catch(() => {});
    await otel?.shutdown();
    if (e instanceof PolicyLoadError) {
      for (const d of e.diagnostics) io.err(formatDiagnostic(d));
      io.err('tollgate agent: the policy is invalid; not starting');
      return EXIT.failed;
    }
    io.err(`tollgate agent: ${(e as Error).message}`);
    return EXIT.failed;
  }
  const stop = (signal: string) => {
    logger.info({ signal }, 'draining');
    agent
      .stop()
      .then(() => otel?.shutdown())
      .then(
        () => process.exit(0),
        () => process.exit(1),
      );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  return new Promise<number>(() => {});
}
