/**
 * Load generators: autocannon for maximum throughput (closed loop, N
 * connections), and an open-loop paced generator for latency at a fixed rate.
 *
 * Why not autocannon's `overallRate` for the fixed rate: autocannon records
 * latencies in an integer-millisecond histogram (a 0.25 ms budget cannot be
 * seen), and its rate limit lets each connection send its per-second quota
 * back to back and then sleep, which measures bursts, not a steady 1000 req/s.
 * The paced generator sends one request every 1/rate s over raw keep-alive
 * sockets and times each response (head and body) with performance.now()
 * (µs), from the actual write (the schedule lag is reported separately). A
 * first version used an undici Pool and a setImmediate spin for pacing: the
 * generator then allocated enough to scavenge every ~20 ms, and its own GC
 * pauses (0.3–5 ms) became the p99.
 */

import { connect, type Socket } from 'node:net';
import { type ConnectionOptions, connect as tlsConnect } from 'node:tls';
import autocannon from 'autocannon';

/** A client certificate and what to trust, for a load generator speaking mTLS (PEM text). */
export interface ClientTls {
  cert: string;
  key: string;
  ca: string;
  /** SNI and the name the server certificate is checked against. */
  servername: string;
}

export interface Counts {
  /** Responses with the expected status (200, or the request's `okStatus`). */
  ok: number;
  /** Responses with any other status. */
  bad: number;
  errors: number;
  timeouts: number;
  statuses: Record<string, number>;
  /** The first error seen, for the failure message. */
  firstError?: string;
}

export interface MaxResult extends Counts {
  rps: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  durationS: number;
}

/** The request a bench case sends: GET without a body unless told otherwise. */
export interface RequestShape {
  /** Default GET. */
  method?: string;
  /** Sent as UTF-8 with its Content-Length (the caller sets Content-Type in the headers). */
  body?: string;
  /** The status every response must have (default 200). */
  okStatus?: number;
}

/**
 * Closed-loop maximum throughput. Latencies in ms (autocannon's integer-ms
 * histogram). With `tls` (an https URL) every connection presents the client
 * certificate; autocannon does not check the server's certificate (it sets
 * `rejectUnauthorized: false`), which changes nothing on the server's side.
 */
export function maxThroughput(
  url: string,
  headers: Record<string, string>,
  opts: { connections: number; durationS: number; tls?: ClientTls | undefined } & RequestShape,
): Promise<MaxResult> {
  const okStatus = String(opts.okStatus ?? 200);
  return new Promise((resolve, reject) => {
    autocannon(
      {
        url,
        headers,
        method: opts.method ?? 'GET',
        ...(opts.body === undefined ? {} : { body: opts.body }),
        connections: opts.connections,
        pipelining: 1,
        duration: opts.durationS,
        timeout: 10,
        ...(opts.tls
          ? {
              servername: opts.tls.servername,
              tlsOptions: { cert: opts.tls.cert, key: opts.tls.key, ca: opts.tls.ca },
            }
          : {}),
      },
      (err, r) => {
        if (err) {
          reject(err);
          return;
        }
        const statuses = Object.fromEntries(Object.entries(r.statusCodeStats).map(([k, v]) => [k, v.count]));
        const ok = statuses[okStatus] ?? 0;
        const all = Object.values(statuses).reduce((a, b) => a + b, 0);
        resolve({
          rps: ok / r.duration,
          p50: r.latency.p50,
          p90: r.latency.p90,
          p99: r.latency.p99,
          max: r.latency.max,
          durationS: r.duration,
          ok,
          bad: all - ok,
          errors: r.errors,
          timeouts: r.timeouts,
          statuses,
        });
      },
    );
  });
}

export interface PacedResult extends Counts {
  /** Response times in ms (µs resolution), one per response with the expected status. */
  latencies: number[];
  sent: number;
  achievedRps: number;
  /** How late sends were against the schedule (timer granularity), p99 in ms. */
  lagP99: number;
  /** Sends that found every connection busy and had to wait for one. */
  queued: number;
  /** Connections opened, the first ones included (more with `maxRequestsPerConnection` or server closes). */
  connectionsOpened: number;
}

/** How a RawConnection connects: plain TCP, or TLS with options read at every (re)connect. */
interface Dial {
  host: string;
  port: number;
  /** Read at every connect, so a renewed client certificate is used by the next connection. */
  tls: (() => ConnectionOptions) | null;
  /** Close the connection after this many responses (0: never); the next send reconnects. */
  maxRequests: number;
  onConnect: () => void;
}

/**
 * One keep-alive HTTP/1.1 connection carrying one request at a time, with a
 * minimal response framer (Content-Length or chunked without trailers): the
 * load generator allocates almost nothing per request, so its own GC pauses
 * do not show up as latency.
 */
