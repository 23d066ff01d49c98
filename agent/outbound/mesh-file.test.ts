import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { MeshDirectory } from './mesh.ts';
import { MeshFile, type MeshFileError } from './mesh-file.ts';

const ORDERS = 'spiffe://cluster.local/ns/shop/sa/orders';
const doc = (address: string) =>
  `endpoints:\n  - addresses: [${address}]\n    ports: [8080]\n    identities: [${ORDERS}]\n`;

describe('MeshFile', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-mesh-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('loads at start; a changed file replaces the mesh; a bad edit keeps it', () => {
    const path = join(dir, 'mesh.yaml');
    writeFileSync(path, doc('10.0.0.2'));
    const mesh = new MeshDirectory();
    const reloads: number[] = [];
    const rejects: string[] = [];
    const file = new MeshFile({
      path,
      mesh,
      onReload: (n) => reloads.push(n),
      onReject: (e) => rejects.push(e.message),
    });
    assert.deepEqual(mesh.lookup('10.0.0.2', 8080), [ORDERS]);
    file.check();
    assert.deepEqual(reloads, [], 'unchanged: nothing reloaded');

    writeFileSync(path, `${doc('10.0.0.3')}# changed\n`);
    file.check();
    assert.deepEqual(reloads, [1]);
    assert.equal(mesh.lookup('10.0.0.2', 8080), null);
    assert.deepEqual(mesh.lookup('10.0.0.3', 8080), [ORDERS]);

    writeFileSync(path, 'endpoints:\n  - addresses: [nope]\n');
    file.check();
    assert.equal(rejects.length, 1);
    assert.match(
      rejects[0] ?? '',
      /^--mesh .*mesh\.yaml: endpoints\[0\]\.addresses\[0\]: must be an IP address/,
    );
    assert.deepEqual(mesh.lookup('10.0.0.3', 8080), [ORDERS], 'the mesh in force is kept');

    rmSync(path);
    file.check();
    assert.match(rejects[1] ?? '', /cannot read \(ENOENT\)/);
    assert.deepEqual(mesh.lookup('10.0.0.3', 8080), [ORDERS]);
    file.close();
  });

  test('a bad file at start is an error naming the flag and the problem', () => {
    const path = join(dir, 'bad.yaml');
    writeFileSync(path, 'endpoints: {}\n');
    assert.throws(
      () => new MeshFile({ path, mesh: new MeshDirectory() }),
      (e: MeshFileError) =>
        e.code === 'ERR_MESH_FILE' && /--mesh .*bad\.yaml: endpoints: must be a list/.test(e.message),
    );
    assert.throws(
      () => new MeshFile({ path: join(dir, 'none.yaml'), mesh: new MeshDirectory() }),
      /cannot read \(ENOENT\)/,
    );
  });
});
