/**
 * `npm run bench:operator`: the operator at scale. One `tollgate operator`
 * process against the Kubernetes API test server, 100 ApiPolicies in 10
 * namespaces, 500 meshed pods and 500 simulated sidecars (real gRPC/TLS
 * streams, in this process, each loading every bundle with the agent's engine
 * before it ACKs). Measured: time until every sidecar has its first bundle;
 * for policy changes, the time from the change until each affected sidecar
 * has ACKed it (p50/p99 per sidecar, and until the last one per change); that
 * unaffected sidecars get nothing; the operator's RSS. Targets (issue #6):
 * p99 ≤ 1 s, RSS ≤ 200 MB. Writes its section of bench/RESULTS.md.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import {
  createPod,
  freePort,
  type OperatorProcess,
  podToken,
  policyManifest,
  startOperatorEnv,
  startOperatorProcess,
  writeKubeconfig,
} from '../test/support/operator-env.ts';
import { SimulatedSidecar } from '../test/support/sidecar-client.ts';
import { writeSection } from './results-section.ts';

const NAMESPACES = 10;
const PODS_PER_NAMESPACE = 50;
const APPS = 9;
const NARROW_CHANGES = 20;
const API = { group: 'tollgate.dev', version: 'v1alpha1', plural: 'apipolicies' };

function log(msg: string): void {
  process.stderr.write(`[bench:operator] ${msg}\n`);
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

function memory(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) =>
    Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN);
  return { rss: kib('VmRSS') / 1024, hwm: kib('VmHWM') / 1024 };
}

async function settle(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

async function main(): Promise<void> {
  const env = await startOperatorEnv({ historyLimit: 100_000 });
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-bench-operator-'));
  const sidecars: SimulatedSidecar[] = [];
  let operator: OperatorProcess | undefined;
  try {
    log('creating 10 namespaces, 100 policies, 500 pods');
    const namespaces = Array.from({ length: NAMESPACES }, (_, i) => `team-${i}`);
    const pods: V1Pod[] = [];
    for (const ns of namespaces) {
      await env.core.createNamespace({ body: { metadata: { name: ns } } });
      await env.core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'app' } } });
      // One namespace-wide policy on port 9090 (older), one per app on port 8080: no conflicts.
      await env.custom.createNamespacedCustomObject({
        ...API,
        namespace: ns,
        body: policyManifest('wide', { selector: { tier: 'backend' }, port: 9090, paths: ['/metrics-v0'] }),
      });
      for (let a = 0; a < APPS; a++) {
        await env.custom.createNamespacedCustomObject({
          ...API,
          namespace: ns,
          body: policyManifest(`svc-${a}`, { selector: { app: `svc-${a}` }, port: 8080, paths: ['/v0'] }),
        });
      }
      for (let k = 0; k < PODS_PER_NAMESPACE; k++) {
        pods.push(
          await createPod(
            env,
            ns,
            `pod-${k}`,
            { tier: 'backend', app: `svc-${k % APPS}` },
            { serviceAccount: 'app' },
          ),
        );
      }
    }
    const kubeconfig = join(dir, 'kubeconfig');
    writeKubeconfig(env, kubeconfig);
    const [grpcPort, healthPort] = [await freePort(), await freePort()];
    operator = await startOperatorProcess(kubeconfig, grpcPort, healthPort);
    const pid = operator.proc.pid as number;
    const idle = memory(pid);
    log(`operator ready (pid ${pid}, RSS ${idle.rss.toFixed(0)} MiB); minting 500 tokens`);
    const tokens = await Promise.all(pods.map((p) => podToken(env, p)));

    log('connecting 500 sidecars');
    const t0 = performance.now();
    pods.forEach((pod, i) => {
      sidecars.push(
        new SimulatedSidecar({
          address: `127.0.0.1:${grpcPort}`,
          ca: env.ca.cert,
          serverName: 'localhost',
          hello: {
            podName: pod.metadata?.name ?? '',
            podNamespace: pod.metadata?.namespace ?? '',
            token: tokens[i] ?? '',
          },
        }),
      );
    });
    const first = await Promise.all(sidecars.map((s) => s.waitForBundle(() => true, 60_000)));
    const connectAll = Math.max(...first.map((b) => b.at)) - t0;
    const nacks = first.filter((b) => JSON.parse(b.json).policies.length !== 2).length;
    if (nacks > 0) throw new Error(`${nacks} sidecars did not get their two policies`);
    log(`all 500 have their first bundle after ${connectAll.toFixed(0)} ms`);
    await settle(2000);
    const connected = memory(pid);
    const scrape = await (await fetch(`http://127.0.0.1:${healthPort}/metrics`)).text();
    log(
      scrape
        .split('\n')
        .filter((l) => /^(process_|nodejs_)/.test(l))
        .join(', '),
    );

    const perSidecar: number[] = [];
    const perChange: number[] = [];
    const narrowSidecar: number[] = [];
    const narrowChange: number[] = [];
    let strayPushes = 0;
    const byNamespace = (ns: string) => sidecars.filter((_, i) => pods[i]?.metadata?.namespace === ns);

    async function change(
      ns: string,
      name: string,
      selector: Record<string, string>,
      port: number,
      path: string,
      affected: SimulatedSidecar[],
    ) {
      const others = sidecars.filter((s) => !affected.includes(s));
      const before = others.reduce((n, s) => n + s.bundles.length, 0);
      const current = (await env.custom.getNamespacedCustomObject({ ...API, namespace: ns, name })) as Record<
        string,
        unknown
      >;
      const start = performance.now();
      await env.custom.replaceNamespacedCustomObject({
        ...API,
        namespace: ns,
        name,
        body: { ...current, spec: policyManifest(name, { selector, port, paths: [path] }).spec },
      });
      const got = await Promise.all(
        affected.map((s) => s.waitForBundle((b) => b.json.includes(`"${path}"`), 10_000)),
      );
      const latencies = got.map((b) => b.at - start);
      await settle(100);
      strayPushes += others.reduce((n, s) => n + s.bundles.length, 0) - before;
      return latencies;
    }

    log('10 namespace-wide changes (50 sidecars each)');
    for (const [i, ns] of namespaces.entries()) {
      const l = await change(ns, 'wide', { tier: 'backend' }, 9090, `/metrics-v${i + 1}`, byNamespace(ns));
      perSidecar.push(...l);
      perChange.push(Math.max(...l));
      await settle(300);
    }
    log(`${NARROW_CHANGES} single-app changes`);
    for (let c = 0; c < NARROW_CHANGES; c++) {
      const ns = namespaces[c % NAMESPACES] as string;
      const app = c % APPS;
      const affected = sidecars.filter(
        (_, i) => pods[i]?.metadata?.namespace === ns && pods[i]?.metadata?.labels?.app === `svc-${app}`,
      );
      const l = await change(ns, `svc-${app}`, { app: `svc-${app}` }, 8080, `/v${c + 1}`, affected);
      narrowSidecar.push(...l);
      narrowChange.push(Math.max(...l));
      await settle(100);
    }
    const end = memory(pid);
    const sort = (xs: number[]) => [...xs].sort((a, b) => a - b);
    const wide = sort(perSidecar);
    const wideAll = sort(perChange);
    const narrow = sort(narrowSidecar);
    const narrowAll = sort(narrowChange);
    const ms = (x: number) => `${x.toFixed(1)} ms`;
    const ok = (x: number, limit: number) => (x <= limit ? '✅' : '❌');
    const p99 = Math.max(percentile(wide, 99), percentile(narrow, 99));
    const lines = [
      '## Operator (`npm run bench:operator`)',
      '',
      `Run on ${new Date().toISOString()} (${cpus().length} cores, ${cpus()[0]?.model ?? 'cpu'}), bench/operator.ts: one \`tollgate operator\` process against the Kubernetes API test server (in the bench process), ${NAMESPACES} namespaces × (1 namespace-wide policy on port 9090 + ${APPS} per-app policies on port 8080) = ${NAMESPACES * (APPS + 1)} ApiPolicies, ${pods.length} meshed pods, ${sidecars.length} simulated sidecars (test/support/sidecar-client.ts: real gRPC over TLS, TokenReview-authenticated, each bundle loaded with PolicyEngine before the ACK). Latency = from the API write of the change until the sidecar received the bundle (it ACKs right after loading it).`,
      '',
      '| measure | value | target |',
      '| --- | --- | --- |',
      `| all ${sidecars.length} sidecars connected and holding their first bundle | ${ms(connectAll)} | — |`,
      `| namespace-wide change (${perSidecar.length} sidecar updates over ${perChange.length} changes): p50 / p99 per sidecar | ${ms(percentile(wide, 50))} / ${ms(percentile(wide, 99))} | p99 ≤ 1 s ${ok(percentile(wide, 99), 1000)} |`,
      `| namespace-wide change: until the last of 50 sidecars, p50 / max | ${ms(percentile(wideAll, 50))} / ${ms(wideAll.at(-1) ?? Number.NaN)} | — |`,
      `| single-app change (${narrowSidecar.length} updates over ${narrowChange.length} changes): p50 / p99 per sidecar | ${ms(percentile(narrow, 50))} / ${ms(percentile(narrow, 99))} | p99 ≤ 1 s ${ok(percentile(narrow, 99), 1000)} |`,
      `| single-app change: until the last affected sidecar, p50 / max | ${ms(percentile(narrowAll, 50))} / ${ms(narrowAll.at(-1) ?? Number.NaN)} | — |`,
      `| bundles pushed to sidecars a change did not affect | ${strayPushes} | 0 ${strayPushes === 0 ? '✅' : '❌'} |`,
      `| operator RSS: ready, no sidecars / 500 connected / after the changes (peak VmHWM) | ${idle.rss.toFixed(0)} / ${connected.rss.toFixed(0)} / ${end.rss.toFixed(0)} MiB (${end.hwm.toFixed(0)}) | ≤ 200 MB ${ok(end.hwm * 1.048576, 200)} |`,
      '',
      `Overall p99 ${ms(p99)}.`,
    ];
    const text = lines.join('\n');
    process.stdout.write(`${text}\n`);
    if (!process.argv.includes('--no-write')) {
      writeSection(new URL('./RESULTS.md', import.meta.url).pathname, 'operator', text);
      log('wrote the operator section of bench/RESULTS.md');
    }
  } finally {
    for (const s of sidecars) s.close();
    await operator?.kill();
    await env.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`[bench:operator] failed: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  },
);
