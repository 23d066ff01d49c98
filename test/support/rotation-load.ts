/**
 * Certificate rotation under continuous traffic, on a MeshedOrders agent:
 * open-loop paced keep-alive mTLS load (bench/load.ts `paced`, bounded by
 * its connections) from the billing workload while the operator's short TTL
 * makes the agent renew; the client renews its own certificate like a
 * sidecar would (new connections use the new one) and closes each connection
 * after a number of responses, so new handshakes happen across the renewals;
 * a prober records the certificate every new connection is served. Used by
 * test/integration/agent-operator-mtls.test.ts and `npm run bench -- --cases
 * rotation`; it asserts nothing and measures no latency.
 */
import { paced } from '../../bench/load.ts';
import type { PemPair } from './certs.ts';
import type { MeshedOrders } from './meshed-orders.ts';

export interface RotationOptions {
  /** Requests per second, and for how long: rate × durationS requests in all. */
  rate: number;
  durationS: number;
  /** Keep-alive connections, each carrying one request at a time (the bound on concurrency). */
  connections: number;
  /** Each connection closes after this many responses (staggered); the next request reconnects. */
  maxRequestsPerConnection: number;
  /** How often the client gets a new certificate from the operator. */
  clientRenewMs: number;
  /** How often the prober opens a new connection to see the served certificate (default 500 ms). */
  probeEveryMs?: number;
  /** How long to wait for requests still queued after the last send (default 60 s: slow is not lost). */
  drainMs?: number;
}

export interface RotationResult {
  sent: number;
  /** 200 answers. */
  ok: number;
  /** Anything but a 200: other statuses, connection errors, requests unanswered after the drain. */
  failed: number;
  statuses: Record<string, number>;
  firstError: string | null;
  /** Answers per second, from the first send to the last answer. */
  achievedRps: number;
  elapsedS: number;
  connectionsOpened: number;
  /** Distinct certificates the agent served to new connections (before, during and right after the load). */
  servedCertificates: number;
  /** `workload certificate issued` lines the agent logged while the load ran. */
  renewals: number;
  /** Client certificates the client used (its renewals + 1). */
  clientCertificates: number;
  /** Distinct client certificates the app saw in x-forwarded-client-cert during the load. */
  clientCertificatesSeen: number;
  /** Failed probe connections and client renewals (each stops its loop): connections lost to the rotation too. */
  sideErrors: string[];
}

const issuedLines = (output: string) =>
  output.split('\n').filter((l) => l.includes('workload certificate issued')).length;

export async function rotationUnderLoad(mesh: MeshedOrders, o: RotationOptions): Promise<RotationResult> {
  let client: PemPair = await mesh.signedFor('billing-1');
  let clientCertificates = 1;
  const serials = new Set<string>([await mesh.servedSerial(client)]);
  const issuedBefore = issuedLines(mesh.agent.output());
  const seenBefore = mesh.upstream.seen.length;
  let running = true;
  let stop: () => void = () => {};
  const stopped = new Promise<void>((resolve) => {
    stop = resolve;
  });
  const sleep = (ms: number) => Promise.race([new Promise<void>((r) => setTimeout(r, ms).unref()), stopped]);
  const sideErrors: string[] = [];
  const refresher = (async () => {
    for (;;) {
      await sleep(o.clientRenewMs);
      if (!running) return;
      client = await mesh.signedFor('billing-1');
      clientCertificates += 1;
    }
  })().catch((e: unknown) => {
    sideErrors.push(`client renewal: ${(e as Error).message}`);
  });
  const prober = (async () => {
    for (;;) {
      await sleep(o.probeEveryMs ?? 500);
      if (!running) return;
      serials.add(await mesh.servedSerial(client));
    }
  })().catch((e: unknown) => {
    sideErrors.push(`probe: ${(e as Error).message}`);
  });
  const started = performance.now();
  let result: Awaited<ReturnType<typeof paced>>;
  try {
    result = await paced(
      `https://127.0.0.1:${mesh.agent.port}/v1/invoices`,
      {},
      {
        rate: o.rate,
        durationS: o.durationS,
        connections: o.connections,
        maxRequestsPerConnection: o.maxRequestsPerConnection,
        roundRobin: true,
        drainMs: o.drainMs ?? 60_000,
        tls: () => ({ ca: mesh.workloadCa.cert, checkServerIdentity: mesh.checkServer, ...client }),
      },
    );
  } finally {
    running = false;
    stop();
    await Promise.all([refresher, prober]);
  }
  const elapsedS = (performance.now() - started) / 1000;
  serials.add(await mesh.servedSerial(client));
  const xfcc = new Set(
    mesh.upstream.seen
      .slice(seenBefore)
      .map((s) => /Hash=([0-9a-f]+)/.exec(String(s.headers['x-forwarded-client-cert']))?.[1])
      .filter((h) => h !== undefined),
  );
  return {
    sent: result.sent,
    ok: result.ok,
    failed: result.bad + result.errors + result.timeouts,
    statuses: result.statuses,
    firstError: result.firstError ?? null,
    achievedRps: result.achievedRps,
    elapsedS,
    connectionsOpened: result.connectionsOpened,
    servedCertificates: serials.size,
    renewals: issuedLines(mesh.agent.output()) - issuedBefore,
    clientCertificates,
    clientCertificatesSeen: xfcc.size,
    sideErrors,
  };
}
