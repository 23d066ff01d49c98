/**
 * The fixed-rate load generator as its own process, so that its heap is fresh
 * and small (autocannon's garbage in the bench runner would otherwise pause it
 * mid-measurement). Runs a paced warm-up, prints `{"phase":"measure"}`, runs
 * the measured window, prints the PacedResult as one JSON line, and waits for
 * SIGTERM (so the runner can still read its CPU time).
 *
 *   node bench/paced-client.ts --url URL --rate 1000 --warmup 1 --duration 8 [--header 'k: v']...
 *     [--method POST --body '{"json":1}' --status 201]
 *
 * `--body` is sent as UTF-8 with its Content-Length (give its Content-Type with --header);
 * `--status` is the status every response must have (default 200). For an https URL, mTLS:
 * `--cert FILE --key FILE --ca FILE --servername NAME` (PEM files). `--round-robin` spreads
 * the requests over every connection (none idles into the server's keep-alive timeout).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { paced } from './load.ts';

const { values } = parseArgs({
  options: {
    url: { type: 'string' },
    rate: { type: 'string', default: '1000' },
    warmup: { type: 'string', default: '1' },
    duration: { type: 'string', default: '8' },
    connections: { type: 'string', default: '32' },
    header: { type: 'string', multiple: true, default: [] },
    method: { type: 'string', default: 'GET' },
    body: { type: 'string' },
    status: { type: 'string', default: '200' },
    cert: { type: 'string' },
    key: { type: 'string' },
    ca: { type: 'string' },
    servername: { type: 'string', default: 'localhost' },
    'round-robin': { type: 'boolean', default: false },
  },
});
if (!values.url) {
  process.stderr.write(
    'usage: node bench/paced-client.ts --url URL [--rate N] [--duration S] [--header "k: v"] [--method M --body B --status N]\n' +
      '       [--cert FILE --key FILE --ca FILE --servername NAME] [--round-robin]\n',
  );
  process.exit(2);
}
const headers: Record<string, string> = {};
for (const h of values.header) {
  const i = h.indexOf(':');
  if (i > 0) headers[h.slice(0, i).trim().toLowerCase()] = h.slice(i + 1).trim();
}
const { cert, key, ca } = values;
const tlsOptions =
  cert && key && ca
    ? {
        cert: readFileSync(cert, 'utf8'),
        key: readFileSync(key, 'utf8'),
        ca: readFileSync(ca, 'utf8'),
        servername: values.servername,
      }
    : null;
const base = {
  rate: Number(values.rate),
  roundRobin: values['round-robin'],
  ...(tlsOptions ? { tls: () => tlsOptions } : {}),
  connections: Number(values.connections),
  method: values.method,
  okStatus: Number(values.status),
  ...(values.body === undefined ? {} : { body: values.body }),
};
const warm = await paced(values.url, headers, { ...base, durationS: Number(values.warmup) });
process.stdout.write(
  `${JSON.stringify({ phase: 'measure', warmup: { ok: warm.ok, bad: warm.bad, errors: warm.errors, timeouts: warm.timeouts, statuses: warm.statuses } })}\n`,
);
const result = await paced(values.url, headers, { ...base, durationS: Number(values.duration) });
process.stdout.write(`${JSON.stringify({ result })}\n`);
// Stay until the runner has read this process's CPU time (it sends SIGTERM); never more than 30 s.
setTimeout(() => process.exit(0), 30_000);
process.once('SIGTERM', () => process.exit(0));
