/**
 * Complete, synchronous writes of log lines to a file descriptor (stdout), as
 * pino's synchronous destination makes them: a full pipe (EAGAIN) is waited
 * for, a closed one (EPIPE) ends the output quietly. Lines written through
 * both stay in order.
 */
import { writeSync } from 'node:fs';

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
