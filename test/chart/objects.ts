/**
 * Small readers of rendered objects for the chart tests: untyped YAML in,
 * plain records and arrays out (never undefined), so assertions stay short.
 */
import assert from 'node:assert/strict';
import type { Manifest } from './helm.ts';

export type Obj = Record<string, unknown>;

export const obj = (v: unknown): Obj =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : {};

export const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/** The rendered object of that kind and name; fails the test when there is none. */
export function find(docs: Manifest[], kind: string, name: string): Manifest {
  const found = docs.find((d) => d.kind === kind && d.metadata.name === name);
  assert.ok(found, `no ${kind} ${name} rendered`);
  return found;
}

/** The operator Deployment's pod spec, its container and the container's args. */
export function operatorPod(docs: Manifest[]): { spec: Obj; container: Obj; args: string[] } {
  const spec = obj(obj(obj(find(docs, 'Deployment', 'tollgate-operator').spec).template).spec);
  const container = obj(list(spec.containers)[0]);
  return { spec, container, args: list(container.args).map(String) };
}

/** The value of `--name=value` in args. */
export function flag(args: string[], name: string): string | undefined {
  const prefix = `--${name}=`;
  return args.find((a) => a.startsWith(prefix))?.slice(prefix.length);
}
