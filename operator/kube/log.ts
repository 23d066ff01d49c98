/**
 * The logging calls the Kubernetes plumbing makes: pino's method shape, so a
 * pino logger (or a child of one) is passed as is. Messages are fixed short
 * phrases; variable data goes in the fields object.
 */

/** A pino-shaped logger. */
export interface KubeLogger {
  debug(fields: object, msg: string): void;
  info(fields: object, msg: string): void;
  warn(fields: object, msg: string): void;
  error(fields: object, msg: string): void;
}

const discard = (): void => {};

/** A logger that drops everything: the default of every `log` option here. */
export const silentLogger: KubeLogger = Object.freeze({
  debug: discard,
  info: discard,
  warn: discard,
  error: discard,
});

/** The loggable part of an error: its message, and its code or HTTP status when it has one. */
export function errorFields(error: unknown): { err: string; code?: string | number } {
  if (!(error instanceof Error)) return { err: String(error) };
  const { code, statusCode } = error as { code?: unknown; statusCode?: unknown };
  const status = typeof code === 'string' || typeof code === 'number' ? code : statusCode;
  const cause = error.cause instanceof Error ? `: ${error.cause.message}` : '';
  const err = `${error.name}: ${error.message.split('\n')[0] ?? ''}${cause}`;
  return typeof status === 'string' || typeof status === 'number' ? { err, code: status } : { err };
}
