import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { meshEndpointOfService, meshOf, spiffeIdOfPod } from './mesh-endpoints.ts';
import { type PodInfo, podInfo, serviceInfo } from './policy-index.ts';

/** A pod as the injector leaves it (the golden output of operator/admission), given an IP. */
function injected(golden: string, ip: string | string[], extra: Record<string, unknown> = {}): PodInfo {
  const text = readFileSync(new URL(`../testdata/inject/${golden}.injected.yaml`, import.meta.url), 'utf8');
  const pod = parseAllDocuments(text)[0]?.toJS() as Record<string, unknown>;
  const ips = Array.isArray(ip) ? ip : [ip];
  return podInfo({
    ...pod,
    ...extra,
    status: { phase: 'Running', podIP: ips[0], podIPs: ips.map((i) => ({ ip: i })) },
  });
}

describe('podInfo: capture and IPs', () => {
  test('the ports the injected tollgate-init captures, as the injector wrote them', () => {
    assert.deepEqual(injected('custom', '10.0.0.5').capture, { ports: [8443, 9090], excluded: [] });
    assert.deepEqual(injected('annotated', '10.0.0.5').capture, { ports: [8080], excluded: [] });
    assert.deepEqual(injected('native-sidecar', '10.0.0.5').capture?.ports, [8080]);
  });

  test("'*': every port but the exclusions and the agent's own", () => {
    const info = podInfo({
      metadata: { name: 'p', namespace: 'shop' },
      spec: {
        containers: [{ name: 'app' }, { name: 'tollgate-agent' }],
        initContainers: [
          {
            name: 'tollgate-init',
            args: [
              'init',
              '--inbound-ports=*',
              '--exclude-inbound-ports',
              '9100,9200',
              '--admin-port',
              '15099',
            ],
          },
        ],
      },
      status: { podIP: '10.0.0.7' },
    });
    assert.deepEqual(info.capture, { ports: '*', excluded: [9100, 9200, 15001, 15006, 15099] });
    assert.deepEqual(info.ips, ['10.0.0.7']);
  });

  test('no tollgate-init, or one without ports: no capture; no IP yet: none', () => {
    const bare = podInfo({ metadata: { name: 'p' }, spec: { containers: [{ name: 'tollgate-agent' }] } });
    assert.equal(bare.capture, null);
    assert.deepEqual(bare.ips, []);
    const noPorts = podInfo({
      metadata: { name: 'p' },
      spec: { initContainers: [{ name: 'tollgate-init', args: ['init', '--inbound-ports', 'x'] }] },
    });
    assert.equal(noPorts.capture, null);
  });
});

describe('meshOf', () => {
  const TD = 'cluster.local';

  test('one endpoint per running meshed pod with an IP and capture, ordered, with its SPIFFE ID', () => {
    const b = { ...injected('custom', ['10.0.0.6', 'fd00::6']), namespace: 'shop', name: 'b' };
    const a = { ...injected('annotated', '10.0.0.5'), namespace: 'shop', name: 'a' };
    const mesh = meshOf([b, a], [], TD);
    assert.deepEqual(
      mesh.endpoints,
      [
        {
          addresses: ['10.0.0.5'],
          ports: [8080],
          excludedPorts: [],
          identities: [spiffeIdOfPod(TD, a)],
        },
        {
          addresses: ['10.0.0.6', 'fd00::6'],
          ports: [8443, 9090],
          excludedPorts: [],
          identities: [spiffeIdOfPod(TD, b)],
        },
      ].sort((x, y) => (`${x.addresses[0]}` < `${y.addresses[0]}` ? -1 : 1)),
    );
    assert.match(spiffeIdOfPod(TD, a), /^spiffe:\/\/cluster\.local\/ns\/[a-z-]+\/sa\/[a-z0-9-]+$/);
    assert.match(mesh.version, /^sha256:[0-9a-f]{64}$/);
    assert.equal(meshOf([a, b], [], TD).version, mesh.version, 'the order pods arrive in does not matter');
  });

  test('left out: terminating, not meshed, no IP, no capture', () => {
    const running = injected('annotated', '10.0.0.5');
    const pods: PodInfo[] = [
      { ...running, name: 'gone', terminating: true },
      { ...running, name: 'plain', meshed: false },
      { ...running, name: 'pending', ips: [] },
      { ...running, name: 'uncaptured', capture: null },
    ];
    assert.deepEqual(meshOf(pods, [], TD).endpoints, []);
    const before = meshOf([running], [], TD);
    assert.notEqual(
      meshOf([{ ...running, ips: ['10.0.0.9'] }], [], TD).version,
      before.version,
      'a new IP is a new mesh',
    );
  });
});

