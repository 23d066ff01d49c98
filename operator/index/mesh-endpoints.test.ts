import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { meshOf, spiffeIdOfPod } from './mesh-endpoints.ts';
import { type PodInfo, podInfo } from './policy-index.ts';

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
    const mesh = meshOf([b, a], TD);
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
    assert.equal(meshOf([a, b], TD).version, mesh.version, 'the order pods arrive in does not matter');
  });

  test('left out: terminating, not meshed, no IP, no capture', () => {
    const running = injected('annotated', '10.0.0.5');
    const pods: PodInfo[] = [
      { ...running, name: 'gone', terminating: true },
      { ...running, name: 'plain', meshed: false },
      { ...running, name: 'pending', ips: [] },
      { ...running, name: 'uncaptured', capture: null },
    ];
    assert.deepEqual(meshOf(pods, TD).endpoints, []);
    const before = meshOf([running], TD);
    assert.notEqual(
      meshOf([{ ...running, ips: ['10.0.0.9'] }], TD).version,
      before.version,
      'a new IP is a new mesh',
    );
  });
});
