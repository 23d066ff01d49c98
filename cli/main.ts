/**
 * The `tollgate` command: wiring only. Parses the subcommand, runs it with the
 * process's streams, and turns its result into an exit code (2 on bad usage).
 */
import { AGENT_HELP, runAgent } from './agent.ts';
import { CHECK_HELP, runCheck } from './check.ts';
import { type CliIo, EXIT, processIo, UsageError } from './cli-io.ts';
import { INIT_HELP, runInit } from './init.ts';
import { INVENTORY_HELP, runInventory } from './inventory.ts';
import { OPERATOR_HELP, runOperator } from './operator.ts';
import { runTest, TEST_HELP } from './test-cases.ts';
import { runValidate, VALIDATE_HELP } from './validate.ts';
import { packageVersion } from './version.ts';

export const MAIN_HELP = `Usage: tollgate COMMAND [options]

Tollgate enforces ApiPolicy (mTLS identity, JWT, object-level authorization,
rate limits, request validation) on every request reaching a pod.

Commands:
  agent --policy PATH --upstream URL   run the sidecar (standalone: policy from a file)
  agent --operator HOST:PORT [...]     run the sidecar fed by the operator
  operator [--kubeconfig PATH]         run the control plane (watches ApiPolicies, feeds sidecars)
  init --inbound-ports P,... [...]     install the pod's traffic-capture rules (init container)
  validate FILE...                     check ApiPolicy files (exit 1 on any problem)
  check -f FILE "METHOD /path" [...]   explain the decision for one request, offline
  test -f FILE CASES.yaml              run request cases against a policy (CI)
  inventory --admin HOST:PORT [...]    what a running agent has seen; --suggest drafts routes

Run 'tollgate COMMAND --help' (or 'tollgate help COMMAND') for a command's options.`;

type Command = (args: string[], io: CliIo) => number | Promise<number>;

const COMMANDS: Record<string, { run: Command; help: string }> = {
  agent: { run: runAgent, help: AGENT_HELP },
  operator: { run: runOperator, help: OPERATOR_HELP },
  init: { run: (args, io) => runInit(args, io), help: INIT_HELP },
  validate: { run: runValidate, help: VALIDATE_HELP },
  check: { run: runCheck, help: CHECK_HELP },
  test: { run: runTest, help: TEST_HELP },
  inventory: { run: runInventory, help: INVENTORY_HELP },
};

/** Runs the CLI; returns the exit code. */
export async function main(argv: string[], io: CliIo): Promise<number> {
  const [command, ...rest] = argv;
  const topic = command === 'help' && rest[0] !== undefined ? COMMANDS[rest[0]] : undefined;
  if (topic) {
    io.out(topic.help);
    return EXIT.ok;
  }
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    io.out(MAIN_HELP);
    return command === undefined ? EXIT.usage : EXIT.ok;
  }
  if (command === '--version') {
    io.out(`tollgate ${packageVersion()} (node ${process.version})`);
    return EXIT.ok;
  }
  const cmd = COMMANDS[command];
  if (!cmd) {
    io.err(`tollgate: unknown command "${command}"\n\n${MAIN_HELP}`);
    return EXIT.usage;
  }
  try {
    return await cmd.run(rest, io);
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`tollgate ${command}: ${e.message}\nRun 'tollgate ${command} --help' for usage.`);
      return EXIT.usage;
    }
    throw e;
  }
}

if (import.meta.main) {
  process.exitCode = await main(process.argv.slice(2), processIo);
}
