/** `tollgate operator`: process wiring for the control plane (config, kubeconfig, logger, signals). */
import { pino } from 'pino';
import { OperatorConfigError, operatorHelp, parseOperatorConfig } from '../operator/config.ts';
import { loadKubeConfig } from '../operator/kube/kube-config.ts';
import { Operator } from '../operator/operator.ts';
import { type CliIo, EXIT } from './cli-io.ts';
import { packageVersion } from './version.ts';

export const OPERATOR_HELP = operatorHelp();

/** Starts the operator; resolves with an exit code only when it cannot start (it runs until a signal). */
export async function runOperator(args: string[], io: CliIo): Promise<number> {
  let config: ReturnType<typeof parseOperatorConfig>;
  try {
    config = parseOperatorConfig(args, process.env, packageVersion());
  } catch (e) {
    if (!(e instanceof OperatorConfigError)) throw e;
    for (const p of e.problems) io.err(`tollgate operator: ${p}`);
    io.err("Run 'tollgate operator --help' for usage.");
    return EXIT.usage;
  }
  if (!config) {
    io.out(OPERATOR_HELP);
    return EXIT.ok;
  }
  const logger = pino({ level: config.logLevel, base: { component: 'operator', identity: config.identity } });
  let operator: Operator;
  try {
    const kubeConfig = loadKubeConfig({
      ...(config.kubeconfig ? { kubeconfig: config.kubeconfig } : {}),
      env: process.env,
    });
    operator = new Operator({ kubeConfig, config, log: logger, version: packageVersion() });
    const { grpcPort, healthPort, webhookPort } = await operator.start();
    logger.info({ grpc: grpcPort, health: healthPort, webhook: webhookPort }, 'operator started');
  } catch (e) {
    io.err(`tollgate operator: ${(e as Error).message}`);
    return EXIT.failed;
  }
  const stop = (signal: string) => {
    logger.info({ signal }, 'stopping');
    operator.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  return new Promise<number>(() => {});
}
