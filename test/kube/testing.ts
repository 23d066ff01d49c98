/**
 * Helpers the API test server's own tests share: recorded fixtures, JSON
 * narrowing, the structure of a JSON value, polling, a raw watch collector
 * and an ApiPolicy builder.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { type KubeConfig, Watch } from '@kubernetes/client-node';
import type { Obj } from './status.ts';

/** The ApiPolicy CRD in crds/. */
export const CRD = new URL('../../crds/apipolicies.tollgate.dev.yaml', import.meta.url).pathname;
/** client-node's coordinates of ApiPolicy. */
export const POLICY = { group: 'tollgate.dev', version: 'v1alpha1', plural: 'apipolicies' } as const;
export const UID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export const TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;

const FIXTURES = new URL('./fixtures/', import.meta.url);

/** The path of fixture `name`. */
export function fixturePath(name: string): string {
  return new URL(name, FIXTURES).pathname;
}

/** The text of fixture `name`. */
export function fixture(name: string): string {
  return readFileSync(new URL(name, FIXTURES), 'utf8');
}

/** Fixture `name` parsed as one JSON object. */
export function fixtureJson(name: string): Obj {
  return obj(JSON.parse(fixture(name)));
}

export function isRecord(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `value`, asserted to be a JSON object. */
export function obj(value: unknown): Obj {
  assert.ok(isRecord(value), `expected an object, got ${JSON.stringify(value)}`);
  return value;
}

/** `value.metadata`, asserted to be an object. */
export function meta(value: unknown): Obj {
  return obj(obj(value).metadata);
}

/** The structure of a JSON value: same keys (in order) and leaf types. */
export function shape(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(shape);
  if (isRecord(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, shape(v)]));
  return value === null ? null : typeof value;
}

/** Polls `condition` every 10 ms until it holds; throws after `timeoutMs`. */
export async function waitFor(what: string, condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A watch on `path` whose raw event lines collect in `lines`; `stop()` ends it. */
export async function collectWatch(
  kc: KubeConfig,
  path: string,
  query: Record<string, string | number | boolean | undefined> = {},
): Promise<{ lines: Obj[]; stop: () => void }> {
  const lines: Obj[] = [];
  const controller = await new Watch(kc).watch(
    path,
    query,
    (_type, _object, line) => lines.push(obj(line)),
    () => {},
  );
  return { lines, stop: () => controller.abort() };
}

/** An ApiPolicy object. */
export function policy(name: string, spec: Obj): Obj {
  return { apiVersion: 'tollgate.dev/v1alpha1', kind: 'ApiPolicy', metadata: { name }, spec };
}

/** One public route, the smallest valid ApiPolicy spec. */
export const ROUTES = [{ name: 'get-order', methods: ['GET'], path: '/v1/orders/{id}', public: true }];
