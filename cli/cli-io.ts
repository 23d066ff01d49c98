/**
 * What a CLI command gets from the process: arguments, output streams, a file
 * reader and a clock, passed in so commands are testable without spawning.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { type ParseArgsOptionsConfig, parseArgs } from 'node:util';

export interface CliIo {
  out(line: string): void;
  err(line: string): void;
  readFile(path: string): string;
  /** Lists the `.yaml`/`.yml` files of a folder (sorted), or [path] for a file. */
  expand(path: string): string[];
  now(): number;
}

export const processIo: CliIo = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
  readFile: (path) => readFileSync(path, 'utf8'),
  expand: (path) =>
    statSync(path).isDirectory()
      ? readdirSync(path)
          .filter((f) => /\.ya?ml$/.test(f))
          .sort()
          .map((f) => join(path, f))
      : [path],
  now: () => Date.now(),
};

/** Bad usage (unknown flag, bad value): exit code 2. */
export class UsageError extends Error {
  readonly code = 'ERR_CLI_USAGE';
}

/** util.parseArgs in strict mode, with its errors turned into UsageError. */
export function parseFlags<const O extends ParseArgsOptionsConfig>(args: string[], options: O) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: true });
  } catch (e) {
    throw new UsageError((e as Error).message.split('\n')[0]);
  }
}

export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;
