/**
 * The `tollgate` command: wiring only. Parses the subcommand, runs it with the
 * process's streams, and turns its result into an exit code (2 on bad usage).
 */
import { type CliIo, EXIT, processIo, UsageError } from './cli-io.ts';
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

/**
 * Each command's module, loaded only when it runs: the agent never loads the
 * operator's Kubernetes client, nor the operator the agent's proxy (less
 * memory and a faster start for both).
 */
const COMMANDS: Record<string, () => Promise<{ run: Command; help: string }>> = {
  agent: async () => {
    const m = await import('./agent.ts');
    return { run: m.runAgent, help: m.AGENT_HELP };
  },
  operator: async () => {
    const m = await import('./operator.ts');
    return { run: m.runOperator, help: m.OPERATOR_HELP };
  },
  init: async () => {
    const m = await import('./init.ts');
    return { run: (args, io) => m.runInit(args, io), help: m.INIT_HELP };
  },
  validate: async () => {
    const m = await import('./validate.ts');
    return { run: m.runValidate, help: m.VALIDATE_HELP };
  },
  check: async () => {
    const m = await import('./check.ts');
    return { run: m.runCheck, help: m.CHECK_HELP };
  },
  test: async () => {
    const m = await import('./test-cases.ts');
    return { run: m.runTest, help: m.TEST_HELP };
  },
  inventory: async () => {
    const m = await import('./inventory.ts');
    return { run: m.runInventory, help: m.INVENTORY_HELP };
  },
};

/** Runs the CLI; returns the exit code. */
export async function main(argv: string[], io: CliIo): Promise<number> {
  const [command, ...rest] = argv;
  const topic = command === 'help' && rest[0] !== undefined ? COMMANDS[rest[0]] : undefined;
  if (topic) {
    io.out((await topic()).help);
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
  const load = COMMANDS[command];
  if (!load) {
    io.err(`tollgate: unknown command "${command}"\n\n${MAIN_HELP}`);
    return EXIT.usage;
  }
  const cmd = await load();
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
