/**
 * One inbound port for plaintext and mutual TLS: the first byte of a
 * connection tells them apart (0x16 opens a TLS handshake). TLS connections
 * must present a client certificate that chains to the trust bundle and
 * carries exactly one `spiffe://` URI SAN; anything else is refused before a
 * request is read. Both kinds are then handed to the HTTP server, a TLS one
 * with its verified peer attached (`peerOf`).
 */
import { createHash, X509Certificate } from 'node:crypto';
import type { Server as HttpServer } from 'node:http';
import { createServer, type Server as NetServer, type Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { type DetailedPeerCertificate, type SecureContext, TLSSocket } from 'node:tls';
import { spiffeIdOf, verifyClientChain } from '../identity/tls-identity.ts';

/** A verified mTLS peer. */
export interface PeerCertificate {
  /** Its SPIFFE ID. */
  id: string;
  /** SHA-256 of the certificate (DER), hex: the `Hash` of x-forwarded-client-cert. */
  hash: string;
}

const PEER = Symbol('tollgate.peer');

/** The verified peer of a connection, null for plaintext. */
export function peerOf(socket: object): PeerCertificate | null {
  return (socket as { [PEER]?: PeerCertificate })[PEER] ?? null;
}

export interface DetectOptions {
  /**
   * The secure context in force (read per connection, so a reload applies to
   * new ones); null while there is none (TLS connections are refused).
   */
  context: () => SecureContext | null;
  /** The trust anchors in force. */
  anchors: () => readonly X509Certificate[];
  /** Time to complete the TLS handshake, and to send a first byte. Default 10 s. */
  handshakeTimeoutMs?: number;
  onRefused?: (reason: string, remote: string | undefined) => void;
}

const TLS_HANDSHAKE = 0x16;

/** A listener that detects TLS on each connection and hands both kinds to `http`. */
export function detectingServer(http: HttpServer, options: DetectOptions): NetServer {
  const timeout = options.handshakeTimeoutMs ?? 10_000;
  return createServer({ pauseOnConnect: false }, (socket: Socket) => {
    socket.setTimeout(timeout, () => socket.destroy());
    socket.on('error', () => socket.destroy());
    socket.once('data', (first: Buffer) => {
      socket.pause();
      socket.unshift(first);
      socket.setTimeout(0);
      if (first[0] === TLS_HANDSHAKE) {
        socket.removeAllListeners('error');
        acceptTls(http, socket, options, timeout);
      } else {
        http.emit('connection', socket);
        socket.resume();
      }
    });
  });
}

/**
 * The socket with its first bytes put back, as a Duplex: TLSSocket takes the
 * native handle of a net.Socket and would never see bytes already read from it.
 */
function replay(socket: Socket): Duplex {
  const duplex = new Duplex({
    read() {
      socket.resume();
    },
    write(chunk: Buffer, _encoding, callback) {
      socket.write(chunk, callback);
    },
    final(callback) {
      socket.end(callback);
    },
    destroy(error, callback) {
      socket.destroy(error ?? undefined);
      callback(error);
    },
  });
  socket.on('data', (chunk: Buffer) => {
    if (!duplex.push(chunk)) socket.pause();
  });
  socket.on('end', () => duplex.push(null));
  socket.on('close', () => duplex.destroy());
  // e.g. a write after the client's FIN (a client that ends right after the handshake):
  // the TLS socket above sees it; unhandled here it would take the process down.
  socket.on('error', (error) => duplex.destroy(error));
  return duplex;
}

function acceptTls(http: HttpServer, socket: Socket, options: DetectOptions, timeout: number): void {
  const remote = socket.remoteAddress;
  const secureContext = options.context();
  if (secureContext === null) {
    options.onRefused?.('no certificate to present yet', remote);
    socket.destroy();
    return;
  }
  const tls = new TLSSocket(replay(socket), {
    isServer: true,
    secureContext,
    requestCert: true,
    rejectUnauthorized: true,
    ALPNProtocols: ['http/1.1'],
  });
  // A TLSSocket over a Duplex has no address of its own: the client's is the TCP socket's.
  for (const [name, value] of [
    ['remoteAddress', socket.remoteAddress],
    ['remotePort', socket.remotePort],
    ['remoteFamily', socket.remoteFamily],
    ['localAddress', socket.localAddress],
    ['localPort', socket.localPort],
  ] as const) {
    Object.defineProperty(tls, name, { value, configurable: true });
  }
  let secured = false;
  const refuse = (reason: string) => {
    clearTimeout(timer);
    // Once accepted, an error is the connection's end, not a refusal.
    if (secured) {
      tls.destroy();
      return;
    }
    options.onRefused?.(reason, remote);
    tls.destroy();
  };
  const timer = setTimeout(() => refuse('TLS handshake timed out'), timeout);
  tls.on('error', (e: Error) => refuse(e.message));
  tls.once('secure', () => {
    clearTimeout(timer);
    // A TLSSocket made outside a tls.Server does not reject unverified chains itself: check here.
    const cert = tls.getPeerCertificate(true);
    const leaf = tls.getPeerX509Certificate();
    if (!cert?.raw || !leaf) {
      refuse('no client certificate');
      return;
    }
    const problem = verifyClientChain(leaf, chainOf(cert), options.anchors());
    if (problem) {
      refuse(problem);
      return;
    }
    const id = spiffeIdOf(cert.subjectaltname);
    if (id === null) {
      refuse('the client certificate has no single spiffe:// URI SAN');
      return;
    }
    const peer: PeerCertificate = { id, hash: createHash('sha256').update(cert.raw).digest('hex') };
    (tls as unknown as { [PEER]: PeerCertificate })[PEER] = peer;
    secured = true;
    http.emit('connection', tls);
  });
}

/** The intermediates the client sent after its leaf (self-issued roots excluded). */
function chainOf(leaf: DetailedPeerCertificate): X509Certificate[] {
  const out: X509Certificate[] = [];
  let cert = leaf.issuerCertificate;
  while (cert && cert !== leaf && out.length < 8) {
    if (cert.raw) out.push(new X509Certificate(cert.raw));
    if (cert.issuerCertificate === cert) break;
    cert = cert.issuerCertificate;
  }
  return out;
}
