/**
 * Complete, synchronous writes of log lines to a file descriptor (stdout), as
 * pino's synchronous destination makes them: a full pipe (EAGAIN) is waited
 * for, a closed one (EPIPE) ends the output quietly. `stdoutLines()` batches
 * the agent's lines per event-loop turn in front of it and writes what is
 * pending when the process exits.
 */
import { writeSync } from 'node:fs';
import { LineBatch } from '../agent/telemetry/line-batch.ts';

const pause = new Int32Array(new SharedArrayBuffer(4));

export function fdLineSink(fd: number): (bytes: Uint8Array) => void {
  let closed = false;
  return (bytes) => {
    if (closed) return;
    let off = 0;
    while (off < bytes.length) {
      try {
        off += writeSync(fd, bytes, off, bytes.length - off);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN' || code === 'EBUSY') {
          Atomics.wait(pause, 0, 0, 10);
          continue;
        }
        if (code === 'EPIPE') {
          closed = true;
          return;
        }
        throw e;
      }
    }
  };
}

/**
 * The process's stdout as one LineBatch (one write per event-loop turn),
 * flushed on exit: process.exit, the end of the event loop and an uncaught
 * exception all emit `exit` (SIGTERM and SIGINT go through the agent's drain,
 * which ends in process.exit).
 */
export function stdoutLines(): LineBatch {
  const lines = new LineBatch(fdLineSink(1));
  process.on('exit', () => lines.flush());
  return lines;
}
