/**
 * Test support for driving the real agent process: a recording upstream, the
 * `bin/tollgate agent` child process on ephemeral ports, and a raw HTTP client
 * that sends the path exactly as given (no client-side normalization).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer, type IncomingHttpHeaders, request, type Server } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { join } from 'node:path';

const root = new URL('../..', import.meta.url).pathname;

export interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  /** Body bytes received so far. */
  received: number;
  /** The whole body, once it ended; null while it streams or when the request was cut. */
  body: Buffer | null;
  /** True when the request was cut before its body ended. */
  aborted: boolean;
}

/** The app: records every request it receives (and its body); /slow never answers. */
export function startUpstream(): Promise<{ server: Server; port: number; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    const entry: Seen = {
      method: req.method ?? '',
      url: req.url ?? '',
      headers: req.headers,
      received: 0,
      body: null,
      aborted: false,
    };
    seen.push(entry);
    if (req.url?.startsWith('/v1/slow')) return;
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => {
      entry.received += chunk.length;
      chunks.push(chunk);
    });
    req.on('close', () => {
      if (!req.complete) entry.aborted = true;
    });
    req.on('error', () => {});
    req.on('end', () => {
      entry.body = Buffer.concat(chunks);
      res.writeHead(200, { 'content-type': 'application/json', connection: 'keep-alive' });
      res.end(JSON.stringify({ ok: true, url: req.url }));
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({ server, port: (server.address() as AddressInfo).port, seen }),
    ),
  );
}

export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** Sends a request with the path exactly as given; `localAddress` picks the client address (127.0.0.0/8). */
export function send(
  port: number,
  path: string,
  headers: Record<string, string> = {},
  method = 'GET',
  localAddress?: string,
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const options = { host: '127.0.0.1', port, path, method, headers, agent: false as const };
    const req = request(localAddress ? { ...options, localAddress } : options, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Sends a request with a body (Content-Length framing) and collects the answer. */
export function sendBody(
  port: number,
  path: string,
  body: string | Buffer,
  headers: Record<string, string> = {},
  method = 'POST',
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method,
        headers: { 'content-length': String(Buffer.byteLength(body)), ...headers },
        agent: false,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          text += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** A chunked upload over a raw socket: `chunks` are written one by one, each after `before(i)` resolves. */
export function sendChunked(
  port: number,
  path: string,
  headers: Record<string, string>,
  chunks: readonly Buffer[],
  before: (i: number) => Promise<void> = async () => {},
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    let settled = false;
    const finish = () => {
      if (settled) return;
      settled = true;
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), text });
    };
    socket.setEncoding('latin1');
    socket.on('data', (c: string) => {
      text += c;
    });
    socket.on('error', () => finish());
    socket.on('close', finish);
    socket.once('connect', () => {
      const lines = [
        `POST ${path} HTTP/1.1`,
        'host: test',
        'transfer-encoding: chunked',
        'connection: close',
      ];
      for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
      socket.write(`${lines.join('\r\n')}\r\n\r\n`);
      const write = async () => {
        for (let i = 0; i < chunks.length; i++) {
          await before(i);
          const chunk = chunks[i] ?? Buffer.alloc(0);
          if (socket.destroyed || text !== '') return;
          socket.write(`${chunk.length.toString(16)}\r\n`);
          socket.write(chunk);
          socket.write('\r\n');
        }
        if (!socket.destroyed) socket.write('0\r\n\r\n');
      };
      write().catch(reject);
    });
  });
}

export interface AgentProcess {
  proc: ChildProcess;
  port: number;
  admin: number;
  /** The outbound listener's port, when `--outbound` was given. */
  outbound?: number;
  /** Everything the process wrote so far, stdout and stderr (JSON log lines). */
  output(): string;
}

/**
 * Starts `tollgate agent` on ephemeral ports; `policy` null starts it without
 * `--policy` (operator mode: give `--operator` in `extraArgs`); `extraArgs` are
 * appended (e.g. `--redis-url`); `env` is added to the process environment.
 */
export function startAgent(
  policy: string | null,
  upstreamPort: number,
  extraArgs: readonly string[] = [],
  options: { env?: Readonly<Record<string, string>> } = {},
): Promise<AgentProcess> {
  const proc = spawn(
    join(root, 'bin/tollgate'),
    [
      'agent',
      ...(policy === null ? [] : ['--policy', policy]),
      '--upstream',
      `http://127.0.0.1:${upstreamPort}`,
      '--listen',
      '127.0.0.1:0',
      '--admin',
      '127.0.0.1:0',
      ...extraArgs,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...options.env } },
  );
  let out = '';
  const output = () => out;
  proc.stderr?.setEncoding('utf8');
  proc.stderr?.on('data', (chunk: string) => {
    out += chunk;
  });
  return new Promise((resolve, reject) => {
    proc.stdout?.setEncoding('utf8');
    proc.stdout?.on('data', (chunk: string) => {
      out += chunk;
      const m = /"listen":"[^"]*:(\d+)","admin":"[^"]*:(\d+)"(?:,"outbound":"[^"]*:(\d+)")?/.exec(out);
      if (m)
        resolve({
          proc,
          port: Number(m[1]),
          admin: Number(m[2]),
          ...(m[3] ? { outbound: Number(m[3]) } : {}),
          output,
        });
    });
    proc.on('exit', (code) => reject(new Error(`agent exited ${code}: ${out}`)));
  });
}

export async function eventually(check: () => Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail('condition not reached in time');
}
