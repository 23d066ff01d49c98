/**
 * Test support for a real `redis-server` (the Debian package `.ci/run`
 * installs): one throwaway process on a free loopback port, no persistence,
 * stopped and restarted at will. Tests that need it skip with
 * `REDIS_SKIP_REASON` where `redis-server` is not on PATH (a dev box without it).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { connect, createServer } from 'node:net';
import { delimiter, join } from 'node:path';

function findOnPath(name: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    try {
      accessSync(join(dir, name), constants.X_OK);
      return join(dir, name);
    } catch {
      // not here
    }
  }
  return null;
}

export const REDIS_SERVER = findOnPath('redis-server');

/** Why Redis tests skip, or false when they can run. */
export const REDIS_SKIP_REASON: string | false = REDIS_SERVER
  ? false
  : 'redis-server is not on PATH (apt-get install redis-server; .ci/run installs it)';

/** A free loopback port (free when this resolves; the caller binds it right away). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** True when a PING on the port gets an answer (+PONG, or -NOAUTH when a password is required). */
function pong(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.on('error', () => done(false));
    socket.on('data', (c: Buffer) => {
      text += c.toString('latin1');
      if (text.includes('\r\n')) done(text.startsWith('+PONG') || text.startsWith('-NOAUTH'));
    });
    socket.on('connect', () => socket.write('PING\r\n'));
  });
}

export interface RedisServerOptions {
  /** Required password (`--requirepass`): `url` then carries it. */
  password?: string;
}

export class RedisServer {
  readonly port: number;
  readonly #password: string | undefined;
  #proc: ChildProcess | undefined;

  private constructor(port: number, options: RedisServerOptions) {
    this.port = port;
    this.#password = options.password;
  }

  /** Starts a server on a free port and waits until it answers. */
  static async start(options: RedisServerOptions = {}): Promise<RedisServer> {
    const server = new RedisServer(await freePort(), options);
    await server.restart();
    return server;
  }

  /** `redis://[:password@]127.0.0.1:port`. */
  get url(): string {
    const auth = this.#password === undefined ? '' : `:${encodeURIComponent(this.#password)}@`;
    return `redis://${auth}127.0.0.1:${this.port}`;
  }

  /** (Re)starts the process on the same port; an empty dataset each time. */
  async restart(): Promise<void> {
    if (!REDIS_SERVER) throw new Error('redis-server is not on PATH');
    if (this.#proc) return;
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];
    if (this.#password !== undefined) args.push('--requirepass', this.#password);
    const proc = spawn(REDIS_SERVER, args, { stdio: 'ignore' });
    this.#proc = proc;
    proc.once('exit', () => {
      if (this.#proc === proc) this.#proc = undefined;
    });
    const end = Date.now() + 10_000;
    while (!(await pong(this.port))) {
      if (!this.#proc || Date.now() > end) throw new Error(`redis-server did not start on ${this.port}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Kills the process (SIGKILL: a crash, not a shutdown) and waits for it to exit. */
  async stop(): Promise<void> {
    const proc = this.#proc;
    if (!proc) return;
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGKILL');
    await exited;
    this.#proc = undefined;
  }
}
