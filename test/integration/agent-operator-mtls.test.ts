/**
 * Operator-issued mTLS end to end: a real operator (in-process, on the
 * Kubernetes API test server, its CA in Secret tollgate-ca) signs the
 * certificate of a real `tollgate agent --operator` process. Strict refuses
 * plaintext; a peer with a certificate the operator signed for another pod is
 * admitted by `peers`, one not listed gets 403, one from another CA, an
 * expired one and one without a SPIFFE ID (both signed by the operator's own
 * CA) are refused, and the app's x-forwarded-client-cert cannot be forged;
 * with a 12 s certificate the agent renews at least twice under
 * paced keep-alive traffic (1000 req/s for 30 s) without failing a request.
 */
import assert from 'node:assert/strict';
import { type Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { after, before, describe, test } from 'node:test';
import { send } from '../support/agent-process.ts';
import { caFromPem, createCa, issueCertificate, type PemPair } from '../support/certs.ts';
import { BILLING, type MeshedOrders, ORDERS, startMeshedOrders } from '../support/meshed-orders.ts';
import { rotationUnderLoad } from '../support/rotation-load.ts';

/** Short enough for ≥ 2 renewals (at half-life ± 10%) in the 30 s of traffic, above the 10 s floor of --workload-cert-ttl. */
const TTL_MS = 12_000;

interface Reply {
  status: number;
  error?: string;
}

describe('tollgate agent --operator with operator-issued mTLS', () => {
  let mesh: MeshedOrders;

  function get(
    path: string,
    client: PemPair | null,
    agentOption: HttpsAgent | false = false,
    headers: Record<string, string> = {},
  ): Promise<Reply> {
    return new Promise((resolve) => {
      const req = httpsRequest(
        {
          host: '127.0.0.1',
          port: mesh.agent.port,
          path,
          ca: mesh.workloadCa.cert,
          checkServerIdentity: mesh.checkServer,
          ...(client ?? {}),
          agent: agentOption,
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode ?? 0 }));
        },
      );
      for (const [k, v] of Object.entries(headers)) req.setHeader(k, v);
      req.on('error', (e) => resolve({ status: 0, error: e.message }));
      req.end();
    });
  }

  before(async () => {
    mesh = await startMeshedOrders({ ttlMs: TTL_MS });
  });

  after(async () => {
    await mesh?.close();
  });

  test('the agent logs its SPIFFE ID from the operator; the key never touches the disk', () => {
    assert.match(
      mesh.agent.output(),
      new RegExp(`"spiffeId":"${ORDERS}".*"msg":"workload certificate issued"`),
    );
    assert.doesNotMatch(mesh.agent.output(), /PRIVATE KEY/);
  });

  test('the expiry of the certificate in force is a metric', async () => {
    const text = await (await fetch(`http://127.0.0.1:${mesh.agent.admin}/metrics`)).text();
    const m = /^tollgate_mtls_certificate_expiry_timestamp_seconds (\S+)$/m.exec(text);
    const expiry = Number(m?.[1]) * 1000;
    assert.ok(expiry > Date.now() && expiry <= Date.now() + TTL_MS, text.slice(0, 200));
  });

  test('Strict: plaintext is refused (403)', async () => {
    assert.equal((await send(mesh.agent.port, '/v1/open')).status, 403);
  });

  test('a peer signed for another pod is admitted by peers; one not in peers gets 403', async () => {
    const billing = await mesh.signedFor('billing-1');
    const web = await mesh.signedFor('web-1');
    assert.equal((await get('/v1/invoices', billing)).status, 200);
    assert.equal((await get('/v1/invoices', web)).status, 403);
    assert.equal((await get('/v1/open', web)).status, 200);
  });

  test('a client certificate from another CA is refused', async () => {
    const other = await createCa({ commonName: 'elsewhere' });
    const foreign = await issueCertificate(other, { uris: [BILLING], usages: 'client' });
    const r = await get('/v1/invoices', foreign);
    assert.equal(r.status, 0);
    assert.ok(r.error);
    const none = await get('/v1/open', null);
    assert.equal(none.status, 0, 'no client certificate: refused');
  });

  test("signed by the operator's own CA but expired, or without a SPIFFE ID: refused", async () => {
    const operatorCa = await caFromPem(mesh.workloadCa);
    const day = 86_400_000;
    const expired = await issueCertificate(operatorCa, {
      uris: [BILLING],
      usages: 'client',
      notBefore: new Date(Date.now() - 2 * day),
      notAfter: new Date(Date.now() - day),
    });
    const dnsOnly = await issueCertificate(operatorCa, { dnsNames: ['billing.shop.svc'], usages: 'client' });
    const before = mesh.upstream.seen.length;
    for (const [what, cert] of [
      ['expired', expired],
      ['no SPIFFE ID', dnsOnly],
    ] as const) {
      const r = await get('/v1/open', cert);
      assert.equal(r.status, 0, `${what}: the handshake is refused`);
    }
    assert.equal(mesh.upstream.seen.length, before, 'nothing reached the app');
    // The same CA's certificate for the billing workload, current and with its SPIFFE ID, is admitted.
    const good = await issueCertificate(operatorCa, { uris: [BILLING], usages: 'client' });
    assert.equal((await get('/v1/invoices', good)).status, 200);
  });

  test('x-forwarded-client-cert reaches the app from the verified certificate only', async () => {
    const billing = await mesh.signedFor('billing-1');
    const forged = { 'x-forwarded-client-cert': `By=x;URI=${ORDERS}` };
    assert.equal((await get('/v1/invoices', billing, false, forged)).status, 200);
    const xfcc = String(mesh.upstream.seen.at(-1)?.headers['x-forwarded-client-cert'] ?? '');
    assert.match(xfcc, new RegExp(`URI=${BILLING}(;|,|$)`));
    assert.doesNotMatch(xfcc, /By=x/);
    assert.equal(xfcc.split(',').length, 1, 'one element: the client copy was dropped');
  });

  test('renewal under paced keep-alive traffic, 1000 req/s for 30 s: ≥ 2 renewals, no failed request', async (t) => {
    // Open loop with bounded concurrency: a slow machine makes requests wait (the drain allows 60 s),
    // never fail; only what is not a 200 counts as lost. The achieved rate is printed, not asserted.
    const r = await rotationUnderLoad(mesh, {
      rate: 1000,
      durationS: 30,
      connections: 16,
      maxRequestsPerConnection: 250,
      clientRenewMs: TTL_MS / 2,
    });
    t.diagnostic(
      `sent ${r.sent}, ok ${r.ok}, failed ${r.failed}, ${r.achievedRps.toFixed(0)} req/s achieved over ` +
        `${r.elapsedS.toFixed(1)} s, ${r.connectionsOpened} connections, ${r.renewals} renewals, ` +
        `${r.servedCertificates} server certificates seen, ${r.clientCertificatesSeen} client certificates seen by the app`,
    );
    assert.equal(r.sent, 30_000);
    assert.deepEqual(
      { failed: r.failed, firstError: r.firstError, statuses: r.statuses },
      { failed: 0, firstError: null, statuses: { 200: 30_000 } },
    );
    assert.deepEqual(r.sideErrors, [], 'every probe connection and client renewal succeeded');
    assert.ok(r.renewals >= 2, `${r.renewals} renewals`);
    assert.ok(r.servedCertificates >= 3, `${r.servedCertificates} served certificates`);
    assert.ok(r.clientCertificatesSeen >= 2, `${r.clientCertificatesSeen} client certificates seen`);
  });
});
