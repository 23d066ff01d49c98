/**
 * A pino-shaped logger for tests that records every call, and a polling wait
 * for conditions that other code makes true asynchronously.
 */

/** One recorded log call. */
export interface LogEntry {
  level: 'debug' | 'info' | 'warn' | 'error';
  msg: string;
  fields: Record<string, unknown>;
}

/** A logger whose calls land in `entries`. */
export class RecordingLogger {
  readonly entries: LogEntry[] = [];

  debug(fields: object, msg: string): void {
    this.entries.push({ level: 'debug', msg, fields: { ...fields } });
  }
  info(fields: object, msg: string): void {
    this.entries.push({ level: 'info', msg, fields: { ...fields } });
  }
  warn(fields: object, msg: string): void {
    this.entries.push({ level: 'warn', msg, fields: { ...fields } });
  }
  error(fields: object, msg: string): void {
    this.entries.push({ level: 'error', msg, fields: { ...fields } });
  }

  /** The entries with this message. */
  messages(msg: string): LogEntry[] {
    return this.entries.filter((entry) => entry.msg === msg);
  }
}

/** Polls `condition` every 10 ms; throws after `timeoutMs` (default 5 s). */
export async function waitFor(what: string, condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
