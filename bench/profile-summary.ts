/**
 * Summarizes a V8 .cpuprofile (node --cpu-prof): the top functions by self
 * time (file:function), self time grouped by origin (our code, node
 * internals, undici, jose, CEL, pino, GC...), and our own functions by total
 * (inclusive) time, so a note can say where the time goes.
 *
 *   node bench/profile-summary.ts bench/profiles/FILE.cpuprofile [--top 25] [--from-ms N]
 *
 * --from-ms skips the first N ms of the profile (startup, policy compile);
 * `npm run bench -- --cpu-prof` passes the time from spawn to the first load.
 */
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { parseArgs } from 'node:util';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const root = new URL('..', import.meta.url).pathname;

function shortFile(url: string): string {
  if (url === '') return '';
  const path = url.startsWith('file://') ? new URL(url).pathname : url;
  if (!path.startsWith('/')) return path;
  const rel = relative(root, path);
  const nm = rel.lastIndexOf('node_modules/');
  return nm >= 0 ? rel.slice(nm + 'node_modules/'.length) : rel;
}

/** Stream bindings whose self time is mostly the write syscall (on loopback, the whole TCP delivery). */
const SOCKET_WRITES = new Set([
  'writeLatin1String',
  'writeUtf8String',
  'writeBuffer',
  'writev',
  'writeAsciiString',
]);

/** Where a frame's code comes from. */
export function originOf(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (url === '') {
    if (SOCKET_WRITES.has(functionName))
      return 'socket writes (native; includes the kernel loopback TCP path)';
    if (functionName === '(garbage collector)') return 'GC';
    if (functionName === '(idle)') return 'idle';
    if (functionName === '(program)') return 'V8/native (program)';
    return 'native (builtins, C++)';
  }
  if (url.startsWith('node:')) return 'node internals';
  const f = shortFile(url);
  if (f.startsWith('undici/')) return 'undici';
  if (f.startsWith('jose/')) return 'jose';
  if (f.startsWith('@marcbachmann/cel-js/')) return 'cel-js';
  if (f.startsWith('pino') || f.startsWith('sonic-boom') || f.startsWith('thread-stream')) return 'pino';
  if (f.startsWith('lru-cache/')) return 'lru-cache';
  if (/^(dist\/)?(agent|policy|cli)\//.test(f)) return 'tollgate (our code)';
  return f.split('/')[0] ?? f;
}

function label(frame: CallFrame): string {
  const file = shortFile(frame.url) || '(native)';
  return `${file}:${frame.functionName || '(anonymous)'}`;
}

export interface Row {
  key: string;
  ms: number;
  pct: number;
}

export interface ProfileSummary {
  fromMs: number;
  totalMs: number;
  busyMs: number;
  samples: number;
  topSelf: Row[];
  byOrigin: Row[];
  ourTotal: Row[];
}

/** `fromMs`: ignore samples taken in the first `fromMs` ms of the profile (startup, policy compile). */
export function summarizeProfile(profile: CpuProfile, top = 20, fromMs = 0): ProfileSummary {
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of profile.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const self = new Map<string, number>();
  const origin = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let total = 0;
  let idle = 0;
  let at = 0;
  let counted = 0;
  profile.samples.forEach((id, i) => {
    const ms = (profile.timeDeltas[i] ?? 0) / 1000;
    at += ms;
    const node = byId.get(id);
    if (!node || at < fromMs) return;
    counted += 1;
    total += ms;
    if (node.callFrame.functionName === '(idle)') {
      idle += ms;
      return;
    }
    const key = label(node.callFrame);
    self.set(key, (self.get(key) ?? 0) + ms);
    const o = originOf(node.callFrame);
    origin.set(o, (origin.get(o) ?? 0) + ms);
    // Inclusive time: each of our functions on the stack, once per sample.
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const frame = byId.get(cur)?.callFrame;
      if (!frame || originOf(frame) !== 'tollgate (our code)') continue;
      const k = label(frame);
      if (seen.has(k)) continue;
      seen.add(k);
      inclusive.set(k, (inclusive.get(k) ?? 0) + ms);
    }
  });
  const busy = total - idle;
  const rows = (m: Map<string, number>, n: number) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([key, ms]) => ({ key, ms, pct: (ms / busy) * 100 }));
  return {
    totalMs: total,
    busyMs: busy,
    samples: counted,
    fromMs,
    topSelf: rows(self, top),
    byOrigin: rows(origin, 20),
    ourTotal: rows(inclusive, 15),
  };
}

export function renderProfileSummary(s: ProfileSummary): string {
  const fmt = (r: Row) => `${r.ms.toFixed(0).padStart(7)} ms ${r.pct.toFixed(1).padStart(5)}%  ${r.key}`;
  return [
    `samples ${s.samples}${s.fromMs > 0 ? ` (after the first ${(s.fromMs / 1000).toFixed(1)} s)` : ''}, ` +
      `wall ${(s.totalMs / 1000).toFixed(1)} s, busy (not idle) ${(s.busyMs / 1000).toFixed(1)} s; % of busy time`,
    '',
    'Top self time (file:function):',
    ...s.topSelf.map(fmt),
    '',
    'Self time by origin:',
    ...s.byOrigin.map(fmt),
    '',
    'Our code, total (inclusive) time:',
    ...s.ourTotal.map(fmt),
  ].join('\n');
}

export function summarizeFile(file: string, top = 20, fromMs = 0): string {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  return renderProfileSummary(summarizeProfile(profile, top, fromMs));
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    options: { top: { type: 'string', default: '25' }, 'from-ms': { type: 'string', default: '0' } },
    allowPositionals: true,
  });
  const file = positionals[0];
  if (!file) {
    process.stderr.write('usage: node bench/profile-summary.ts FILE.cpuprofile [--top N]\n');
    process.exit(2);
  }
  process.stdout.write(`${summarizeFile(file, Number(values.top), Number(values['from-ms']))}\n`);
}
