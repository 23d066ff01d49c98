/**
 * The webhook server over real TLS (a CA and serving certificate from the
 * operator's own certificate code, the client verifying against the CA and
 * the Service name): AdmissionReview v1 round trips for /inject and
 * /validate, strict request checks, a throwing handler, certificate reload.
 */
import assert from 'node:assert/strict';
import { request } from 'node:https';
import { after, before, describe, test } from 'node:test';
import type { V1Pod } from '@kubernetes/client-node';
import { applyJsonPatch } from '../../test/kube/patch.ts';
import { RecordingLogger } from '../../test/support/recording-logger.ts';
import { createCa, issueServingCertificate, type PemPair } from '../ca/certificates.ts';
import { admissionHandlers } from './admission-handlers.ts';
import { WebhookServer } from './webhook-server.ts';

const SERVER_NAME = 'tollgate-operator.tollgate-system.svc';

interface Reply {
  status: number;
  type: string;
  text: string;
  json: () => { response: Record<string, unknown> };
  peerSerial: string;
}

let ca: PemPair;
let server: WebhookServer;
let port: number;
const log = new RecordingLogger();

async function serving(authority: PemPair): Promise<PemPair> {
  return issueServingCertificate(authority, { dnsNames: [SERVER_NAME], now: Date.now() });
}

function send(
  path: string,
  body: string | Buffer,
  opts: { method?: string; type?: string; trust?: string } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: opts.method ?? 'POST',
        servername: SERVER_NAME,
        ca: opts.trust ?? ca.cert,
        agent: false,
        headers: opts.method === 'GET' ? {} : { 'content-type': opts.type ?? 'application/json' },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          const peer = (res.socket as import('node:tls').TLSSocket).getPeerCertificate();
          resolve({
            status: res.statusCode ?? 0,
            type: String(res.headers['content-type']),
            text,
            json: () => JSON.parse(text) as { response: Record<string, unknown> },
            peerSerial: peer.serialNumber,
          });
        });
      },
    );
    req.on('error', reject);
    req.end(opts.method === 'GET' ? undefined : body);
  });
}

function review(req: Record<string, unknown>, over: Record<string, unknown> = {}): string {
  return JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: req,
    ...over,
  });
}

const POD: V1Pod = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { generateName: 'orders-', namespace: 'shop', annotations: { 'tollgate.dev/inject': 'enabled' } },
  spec: { containers: [{ name: 'app', image: 'example/app:1', ports: [{ containerPort: 8080 }] }] },
};

const podReview = (pod: V1Pod, uid = 'c0ffee00-1') =>
  review({
    uid,
    kind: { group: '', version: 'v1', kind: 'Pod' },
    resource: { group: '', version: 'v1', resource: 'pods' },
    namespace: 'shop',
    operation: 'CREATE',
    userInfo: { username: 'system:serviceaccount:kube-system:replicaset-controller' },
    object: pod,
    dryRun: false,
  });

before(async () => {
  ca = await createCa({ commonName: 'tollgate-ca', now: Date.now() });
  server = new WebhookServer({
    host: '127.0.0.1',
    port: 0,
    tls: await serving(ca),
    maxBodyBytes: 64 * 1024,
    log,
    handlers: {
      ...admissionHandlers({
        inject: { agentImage: 'tollgate:test', nativeSidecars: true, version: '0.0.0-test' },
        namespaceLabels: async () => ({}),
        log,
      }),
      '/boom': () => {
        throw new Error('kaboom');
      },
    },
  });
  port = await server.start();
});

after(() => server.close());

