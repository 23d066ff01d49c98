/**
 * The agent's state directory (`--state-dir`): the last good policy bundle,
 * `bundle.json`, kept so that an agent restarted while the operator is down
 * enforces it at once (fail static), and the last good mesh trust bundle,
 * `trust-bundle.pem`, so it keeps verifying peers against the same roots, and
 * the last mesh, `mesh.json`, so it keeps sending meshed destinations mTLS.
 * Written atomically (temp file, fsync, rename, fsync of the folder; mode 0600); read defensively: a missing,
 * unreadable, corrupt or unloadable file is logged and ignored, never fatal.
 */
import { readFileSync } from 'node:fs';
import { mkdir, open, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { PolicyEngine } from '../../policy/engine/engine.ts';
import type { Logger } from '../agent.ts';

/** The file holding the last good bundle (its JSON text as received). */
export const STATE_FILE = 'bundle.json';
/** The file holding the last good trust bundle (its PEM text as received). */
export const TRUST_FILE = 'trust-bundle.pem';
/** The file holding the last mesh put in force (its JSON). */
export const MESH_FILE = 'mesh.json';

/** Reads and loads the last good bundle; null (logged, never thrown) when there is none worth using. */
export function readStateBundle(dir: string, logger: Logger): PolicyEngine | null {
  const file = join(dir, STATE_FILE);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as { code?: string }).code ?? 'EIO';
    if (code === 'ENOENT') logger.info({ file }, 'no saved policy bundle');
    else logger.warn({ file, code }, 'saved policy bundle unreadable, ignored');
    return null;
  }
  try {
    return PolicyEngine.load(JSON.parse(text));
  } catch (e) {
    logger.warn({ file, err: (e as Error).message }, 'saved policy bundle invalid, ignored');
    return null;
  }
}

/** The saved trust bundle's text; null (logged, never thrown) when there is none. Checked by the caller. */
export function readStateTrustBundle(dir: string, logger: Logger): string | null {
  const file = join(dir, TRUST_FILE);
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as { code?: string }).code ?? 'EIO';
    if (code !== 'ENOENT') logger.warn({ file, code }, 'saved trust bundle unreadable, ignored');
    return null;
  }
}

/** The saved mesh, parsed but not checked (the caller checks it); null (logged, never thrown) when there is none. */
export function readStateMesh(dir: string, logger: Logger): unknown {
  const file = join(dir, MESH_FILE);
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === undefined) logger.warn({ file, err: (e as Error).message }, 'saved mesh invalid, ignored');
    else if (code !== 'ENOENT') logger.warn({ file, code }, 'saved mesh unreadable, ignored');
    return null;
  }
}

/** Replaces the saved mesh, atomically like {@link writeStateBundle}. */
export function writeStateMesh(dir: string, mesh: object): Promise<void> {
  return writeStateFile(dir, MESH_FILE, JSON.stringify(mesh));
}

/**
 * Replaces the saved bundle with `json` atomically: a reader (or a crash) sees
 * the old file or the new one, never a torn one. Creates the folder (0700) when
 * missing. Rejects on any I/O error; the old file is then left as it was.
 */
export function writeStateBundle(dir: string, json: string): Promise<void> {
  return writeStateFile(dir, STATE_FILE, json);
}

/** Replaces the saved trust bundle with `pem`, atomically like {@link writeStateBundle}. */
export function writeStateTrustBundle(dir: string, pem: string): Promise<void> {
  return writeStateFile(dir, TRUST_FILE, pem);
}

async function writeStateFile(dir: string, name: string, text: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const temp = join(dir, `.${name}.tmp`);
  await unlink(temp).catch((e: { code?: string }) => {
    if (e.code !== 'ENOENT') throw e;
  });
  // 'wx': a fresh file, so the mode applies (never a stale file's wider one).
  const handle = await open(temp, 'wx', 0o600);
  try {
    await handle.writeFile(text, 'utf8');
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temp, join(dir, name));
  // The rename itself is durable only once the folder is synced.
  const folder = await open(dir, 'r');
  try {
    await folder.sync();
  } finally {
    await folder.close();
  }
}
