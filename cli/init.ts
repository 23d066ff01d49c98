/** `tollgate init`: wiring for the pod's traffic-capture rules (init container). */

import { initHelp, parseInitArgs } from '../agent/capture/init-flags.ts';
import {
  applyCapture,
  CaptureError,
  hasIpv6,
  type RunCommand,
  runCommand,
} from '../agent/capture/iptables.ts';
import { dryRunText } from '../agent/capture/restore.ts';
import type { IpFamily } from '../agent/capture/rules.ts';
import { ConfigError } from '../agent/config.ts';
import { type CliIo, EXIT } from './cli-io.ts';

export const INIT_HELP = initHelp();

export interface InitDeps {
  run: RunCommand;
  /** Whether the pod has IPv6 (then ip6tables gets the same rules). */
  ipv6: () => boolean;
}

const DEFAULT_DEPS: InitDeps = { run: runCommand, ipv6: () => hasIpv6() };

/** Parses the flags, then prints (--dry-run) or applies the rules; returns the exit code. */
export async function runInit(args: string[], io: CliIo, deps: InitDeps = DEFAULT_DEPS): Promise<number> {
  let options: ReturnType<typeof parseInitArgs>;
  try {
    options = parseInitArgs(args);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    for (const p of e.problems) io.err(`tollgate init: ${p}`);
    io.err("Run 'tollgate init --help' for usage.");
    return EXIT.usage;
  }
  if (!options) {
    io.out(INIT_HELP);
    return EXIT.ok;
  }
  if (options.dryRun) {
    io.out(dryRunText(options.capture));
    return EXIT.ok;
  }
  const families: IpFamily[] = deps.ipv6() ? [4, 6] : [4];
  try {
    const { backend } = await applyCapture(options.capture, { run: deps.run, families });
    const which = families.map((f) => (f === 4 ? 'IPv4' : 'IPv6')).join(' and ');
    io.out(`tollgate init: ${which} capture rules applied (${backend} backend)`);
    return EXIT.ok;
  } catch (e) {
    if (!(e instanceof CaptureError)) throw e;
    io.err(`tollgate init: ${e.message}`);
    return EXIT.failed;
  }
}
