/**
 * The bench's mtls case: what a second agent needs to serve the get case's
 * route over mTLS from certificate files. A test CA (test/support/certs.ts,
 * ECDSA P-256) signs the agent's certificate (DNS `localhost`, the bench
 * workload's SPIFFE ID) and the load generator's client certificate (URI SAN
 * `spiffe://cluster.local/ns/bench/sa/bench-client`) plus one for another
 * workload (the preflight's 403); bench/policy.yaml is served with
 * `mtls: {mode: Strict}` and the client's SPIFFE ID required by every allow
 * rule next to the JWT. Also a minimal https GET with a client certificate
 * for the preflight, and what the handshake negotiated.
 */
import { writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { createCa, issueCertificate } from '../test/support/certs.ts';
import type { ClientTls } from './load.ts';

const TD = 'spiffe://cluster.local';
export const MTLS_SERVER_ID = `${TD}/ns/default/sa/bench-orders`;
export const MTLS_CLIENT_ID = `${TD}/ns/bench/sa/bench-client`;
export const MTLS_OTHER_ID = `${TD}/ns/bench/sa/someone-else`;
export const MTLS_MODE = 'Strict';

export interface MtlsSetup {
  /** The agent's flags: `--tls-cert`, `--tls-key`, `--trust-bundle` and their files. */
  agentArgs: string[];
  policyPath: string;
  /** The load generator's identity (admitted by `peers`). */
  client: ClientTls;
  /** The same as files, for bench/paced-client.ts. */
  clientFiles: { cert: string; key: string; ca: string };
  /** A client the CA signed for another SPIFFE ID (not in `peers`). */
  other: ClientTls;
}

/** bench/policy.yaml (`text`) with mTLS Strict and `peers: [peer]` added to every allow rule. */
export function mtlsPolicy(text: string, peer: string): string {
  const rule = '- { jwt: bench, when: params.userId == claims.sub }';
  const rules = text.split(rule).length - 1;
  if (rules === 0 || !/^spec:\n/m.test(text)) throw new Error('bench/policy.yaml changed: update mtlsPolicy');
  return text
    .replace(/^spec:\n/m, `spec:\n  mtls: { mode: ${MTLS_MODE} }\n`)
    .replaceAll(rule, `- { jwt: bench, peers: ["${peer}"], when: params.userId == claims.sub }`);
}

/** Writes the certificates, keys and policy into `dir`. */
export async function prepareMtls(dir: string, policyText: string): Promise<MtlsSetup> {
  const ca = await createCa({ commonName: 'tollgate bench mesh root' });
  const server = await issueCertificate(ca, {
    dnsNames: ['localhost'],
    uris: [MTLS_SERVER_ID],
    usages: 'server',
  });
  const client = await issueCertificate(ca, { uris: [MTLS_CLIENT_ID], usages: 'client' });
  const other = await issueCertificate(ca, { uris: [MTLS_OTHER_ID], usages: 'client' });
  const file = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };
  const clientFiles = {
    cert: file('client.crt', client.cert),
    key: file('client.key', client.key),
    ca: file('ca.crt', ca.cert),
  };
  return {
    agentArgs: [
      '--tls-cert',
      file('tls.crt', server.cert),
      '--tls-key',
      file('tls.key', server.key),
      '--trust-bundle',
      clientFiles.ca,
    ],
    policyPath: file('policy-mtls.yaml', mtlsPolicy(policyText, MTLS_CLIENT_ID)),
    client: { ...client, ca: ca.cert, servername: 'localhost' },
    clientFiles,
    other: { ...other, ca: ca.cert, servername: 'localhost' },
  };
}

/** One GET over a new TLS connection with `tls`'s client certificate (server certificate verified). */
export function httpsGet(
  url: string,
  headers: Record<string, string>,
  tls: ClientTls,
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { headers, agent: false, ...tls }, (res) => {
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

/** The protocol and cipher a handshake with `tls` negotiates, e.g. `TLSv1.3, TLS_AES_256_GCM_SHA384`. */
export function negotiated(host: string, port: number, tls: ClientTls): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host, port, ...tls }, () => {
      const key = s.getEphemeralKeyInfo();
      const group = key && 'name' in key ? `, ${key.name}` : '';
      resolve(`${s.getProtocol()}, ${s.getCipher().standardName}${group}`);
      s.end();
    });
    s.on('error', reject);
  });
}