describe('meshOf: Services', () => {
  const TD = 'cluster.local';
  const pod = (
    name: string,
    labels: Record<string, string>,
    sa: string,
    opts: Partial<PodInfo> = {},
  ): PodInfo => ({
    namespace: 'shop',
    name,
    uid: `uid-${name}`,
    labels,
    serviceAccount: sa,
    meshed: true,
    terminating: false,
    ackedVersion: '',
    nack: '',
    ips: [`10.0.0.${name.length}`],
    capture: { ports: [8080], excluded: [] },
    namedPorts: { http: 8080, metrics: 9100 },
    ...opts,
  });
  const service = (spec: Record<string, unknown>) =>
    serviceInfo({
      metadata: { name: 'orders', namespace: 'shop' },
      spec: { clusterIP: '10.96.0.10', ...spec },
    });

  test('a Service whose selected pods all capture the target port: its cluster IP, its ports, their identities', () => {
    const pods = [pod('o1', { app: 'orders' }, 'orders'), pod('o22', { app: 'orders' }, 'orders-v2')];
    const svc = service({
      selector: { app: 'orders' },
      clusterIPs: ['10.96.0.10', 'fd00::a'],
      ports: [
        { port: 80, targetPort: 8080 },
        { port: 81, targetPort: 'http' },
        { port: 9100, targetPort: 'metrics' },
        { port: 53, targetPort: 8080, protocol: 'UDP' },
      ],
    });
    assert.deepEqual(meshEndpointOfService(svc, pods, TD), {
      addresses: ['10.96.0.10', 'fd00::a'],
      ports: [80, 81],
      excludedPorts: [],
      identities: ['spiffe://cluster.local/ns/shop/sa/orders', 'spiffe://cluster.local/ns/shop/sa/orders-v2'],
    });
    const mesh = meshOf(pods, [svc], TD);
    assert.equal(mesh.endpoints.length, 3, 'both pods and the service');
  });

  test("'*' capture: every target port but the excluded ones", () => {
    const pods = [pod('o1', { app: 'orders' }, 'orders', { capture: { ports: '*', excluded: [9100] } })];
    const svc = service({
      selector: { app: 'orders' },
      ports: [
        { port: 80, targetPort: 8080 },
        { port: 9100, targetPort: 9100 },
      ],
    });
    assert.deepEqual(meshEndpointOfService(svc, pods, TD)?.ports, [80]);
  });

  test('not meshed: a selected pod without a sidecar, no pod, no selector, headless, an uncaptured or unknown port', () => {
    const orders = pod('o1', { app: 'orders' }, 'orders');
    const plain = pod('o2', { app: 'orders' }, 'orders', { meshed: false });
    const selector = { app: 'orders' };
    const ports = [{ port: 80, targetPort: 8080 }];
    assert.equal(meshEndpointOfService(service({ selector, ports }), [orders, plain], TD), null);
    assert.equal(meshEndpointOfService(service({ selector: { app: 'none' }, ports }), [orders], TD), null);
    assert.equal(meshEndpointOfService(service({ ports }), [orders], TD), null);
    assert.equal(meshEndpointOfService(service({ selector, ports, clusterIP: 'None' }), [orders], TD), null);
    assert.equal(
      meshEndpointOfService(service({ selector, ports: [{ port: 90, targetPort: 9090 }] }), [orders], TD),
      null,
    );
    assert.equal(
      meshEndpointOfService(service({ selector, ports: [{ port: 90, targetPort: 'grpc' }] }), [orders], TD),
      null,
    );
    // A terminating pod no longer counts; the rest are meshed.
    const gone = { ...plain, terminating: true };
    assert.notEqual(meshEndpointOfService(service({ selector, ports }), [orders, gone], TD), null);
  });

  test('serviceInfo: targetPort defaults to the port; clusterIP None is no address', () => {
    const info = serviceInfo({
      metadata: { name: 's', namespace: 'shop' },
      spec: { clusterIP: 'None', selector: { a: 'b' }, ports: [{ port: 80 }] },
    });
    assert.deepEqual(info, {
      namespace: 'shop',
      name: 's',
      selector: { a: 'b' },
      clusterIPs: [],
      ports: [{ port: 80, targetPort: 80, protocol: 'TCP' }],
    });
  });
});
