import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { FilePoll, filesFingerprint } from './file-poll.ts';

describe('FilePoll', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-file-poll-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('sees an in-place write, an atomic replace and a removal; nothing when unchanged', () => {
    const a = join(dir, 'a');
    const b = join(dir, 'b');
    writeFileSync(a, 'one');
    writeFileSync(b, 'two');
    let changes = 0;
    const poll = new FilePoll([a, b], () => {
      changes += 1;
    });
    poll.check();
    assert.equal(changes, 0);
    writeFileSync(a, 'one, longer');
    poll.check();
    assert.equal(changes, 1);
    poll.check();
    assert.equal(changes, 1, 'seen once');
    // Same size, new inode: the rename a Secret volume update makes.
    writeFileSync(join(dir, 'b.new'), 'TWO');
    renameSync(join(dir, 'b.new'), b);
    poll.check();
    assert.equal(changes, 2);
    rmSync(a);
    poll.check();
    assert.equal(changes, 3);
    assert.match(poll.fingerprint, /^missing\|\d+:3:/);
    poll.close();
  });

  test('the fingerprint names a missing file', () => {
    assert.equal(filesFingerprint([join(dir, 'none')]), 'missing');
  });
});
