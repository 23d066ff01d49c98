/**
 * Standalone mTLS (`--tls-cert`, `--tls-key`, `--trust-bundle`): one inbound
 * port for plaintext and TLS, real certificates from a test CA. Strict refuses
 * plaintext and clients without an acceptable certificate; `peers` admits by
 * SPIFFE ID; x-forwarded-client-cert comes only from the verified certificate;
 * new files are picked up without dropping open connections.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { type AgentProcess, eventually, send, startAgent, startUpstream } from '../support/agent-process.ts';
import { createCa, issueCertificate, type PemPair, type TestCa } from '../support/certs.ts';

const TD = 'spiffe://cluster.local';
const SERVER_ID = `${TD}/ns/shop/sa/orders`;
const BILLING = `${TD}/ns/shop/sa/billing`;

function policy(mode: 'Strict' | 'Permissive'): string {
  return `apiVersion: tollgate.dev/v1alpha1
kind: ApiPolicy
metadata: {name: orders, namespace: shop}
spec:
  mtls: {mode: ${mode}}
  routes:
    - {name: billing-only, methods: [GET], path: /v1/invoices, allow: [{peers: ["${BILLING}"]}]}
    - {name: shop-peers, methods: [GET], path: /v1/shop, allow: [{namespaces: [shop]}]}
    - {name: open, methods: [GET], path: /v1/open, public: true}
`;
}

interface TlsReply {
  status: number;
  body: string;
  error?: string;
  peerId?: string;
}

describe('tollgate agent with mTLS from files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-mtls-'));
  const file = (name: string) => join(dir, name);
  let ca: TestCa;
  let clients: Record<string, PemPair>;
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  let strict: AgentProcess;
  let permissive: AgentProcess;

  function get(
    port: number,
    path: string,
    client: PemPair | null | undefined,
    headers: Record<string, string> = {},
    agent?: HttpsAgent,
  ): Promise<TlsReply> {
    return new Promise((resolve) => {
      const req = httpsRequest(
        {
          host: '127.0.0.1',
          port,
          path,
          headers,
          ca: ca.cert,
          servername: 'localhost',
          ...(client ? { cert: client.cert, key: client.key } : {}),
          agent: agent ?? false,
        },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => {
            body += c;
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        },
      );
      req.on('error', (e) => resolve({ status: 0, body: '', error: e.message }));
      req.end();
    });
  }

  before(async () => {
    ca = await createCa({ commonName: 'tollgate test mesh root' });
    const other = await createCa({ commonName: 'some other root' });
    const server = await issueCertificate(ca, { dnsNames: ['localhost'], uris: [SERVER_ID], usages: 'both' });
    const hour = 3_600_000;
    clients = {
      billing: await issueCertificate(ca, { uris: [BILLING], usages: 'client' }),
      web: await issueCertificate(ca, { uris: [`${TD}/ns/shop/sa/web`], usages: 'client' }),
      elsewhere: await issueCertificate(ca, { uris: [`${TD}/ns/prod/sa/web`], usages: 'client' }),
      foreign: await issueCertificate(other, { uris: [BILLING], usages: 'client' }),
      expired: await issueCertificate(ca, {
        uris: [BILLING],
        usages: 'client',
        notBefore: new Date(Date.now() - 3 * hour),
        notAfter: new Date(Date.now() - hour),
      }),
      noSpiffe: await issueCertificate(ca, { dnsNames: ['billing.shop.svc'], usages: 'client' }),
    };
    writeFileSync(file('tls.crt'), server.cert);
    writeFileSync(file('tls.key'), server.key);
    writeFileSync(file('ca.crt'), ca.cert);
    writeFileSync(file('strict.yaml'), policy('Strict'));
    writeFileSync(file('permissive.yaml'), policy('Permissive'));
    upstream = await startUpstream();
    const tlsArgs = [
      '--tls-cert',
      file('tls.crt'),
      '--tls-key',
      file('tls.key'),
      '--trust-bundle',
      file('ca.crt'),
    ];
    strict = await startAgent(file('strict.yaml'), upstream.port, tlsArgs);
    permissive = await startAgent(file('permissive.yaml'), upstream.port, tlsArgs);
  });

  after(() => {
    strict?.proc.kill();
    permissive?.proc.kill();
    upstream?.server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('Strict: a plaintext client is refused (403 ERR_MTLS_REQUIRED) and never reaches the app', async () => {
    const before = upstream.seen.length;
    const r = await send(strict.port, '/v1/open');
    assert.equal(r.status, 403);
    assert.equal(JSON.parse(r.body).code, 'ERR_MTLS_REQUIRED');
    assert.equal(upstream.seen.length, before);
  });

  test('a TLS client without a certificate, with one from another CA, expired, or without a SPIFFE ID is refused', async () => {
    const before = upstream.seen.length;
    for (const [name, client] of [
      ['none', null],
      ['foreign', clients.foreign],
      ['expired', clients.expired],
      ['no SPIFFE ID', clients.noSpiffe],
    ] as const) {
      const r = await get(strict.port, '/v1/open', client);
      assert.equal(r.status, 0, `${name}: ${r.status} ${r.body}`);
      assert.ok(r.error, name);
    }
    assert.equal(upstream.seen.length, before, 'nothing reached the app');
    const metrics = await (await fetch(`http://127.0.0.1:${strict.admin}/metrics`)).text();
    assert.match(metrics, /^tollgate_mtls_refused_total [4-9]/m);
  });

  test('peers admits by SPIFFE ID; namespaces by the peer namespace; others get 403', async () => {
    assert.equal((await get(strict.port, '/v1/invoices', clients.billing)).status, 200);
    const web = await get(strict.port, '/v1/invoices', clients.web);
    assert.equal(web.status, 403);
    assert.equal(JSON.parse(web.body).code, 'ERR_AUTHZ_DENIED');
    assert.equal((await get(strict.port, '/v1/shop', clients.web)).status, 200);
    assert.equal((await get(strict.port, '/v1/shop', clients.elsewhere)).status, 403);
    assert.equal((await get(strict.port, '/v1/open', clients.elsewhere)).status, 200);
  });

  test('the server presents its SPIFFE certificate with TLS 1.3', async () => {
    const info = await new Promise<{ protocol: string | null; uri: string }>((resolve, reject) => {
      const s = tlsConnect(
        {
          host: '127.0.0.1',
          port: strict.port,
          ca: ca.cert,
          servername: 'localhost',
          cert: clients.billing?.cert,
          key: clients.billing?.key,
        },
        () => {
          resolve({ protocol: s.getProtocol(), uri: s.getPeerCertificate().subjectaltname ?? '' });
          s.end();
        },
      );
      s.on('error', reject);
    });
    assert.equal(info.protocol, 'TLSv1.3');
    assert.match(info.uri, new RegExp(`URI:${SERVER_ID}`));
  });

  test('x-forwarded-client-cert comes only from the verified certificate; a client copy is stripped', async () => {
    const forged = { 'x-forwarded-client-cert': `Hash=00;URI=${BILLING}` };
    await get(strict.port, '/v1/invoices', clients.billing, forged);
    const viaTls = upstream.seen.at(-1);
    assert.match(
      String(viaTls?.headers['x-forwarded-client-cert']),
      new RegExp(`^Hash=[0-9a-f]{64};URI=${BILLING}$`),
    );
    assert.equal(viaTls?.headers['x-forwarded-proto'], 'https');
    const before = upstream.seen.length;
    const plain = await send(permissive.port, '/v1/open', forged);
    assert.equal(plain.status, 200, 'Permissive accepts plaintext');
    assert.equal(upstream.seen.length, before + 1);
    assert.equal(upstream.seen.at(-1)?.headers['x-forwarded-client-cert'], undefined);
    assert.equal(
      (await send(permissive.port, '/v1/invoices', forged)).status,
      403,
      'a forged header is no identity',
    );
  });

  test('new certificate files are used for new connections; open ones keep working', async () => {
    const keepAlive = new HttpsAgent({ keepAlive: true, maxSockets: 1 });
    assert.equal((await get(strict.port, '/v1/open', clients.billing, {}, keepAlive)).status, 200);
    const renewed = await issueCertificate(ca, {
      dnsNames: ['localhost'],
      uris: [SERVER_ID],
      usages: 'both',
    });
    writeFileSync(file('tls.key.new'), renewed.key);
    writeFileSync(file('tls.crt.new'), renewed.cert);
    copyFileSync(file('tls.key.new'), file('tls.key'));
    copyFileSync(file('tls.crt.new'), file('tls.crt'));
    const serial = (pem: string) => new X509Certificate(pem).serialNumber;
    await eventually(async () => {
      const presented = await new Promise<string>((resolve) => {
        const s = tlsConnect(
          {
            host: '127.0.0.1',
            port: strict.port,
            ca: ca.cert,
            servername: 'localhost',
            cert: clients.billing?.cert,
            key: clients.billing?.key,
          },
          () => {
            resolve(s.getPeerCertificate().serialNumber);
            s.end();
          },
        );
        s.on('error', () => resolve(''));
      });
      return presented.toUpperCase() === serial(renewed.cert).toUpperCase();
    }, 5000);
    assert.equal(
      (await get(strict.port, '/v1/open', clients.billing, {}, keepAlive)).status,
      200,
      'the open connection still serves',
    );
    keepAlive.destroy();
  });
});