class RawConnection {
  readonly #dial: Dial;
  #socket: Socket;
  #buf: Buffer | null = null;
  #t0 = 0;
  #served = 0;
  #onDone: ((status: number, ms: number) => void) | null = null;
  #onError: ((e: Error) => void) | null = null;
  readonly ready: Promise<void>;

  /** `served`: responses counted as already served on the first connection (staggers the recycling). */
  constructor(dial: Dial, served = 0) {
    this.#dial = dial;
    this.#socket = this.#connect();
    this.#served = served;
    const socket = this.#socket;
    this.ready = new Promise((resolve, reject) => {
      socket.once(dial.tls ? 'secureConnect' : 'connect', () => resolve());
      socket.once('error', reject);
    });
  }

  get busy(): boolean {
    return this.#onDone !== null;
  }

  #connect(): Socket {
    const { host, port, tls } = this.#dial;
    const socket = tls
      ? tlsConnect({ ...tls(), host, port }).setNoDelay(true)
      : connect({ host, port, noDelay: true });
    this.#served = 0;
    this.#dial.onConnect();
    // A replaced socket's late events (its close after a recycle) must not touch the next request.
    socket.on('data', (chunk: Buffer) => {
      if (socket === this.#socket) this.#data(chunk);
    });
    socket.on('error', (e) => {
      if (socket === this.#socket) this.#fail(e);
    });
    socket.on('close', () => {
      if (socket === this.#socket) this.#fail(new Error('connection closed'));
    });
    return socket;
  }

  send(request: Buffer, onDone: (status: number, ms: number) => void, onError: (e: Error) => void): void {
    if (this.#socket.destroyed) this.#socket = this.#connect();
    this.#onDone = onDone;
    this.#onError = onError;
    this.#buf = null;
    this.#t0 = performance.now();
    this.#socket.write(request);
  }

  #fail(e: Error): void {
    const onError = this.#onError;
    this.#onDone = null;
    this.#onError = null;
    if (onError) onError(e);
  }

  #data(chunk: Buffer): void {
    const t1 = performance.now();
    if (!this.#onDone) return;
    const buf = this.#buf === null ? chunk : Buffer.concat([this.#buf, chunk]);
    this.#buf = buf;
    const headEnd = buf.indexOf('\r\n\r\n');
    if (headEnd < 0) return;
    const head = buf.toString('latin1', 0, headEnd);
    const status = Number(head.slice(9, 12));
    const length = /\r\ncontent-length:[ \t]*(\d+)/i.exec(head);
    let complete: boolean;
    if (length?.[1] !== undefined) complete = buf.length >= headEnd + 4 + Number(length[1]);
    else if (/\r\ntransfer-encoding:[^\r]*chunked/i.test(head))
      complete = buf.toString('latin1', buf.length - 5) === '0\r\n\r\n';
    else if (status === 204 || status === 304 || (status >= 100 && status < 200)) complete = true;
    else {
      this.#socket.destroy();
      this.#fail(new Error(`unframed response (status ${status})`));
      return;
    }
    if (!complete) return;
    const onDone = this.#onDone;
    this.#onDone = null;
    this.#onError = null;
    this.#buf = null;
    this.#served += 1;
    const recycle = this.#dial.maxRequests > 0 && this.#served >= this.#dial.maxRequests;
    if (recycle || /\r\nconnection:[ \t]*close/i.test(head)) this.#socket.destroy();
    onDone(status, t1 - this.#t0);
  }

  close(): void {
    this.#onDone = null;
    this.#onError = null;
    this.#socket.destroy();
  }
}

/** Options of `paced` beyond the request shape. */
export interface PacedOptions extends RequestShape {
  rate: number;
  durationS: number;
  /** Default 32. */
  connections?: number;
  /** For an https URL: TLS options read at every connect (a renewed client certificate is used by the next one). */
  tls?: (() => ConnectionOptions) | undefined;
  /** Close each connection after this many responses, staggered across connections (default 0: never). */
  maxRequestsPerConnection?: number;
  /** Spread sends round-robin over the free connections, so none idles into the server's keep-alive timeout (default: the first free one). */
  roundRobin?: boolean;
  /** How long to wait for stragglers after the last send before counting them as timeouts (default 5 s). */
  drainMs?: number;
}

/**
 * Open-loop paced load: `rate` requests per second for `durationS` seconds
 * (rate × durationS requests in all) over `connections` keep-alive
 * connections, each request timed from its write to its last byte. Sends are
 * paced by timers (about 1 ms granularity) and catch up when late, so a send
 * may find every connection busy: it then waits for the first free one
 * (counted in `queued`) and its latency counts from when it was due. Waits at
 * most `drainMs` for stragglers (then timeouts).
 */
export async function paced(
  url: string,
  headers: Record<string, string>,
  opts: PacedOptions,
): Promise<PacedResult> {
  const target = new URL(url);
  const secure = target.protocol === 'https:';
  if (secure !== (opts.tls !== undefined))
    throw new Error(`paced: ${url} needs tls options exactly when https`);
  const okStatus = opts.okStatus ?? 200;
  const body = opts.body === undefined ? null : Buffer.from(opts.body, 'utf8');
  const lines = [
    `${opts.method ?? 'GET'} ${target.pathname}${target.search} HTTP/1.1`,
    `host: ${target.host}`,
  ];
  for (const [k, v] of Object.entries(headers)) if (k !== 'content-length') lines.push(`${k}: ${v}`);
  if (body !== null) lines.push(`content-length: ${body.length}`);
  // One buffer, built once: head and body in a single write per request.
  const head = Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
  const request = body === null ? head : Buffer.concat([head, body]);
  let connectionsOpened = 0;
  const dial: Dial = {
    host: target.hostname,
    port: Number(target.port || (secure ? 443 : 80)),
    tls: opts.tls ?? null,
    maxRequests: opts.maxRequestsPerConnection ?? 0,
    onConnect: () => {
      connectionsOpened += 1;
    },
  };
  const n = opts.connections ?? 32;
  const conns = Array.from(
    { length: n },
    (_, i) => new RawConnection(dial, Math.floor((i * dial.maxRequests) / n)),
  );
  let cursor = 0;
  const freeConnection = (): RawConnection | undefined => {
    if (!opts.roundRobin) return conns.find((c) => !c.busy);
    for (let i = 0; i < n; i += 1) {
      const c = conns[(cursor + i) % n];
      if (c && !c.busy) {
        cursor = (cursor + i + 1) % n;
        return c;
      }
    }
    return undefined;
  };
  await Promise.all(conns.map((c) => c.ready));
  const total = Math.round(opts.rate * opts.durationS);
  const intervalMs = 1000 / opts.rate;
  const latencies: number[] = [];
  const lags: number[] = [];
  const statuses: Record<string, number> = {};
  const waiting: Array<{ scheduled: number; wantedAt: number }> = [];
  let sent = 0;
  let done = 0;
  let errors = 0;
  let queued = 0;
  let firstError: string | undefined;
  let lastDone = 0;
  const start = performance.now();
  // `wantedAt`: when the generator first tried to send. A send that found every connection busy
  // (the target stalled) is timed from then, not from when a connection freed up, so a stall is not
  // hidden by the generator waiting for it (coordinated omission).
  const dispatch = (conn: RawConnection, scheduled: number, wantedAt: number) => {
    const sentAt = performance.now();
    lags.push(sentAt - scheduled);
    const next = () => {
      const w = waiting.shift();
      if (w !== undefined) dispatch(conn, w.scheduled, w.wantedAt);
    };
    conn.send(
      request,
      (status, ms) => {
        statuses[status] = (statuses[status] ?? 0) + 1;
        if (status === okStatus) latencies.push(ms + (sentAt - wantedAt));
        done += 1;
        lastDone = performance.now();
        next();
      },
      (e) => {
        errors += 1;
        done += 1;
        firstError ??= e.message;
        next();
      },
    );
  };
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now();
      const due = Math.min(total, Math.floor((now - start) / intervalMs) + 1);
      while (sent < due) {
        const scheduled = start + sent * intervalMs;
        sent += 1;
        const free = freeConnection();
        if (free) dispatch(free, scheduled, performance.now());
        else {
          queued += 1;
          waiting.push({ scheduled, wantedAt: now });
        }
      }
      if (sent >= total) resolve();
      else setTimeout(tick, Math.max(0, start + sent * intervalMs - performance.now() - 0.5));
    };
    tick();
  });
  const deadline = performance.now() + (opts.drainMs ?? 5_000);
  while (done < sent && performance.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  const timeouts = sent - done;
  for (const c of conns) c.close();
  const ok = statuses[okStatus] ?? 0;
  const answered = Object.values(statuses).reduce((a, b) => a + b, 0);
  return {
    latencies,
    sent,
    achievedRps: done / ((lastDone - start) / 1000),
    lagP99: percentile(
      lags.sort((a, b) => a - b),
      0.99,
    ),
    queued,
    connectionsOpened,
    ok,
    bad: answered - ok,
    errors,
    timeouts,
    statuses,
    ...(firstError === undefined ? {} : { firstError }),
  };
}

/** The q-quantile (nearest rank) of ascending `sorted`. */
export function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank] ?? Number.NaN;
}
