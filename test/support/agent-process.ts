/**
 * Test support for driving the real agent process: a recording upstream, the
 * `bin/tollgate agent` child process on ephemeral ports, and a raw HTTP client
 * that sends the path exactly as given (no client-side normalization).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer, type IncomingHttpHeaders, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

const root = new URL('../..', import.meta.url).pathname;

export interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
}

/** The app: records every request it receives; /slow never answers. */
export function startUpstream(): Promise<{ server: Server; port: number; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    if (req.url?.startsWith('/v1/slow')) return;
    req.resume();
    req.on('end', () => {
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

export function send(
  port: number,
  path: string,
  headers: Record<string, string> = {},
  method = 'GET',
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, headers, agent: false }, (res) => {
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

export function startAgent(
  policy: string,
  upstreamPort: number,
): Promise<{ proc: ChildProcess; port: number; admin: number }> {
  const proc = spawn(
    join(root, 'bin/tollgate'),
    [
      'agent',
      '--policy',
      policy,
      '--upstream',
      `http://127.0.0.1:${upstreamPort}`,
      '--listen',
      '127.0.0.1:0',
      '--admin',
      '127.0.0.1:0',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  return new Promise((resolve, reject) => {
    let out = '';
    proc.stdout?.setEncoding('utf8');
    proc.stdout?.on('data', (chunk: string) => {
      out += chunk;
      const m = /"listen":"[^"]*:(\d+)","admin":"[^"]*:(\d+)"/.exec(out);
      if (m) resolve({ proc, port: Number(m[1]), admin: Number(m[2]) });
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
