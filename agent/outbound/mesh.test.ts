import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MeshDirectory, parseMeshDocument } from './mesh.ts';

const ORDERS = 'spiffe://cluster.local/ns/shop/sa/orders';
const BILLING = 'spiffe://cluster.local/ns/shop/sa/billing';

describe('parseMeshDocument', () => {
  test('reads endpoints from YAML, canonicalizing addresses', () => {
    const endpoints = parseMeshDocument(`
endpoints:
  - addresses: [10.0.0.2, "::ffff:10.0.0.3", "2001:DB8::1"]
    ports: [8080]
    identities: [${ORDERS}]
  - addresses: [10.0.0.9]
    excludedPorts: [9090]
    identities: [${ORDERS}, ${BILLING}]
`);
    assert.deepEqual(endpoints, [
      {
        addresses: ['10.0.0.2', '10.0.0.3', '2001:db8::1'],
        ports: [8080],
        excludedPorts: [],
        identities: [ORDERS],
      },
      { addresses: ['10.0.0.9'], ports: [], excludedPorts: [9090], identities: [ORDERS, BILLING] },
    ]);
  });

  test('an empty list is a mesh of nothing; JSON is YAML', () => {
    assert.deepEqual(parseMeshDocument('{"endpoints": []}'), []);
    assert.deepEqual(parseMeshDocument('endpoints:'), []);
  });

  test('every problem is listed with its path, and the document is refused whole', () => {
    assert.throws(
      () =>
        parseMeshDocument(`
endpoints:
  - addresses: [10.0.0.256]
    ports: [0, 8080, "x"]
    identities: [spiffe://Cluster/ns]
  - addresses: []
    identities: []
  - addresses: [10.0.0.1]
    identities: [${ORDERS}]
    port: 80
  - just a string
extra: 1
`),
      (e: Error) => {
        assert.equal(
          e.message,
          [
            'extra: unknown field',
            'endpoints[0].addresses[0]: must be an IP address',
            'endpoints[0].identities[0]: must be a SPIFFE ID (spiffe://trust-domain/path)',
            'endpoints[0].ports[0]: must be a port (1-65535)',
            'endpoints[0].ports[2]: must be a port (1-65535)',
            'endpoints[1].addresses: at least one address is required',
            'endpoints[1].identities: at least one SPIFFE ID is required',
            'endpoints[2].port: unknown field',
            'endpoints[3]: must be a mapping',
          ].join('; '),
        );
        return true;
      },
    );
  });

  test('not YAML, or not a mapping, says so', () => {
    assert.throws(() => parseMeshDocument('endpoints: [a'), /^Error: not YAML/);
    assert.throws(() => parseMeshDocument('- 1'), /must be a mapping with `endpoints`/);
    assert.throws(() => parseMeshDocument('endpoints: 3'), /endpoints: must be a list/);
  });
});

describe('MeshDirectory', () => {
  test('looks up an address and port: listed ports, or every port but the excluded ones', () => {
    const mesh = new MeshDirectory();
    assert.equal(mesh.lookup('10.0.0.2', 8080), null);
    mesh.replace(
      [
        { addresses: ['10.0.0.2'], ports: [8080], excludedPorts: [], identities: [ORDERS] },
        { addresses: ['10.0.0.9', '2001:db8::1'], ports: [], excludedPorts: [9090], identities: [BILLING] },
      ],
      'v1',
    );
    assert.equal(mesh.size, 2);
    assert.equal(mesh.version, 'v1');
    assert.deepEqual(mesh.lookup('10.0.0.2', 8080), [ORDERS]);
    assert.deepEqual(mesh.lookup('::ffff:10.0.0.2', 8080), [ORDERS]);
    assert.equal(mesh.lookup('10.0.0.2', 9090), null);
    assert.deepEqual(mesh.lookup('10.0.0.9', 1234), [BILLING]);
    assert.deepEqual(mesh.lookup('2001:DB8:0::1', 443), [BILLING]);
    assert.equal(mesh.lookup('10.0.0.9', 9090), null);
    assert.equal(mesh.lookup('10.0.0.3', 8080), null);
  });

  test('an address listed twice (a pod IP reused) answers by port', () => {
    const mesh = new MeshDirectory();
    mesh.replace([
      { addresses: ['10.0.0.2'], ports: [8080], excludedPorts: [], identities: [ORDERS] },
      { addresses: ['10.0.0.2'], ports: [8081], excludedPorts: [], identities: [BILLING] },
    ]);
    assert.deepEqual(mesh.lookup('10.0.0.2', 8080), [ORDERS]);
    assert.deepEqual(mesh.lookup('10.0.0.2', 8081), [BILLING]);
  });

  test('replace drops what is no longer listed', () => {
    const mesh = new MeshDirectory();
    mesh.replace([{ addresses: ['10.0.0.2'], ports: [8080], excludedPorts: [], identities: [ORDERS] }]);
    mesh.replace([]);
    assert.equal(mesh.lookup('10.0.0.2', 8080), null);
    assert.equal(mesh.size, 0);
  });
});