describe('webhook server: AdmissionReview round trips', () => {
  test('/inject answers with the same uid and a base64 JSON patch that adds the sidecar', async () => {
    const r = await send('/inject', podReview(POD, 'uid-inject-1'));
    assert.equal(r.status, 200);
    assert.equal(r.type, 'application/json');
    const body = r.json();
    assert.equal((body as unknown as { apiVersion: string }).apiVersion, 'admission.k8s.io/v1');
    const { uid, allowed, patchType, patch } = body.response as Record<string, string | boolean>;
    assert.deepEqual([uid, allowed, patchType], ['uid-inject-1', true, 'JSONPatch']);
    const patched = applyJsonPatch(POD, JSON.parse(Buffer.from(String(patch), 'base64').toString())) as V1Pod;
    assert.deepEqual(
      patched.spec?.initContainers?.map((c) => c.name),
      ['tollgate-init', 'tollgate-agent'],
    );
    assert.equal(log.messages('sidecar injected').length, 1);
  });

  test('/inject on a pod that asks for nothing: allowed, no patch', async () => {
    const plain = { ...POD, metadata: { name: 'plain', namespace: 'shop' } };
    const { response } = (await send('/inject', podReview(plain, 'uid-2'))).json();
    assert.deepEqual(response, { uid: 'uid-2', allowed: true });
  });

  test('/inject forwards the injector warnings', async () => {
    const multi = structuredClone(POD);
    multi.metadata = {
      ...multi.metadata,
      annotations: { 'tollgate.dev/inject': 'enabled', 'tollgate.dev/inbound-ports': '8080,9090' },
    };
    const { response } = (await send('/inject', podReview(multi))).json();
    assert.match(String((response.warnings as string[])[0]), /enforces policy on 8080 only/);
  });

  test('/validate denies a semantically invalid policy with 422 and the field path', async () => {
    const policy = {
      apiVersion: 'tollgate.dev/v1alpha1',
      kind: 'ApiPolicy',
      metadata: { name: 'orders', namespace: 'shop' },
      spec: { routes: [{ name: 'r', path: '/a//b', methods: ['GET'], public: true }] },
    };
    const body = review({
      uid: 'uid-validate',
      kind: { group: 'tollgate.dev', version: 'v1alpha1', kind: 'ApiPolicy' },
      resource: { group: 'tollgate.dev', version: 'v1alpha1', resource: 'apipolicies' },
      name: 'orders',
      namespace: 'shop',
      operation: 'CREATE',
      object: policy,
    });
    const { response } = (await send('/validate', body)).json();
    assert.equal(response.uid, 'uid-validate');
    assert.equal(response.allowed, false);
    assert.equal(response.patchType, undefined);
    const status = response.status as { status: string; code: number; reason: string; message: string };
    assert.deepEqual([status.status, status.code, status.reason], ['Failure', 422, 'Invalid']);
    assert.match(status.message, /spec\.routes\[0\]\.path: /);
  });

  test('a handler that throws is a denial with code 500, and the server keeps serving', async () => {
    const { response } = (await send('/boom', podReview(POD, 'uid-boom'))).json();
    assert.equal(response.allowed, false);
    assert.equal((response.status as { code: number }).code, 500);
    assert.equal(log.messages('admission handler failed').length, 1);
    assert.equal((await send('/healthz', '', { method: 'GET' })).status, 200);
  });
});

describe('webhook server: strict requests', () => {
  const cases: [string, () => Promise<Reply>, number, RegExp][] = [
    ['GET on a webhook', () => send('/inject', '', { method: 'GET' }), 405, /POST/],
    [
      'not JSON content',
      () => send('/inject', podReview(POD), { type: 'text/plain' }),
      415,
      /application\/json/,
    ],
    ['a body that is not JSON', () => send('/inject', '{"apiVersion":'), 400, /not JSON/],
    ['a JSON array', () => send('/inject', '[]'), 400, /JSON object/],
    [
      'v1beta1',
      () => send('/inject', review({ uid: 'x' }, { apiVersion: 'admission.k8s.io/v1beta1' })),
      400,
      /apiVersion must be admission\.k8s\.io\/v1/,
    ],
    [
      'another kind',
      () => send('/inject', review({ uid: 'x' }, { kind: 'Pod' })),
      400,
      /kind must be AdmissionReview/,
    ],
    [
      'no request',
      () => send('/inject', JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' })),
      400,
      /request is missing/,
    ],
    [
      'no uid',
      () => send('/inject', review({ operation: 'CREATE', kind: { kind: 'Pod', version: 'v1' } })),
      400,
      /uid/,
    ],
    [
      'a bad operation',
      () => send('/inject', review({ uid: 'x', operation: 'PATCH', kind: { kind: 'Pod', version: 'v1' } })),
      400,
      /operation/,
    ],
    ['a body over the limit', () => send('/inject', Buffer.alloc(65 * 1024, 0x20)), 413, /exceeds/],
    ['an unknown path', () => send('/mutate', podReview(POD)), 404, /no webhook/],
  ];
  for (const [name, call, status, message] of cases) {
    test(`${name} → ${status}`, async () => {
      const r = await call();
      assert.equal(r.status, status, r.text);
      assert.match(r.text, message);
    });
  }
});

describe('webhook server: TLS', () => {
  test('a client that does not trust the CA is refused', async () => {
    const other = await createCa({ commonName: 'other', now: Date.now() });
    await assert.rejects(send('/healthz', '', { method: 'GET', trust: other.cert }), /certificate/);
  });

  test('setTls swaps the certificate for new connections, without a restart', async () => {
    const before = await send('/healthz', '', { method: 'GET' });
    const next = await createCa({ commonName: 'tollgate-ca-2', now: Date.now() });
    server.setTls(await serving(next));
    const afterSwap = await send('/healthz', '', { method: 'GET', trust: next.cert });
    assert.equal(afterSwap.status, 200);
    assert.notEqual(afterSwap.peerSerial, before.peerSerial);
    await assert.rejects(send('/healthz', '', { method: 'GET' }), /certificate/);
  });
});
