/**
 * The e2e pod's client, run inside a pod's network namespace. Prints one JSON
 * line: `{status, headers, body}` for an HTTP GET, `{connected: true}` or
 * `{error: CODE}` for a bare TCP connect. With `--uid N` it first drops to
 * that UID (1337: the agent's, whose connections are not captured).
 * Usage: node pod-client.ts [--uid N] (get URL [HEADER:VALUE]... | connect HOST PORT)
 */
import { request } from 'node:http';
import { connect } from 'node:net';

const args = process.argv.slice(2);
if (args[0] === '--uid') {
  const uid = Number(args[1]);
  const { setgroups, setgid, setuid } = process;
  if (!setgroups || !setgid || !setuid) throw new Error('needs POSIX credentials');
  setgroups([]);
  setgid(uid);
  setuid(uid);
  args.splice(0, 2);
}
// Written, then exit: console.log on a pipe is asynchronous and exit would cut it.
const done = (result: object) => process.stdout.write(`${JSON.stringify(result)}\n`, () => process.exit(0));
setTimeout(() => done({ error: 'TIMEOUT' }), 5_000).unref();

const [mode, ...rest] = args;
if (mode === 'connect') {
  const socket = connect(Number(rest[1]), rest[0] ?? '');
  socket.on('connect', () => done({ connected: true }));
  socket.on('error', (e: Error & { code?: string }) => done({ error: e.code ?? e.message }));
} else {
  const headers = Object.fromEntries(
    rest.slice(1).map((h) => [h.slice(0, h.indexOf(':')), h.slice(h.indexOf(':') + 1)]),
  );
  const req = request(rest[0] ?? '', { headers, agent: false }, (res) => {
    let body = '';
    res.setEncoding('utf8');
    res.on('data', (c: string) => {
      body += c;
    });
    res.on('end', () => done({ status: res.statusCode, headers: res.headers, body }));
  });
  req.on('error', (e: Error & { code?: string }) => done({ error: e.code ?? e.message }));
  req.end();
}
