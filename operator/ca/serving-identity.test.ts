/**
 * ServingIdentity as grpc-js' certificate provider: the operator's real
 * PolicyServer presents the pair it holds, and a new pair on new connections
 * after `update`, without a restart.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { connect } from 'node:tls';
import { silentLogger } from '../kube/log.ts';
import { PolicyServer } from '../push/policy-server.ts';
import { PushQueue } from '../push/push-queue.ts';
import { SessionRegistry } from '../push/sessions.ts';
import { createCa, issueServingCertificate, type PemPair } from './certificates.ts';
import { ServingIdentity } from './serving-identity.ts';

const NAME = 'tollgate-operator.tollgate-system.svc';

function peerSerial(port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, servername: NAME, ca, ALPNProtocols: ['h2'] }, () => {
      const serial = socket.getPeerCertificate().serialNumber;
      socket.destroy();
      resolve(serial);
    });
    socket.on('error', reject);
  });
}

let ca: PemPair;
let identity: ServingIdentity;
let server: PolicyServer;
let port: number;
const sessions = new SessionRegistry();
const queue = new PushQueue({ sessions, bundleFor: () => undefined });

before(async () => {
  ca = await createCa({ commonName: 'tollgate-ca', now: Date.now() });
  identity = new ServingIdentity(await issueServingCertificate(ca, { dnsNames: [NAME], now: Date.now() }));
  server = new PolicyServer({
    listen: '127.0.0.1:0',
    tls: identity,
    authenticate: async () => ({ ok: false, code: 16, message: 'no' }) as never,
    sessions,
    queue,
    log: silentLogger,
  });
  port = await server.start();
});

after(async () => {
  queue.close();
  await server.close();
});

describe('ServingIdentity', () => {
  test('update tells listeners only about changes', () => {
    const id = new ServingIdentity({ cert: 'a', key: 'b' });
    const seen: string[] = [];
    const off = id.onChange((p) => seen.push(p.cert));
    assert.equal(id.update({ cert: 'a', key: 'b' }), false);
    assert.equal(id.update({ cert: 'c', key: 'd' }), true);
    off();
    id.update({ cert: 'e', key: 'f' });
    assert.deepEqual(seen, ['c']);
    assert.deepEqual(id.current, { cert: 'e', key: 'f' });
  });

  test('the gRPC server presents the renewed certificate on new connections', async () => {
    const first = await peerSerial(port, ca.cert);
    const next = await createCa({ commonName: 'tollgate-ca-2', now: Date.now() });
    identity.update(await issueServingCertificate(next, { dnsNames: [NAME], now: Date.now() }));
    const second = await peerSerial(port, next.cert);
    assert.notEqual(second, first);
    await assert.rejects(peerSerial(port, ca.cert), /certificate/);
  });
});
