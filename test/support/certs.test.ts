import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { connect, createServer, type Server, type TLSSocket } from 'node:tls';
import { caFromPem, createCa, issueCertificate, type PemPair, type TestCa } from './certs.ts';

interface Handshake {
  ok: boolean;
  error: string | null;
  /** The client certificate the server saw (mTLS), as its subject alternative names. */
  peer: string | null;
}

/** A TLS server answering one handshake; `clientCa` asks for and verifies a client certificate. */
async function tlsServer(
  server: PemPair,
  clientCa?: string,
): Promise<{ srv: Server; port: number; accepted: () => number }> {
  let accepted = 0;
  const srv = createServer({
    cert: server.cert,
    key: server.key,
    ...(clientCa ? { ca: clientCa, requestCert: true, rejectUnauthorized: true } : {}),
  });
  srv.on('secureConnection', (socket: TLSSocket) => {
    accepted++;
    const peer = socket.getPeerX509Certificate();
    socket.end(peer?.subjectAltName ?? '-');
  });
  srv.on('tlsClientError', () => {});
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  return { srv, port: (srv.address() as AddressInfo).port, accepted: () => accepted };
}

function handshake(
  port: number,
  options: { ca: string; servername?: string; host?: string; client?: PemPair },
): Promise<Handshake> {
  return new Promise((resolve) => {
    const socket = connect({
      host: '127.0.0.1',
      port,
      ca: options.ca,
      ...(options.servername ? { servername: options.servername } : {}),
      ...(options.client ? { cert: options.client.cert, key: options.client.key } : {}),
    });
    let data = '';
    socket.setEncoding('utf8');
    socket.on('data', (c: string) => {
      data += c;
    });
    socket.on('end', () => resolve({ ok: true, error: null, peer: data }));
    socket.on('error', (e: Error & { code?: string }) =>
      resolve({ ok: false, error: e.code ?? e.message, peer: null }),
    );
  });
}

describe('test certificates', () => {
  let ca: TestCa;
  let other: TestCa;
  let server: PemPair;
  let plain: Awaited<ReturnType<typeof tlsServer>>;
  let mutual: Awaited<ReturnType<typeof tlsServer>>;

  before(async () => {
    ca = await createCa({ commonName: 'test root' });
    other = await createCa({ commonName: 'another root' });
    server = await issueCertificate(ca, {
      dnsNames: ['operator.tollgate-system.svc'],
      ipAddresses: ['127.0.0.1'],
      usages: 'server',
    });
    plain = await tlsServer(server);
    mutual = await tlsServer(server, ca.cert);
  });
  after(() => {
    plain?.srv.close();
    mutual?.srv.close();
  });

  test('the CA and a leaf are PEM, the key PKCS#8; the leaf carries its names and is signed by the CA', () => {
    assert.match(ca.cert, /^-----BEGIN CERTIFICATE-----/);
    assert.match(server.key, /^-----BEGIN PRIVATE KEY-----/);
    const root = new X509Certificate(ca.cert);
    const leaf = new X509Certificate(server.cert);
    assert.equal(root.ca, true);
    assert.equal(leaf.ca, false);
    assert.ok(leaf.checkIssued(root));
    assert.ok(leaf.verify(root.publicKey));
    assert.equal(leaf.subjectAltName, 'DNS:operator.tollgate-system.svc, IP Address:127.0.0.1');
    assert.equal(leaf.subject, 'CN=operator.tollgate-system.svc');
    assert.equal(leaf.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    assert.ok(!leaf.checkIssued(new X509Certificate(other.cert)));
  });

  test('caFromPem: a CA read back from its PEM pair signs leaves that verify against it', async () => {
    const again = await caFromPem({ cert: ca.cert, key: ca.key });
    const leaf = await issueCertificate(again, {
      uris: ['spiffe://cluster.local/ns/a/sa/b'],
      usages: 'client',
    });
    const x = new X509Certificate(leaf.cert);
    assert.ok(
      x.checkIssued(new X509Certificate(ca.cert)) && x.verify(new X509Certificate(ca.cert).publicKey),
    );
  });

  test('a handshake succeeds with the right CA and server name', async () => {
    const r = await handshake(plain.port, { ca: ca.cert, servername: 'operator.tollgate-system.svc' });
    assert.deepEqual(r, { ok: true, error: null, peer: '-' });
  });

  test('by IP address SAN too', async () => {
    assert.equal((await handshake(plain.port, { ca: ca.cert })).ok, true);
  });

  test('fails with another CA', async () => {
    const r = await handshake(plain.port, { ca: other.cert, servername: 'operator.tollgate-system.svc' });
    assert.equal(r.ok, false);
    assert.match(r.error ?? '', /UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED|unable to verify/i);
  });

  test('fails for a name the certificate does not carry', async () => {
    const r = await handshake(plain.port, { ca: ca.cert, servername: 'evil.example' });
    assert.equal(r.ok, false);
    assert.equal(r.error, 'ERR_TLS_CERT_ALTNAME_INVALID');
  });

  test('an expired certificate is refused', async () => {
    const old = await issueCertificate(ca, {
      dnsNames: ['old.test'],
      usages: 'server',
      notBefore: new Date(Date.now() - 2 * 86_400_000),
      notAfter: new Date(Date.now() - 86_400_000),
    });
    const s = await tlsServer(old);
    try {
      const r = await handshake(s.port, { ca: ca.cert, servername: 'old.test' });
      assert.deepEqual(r, { ok: false, error: 'CERT_HAS_EXPIRED', peer: null });
    } finally {
      s.srv.close();
    }
  });

  test('mTLS: a client certificate with a SPIFFE URI is verified by the server', async () => {
    const spiffe = 'spiffe://cluster.local/ns/shop/sa/orders';
    const client = await issueCertificate(ca, { uris: [spiffe], usages: 'client' });
    assert.equal(new X509Certificate(client.cert).subject, `CN=${spiffe}`);
    const r = await handshake(mutual.port, { ca: ca.cert, client });
    assert.deepEqual(r, { ok: true, error: null, peer: `URI:${spiffe}` });
  });

  test('mTLS: a client certificate from another CA, or a server-only one, is refused', async () => {
    const foreign = await issueCertificate(other, { commonName: 'intruder', usages: 'client' });
    const serverOnly = await issueCertificate(ca, { commonName: 'not-a-client', usages: 'server' });
    for (const client of [foreign, serverOnly]) {
      const before = mutual.accepted();
      const r = await handshake(mutual.port, { ca: ca.cert, client });
      // TLS 1.3: the client's handshake completes first; the server then refuses and closes.
      assert.ok(!r.ok || r.peer === '', JSON.stringify(r));
      assert.equal(mutual.accepted(), before);
    }
  });

  test('usages both: one certificate serves and authenticates', async () => {
    const both = await issueCertificate(ca, { dnsNames: ['both.test'], usages: 'both' });
    const s = await tlsServer(both, ca.cert);
    try {
      const r = await handshake(s.port, { ca: ca.cert, servername: 'both.test', client: both });
      assert.deepEqual(r, { ok: true, error: null, peer: 'DNS:both.test' });
    } finally {
      s.srv.close();
    }
  });
});
