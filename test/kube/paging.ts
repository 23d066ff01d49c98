/**
 * Lists with `limit` and `continue`, as the etcd3 storage layer serves them.
 *
 * A continue token is the real one: base64url (unpadded) of
 * `{"v":"meta.k8s.io/v1","rv":RV,"start":"KEY\u0000"}`, where RV is the
 * resourceVersion of the first page (every page shows that snapshot) and
 * KEY the last returned key relative to the list's key prefix. A token whose
 * snapshot has been compacted out of history gets 410 Expired with the real
 * message and, in `metadata.continue`, a token with rv -1 that continues
 * (inconsistently) at the latest version. `remainingItemCount` is set only
 * for lists without a selector. With `resourceVersion=0` the limit is
 * ignored, as the watch cache serves such lists whole.
 */

import { apiVersionOf, labelsOf, type ResourceType, typeKey } from './resources.ts';
import { matches, type Requirement } from './selector.ts';
import { ApiError, badRequest, failure, type Obj, statusBody } from './status.ts';
import type { Store } from './store.ts';

/** The real server's message for a continue token older than the compaction. */
export const CONTINUE_EXPIRED =
  'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.';

const LIST_EXPIRED = 'The resourceVersion for the provided list is too old.';

interface ContinueToken {
  rv: number;
  /** The key to start from, relative to the list prefix. */
  start: string;
}

/** Encodes a continue token starting right after `lastKey` (relative to the prefix). */
export function encodeContinue(lastKey: string, rv: number): string {
  const json = JSON.stringify({ v: 'meta.k8s.io/v1', rv, start: `${lastKey}\u0000` });
  return Buffer.from(json, 'utf8').toString('base64url');
}

/** Decodes a continue token; throws 400 BadRequest with the real wording when it is malformed. */
export function decodeContinue(token: string): ContinueToken {
  const invalid = (why: string): ApiError => badRequest(`invalid continue token: ${why}`);
  let parsed: unknown;
  try {
    if (!/^[A-Za-z0-9_-]*$/.test(token)) throw new Error('illegal base64 data');
    parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch (error) {
    throw invalid(`continue key is not valid: ${error instanceof Error ? error.message : String(error)}`);
  }
  const record = typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : {};
  if (record.v !== 'meta.k8s.io/v1') {
    throw invalid(
      `continue key is not valid: server does not recognize this encoded version ${String(record.v ?? '')}`,
    );
  }
  const rv = typeof record.rv === 'number' && Number.isInteger(record.rv) ? record.rv : 0;
  if (rv === 0) {
    throw invalid(
      'continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)',
    );
  }
  const start = typeof record.start === 'string' ? record.start : '';
  if (start === '')
    throw invalid('continue key is not valid: encoded start key empty (version meta.k8s.io/v1)');
  return { rv, start };
}

/** What a list request asks for. */
export interface ListRequest {
  type: ResourceType;
  namespace: string | undefined;
  selector: Requirement[];
  query: URLSearchParams;
}

function listLimit(query: URLSearchParams): number {
  const raw = query.get('limit');
  if (raw === null || raw === '') return 0;
  const limit = Number(raw);
  if (!Number.isInteger(limit)) throw badRequest(`invalid limit: ${raw}`);
  if (limit < 0) throw badRequest('list limit must not be negative');
  return limit;
}

/** The snapshot version a request lists at, and where it starts. */
function position(store: Store, query: URLSearchParams): { rv: number; start: string; exact: boolean } {
  const token = query.get('continue') ?? '';
  const rvParam = query.get('resourceVersion') ?? '';
  if (token !== '') {
    const decoded = decodeContinue(token);
    if (rvParam !== '' && rvParam !== '0') {
      throw badRequest('specifying resource version is not allowed when using continue');
    }
    // rv -1 (handed out with a 410) continues at the latest version.
    return decoded.rv > 0
      ? { rv: decoded.rv, start: decoded.start, exact: true }
      : { rv: store.rv, start: decoded.start, exact: false };
  }
  if (query.get('resourceVersionMatch') === 'Exact' && rvParam !== '' && rvParam !== '0') {
    const rv = Number(rvParam);
    if (!Number.isInteger(rv) || rv < 0) throw badRequest(`invalid resource version: ${rvParam}`);
    return { rv, start: '', exact: true };
  }
  return { rv: store.rv, start: '', exact: false };
}

/** Serves a list request (one page of it when `limit` is set). */
export function listPage(store: Store, request: ListRequest): Obj {
  const { type, namespace, selector, query } = request;
  const limit = query.get('resourceVersion') === '0' && !query.get('continue') ? 0 : listLimit(query);
  const at = position(store, query);
  const prefix = `${typeKey(type)}/${namespace === undefined ? '' : `${namespace}/`}`;
  const entries = store.snapshot(type, namespace, at.rv);
  if (entries === undefined) {
    if (query.get('continue')) {
      const body = statusBody('Failure', 410, 'Expired', CONTINUE_EXPIRED);
      const key = at.start.endsWith('\u0000') ? at.start.slice(0, -1) : at.start;
      body.metadata = { continue: encodeContinue(key, -1) };
      throw new ApiError(body);
    }
    throw failure(410, 'Expired', LIST_EXPIRED);
  }
  const relative = entries
    .map(([key, object]): [string, Obj] => [key.slice(prefix.length), object])
    .filter(([key]) => at.start === '' || key >= at.start);
  const items: Obj[] = [];
  let last = -1;
  for (let i = 0; i < relative.length; i++) {
    if (limit > 0 && items.length >= limit) break;
    last = i;
    const [, object] = relative[i] ?? [];
    if (object !== undefined && matches(selector, labelsOf(object))) items.push(itemOf(type, object));
  }
  const remaining = relative.length - (last + 1);
  const metadata: Obj = { resourceVersion: String(at.rv) };
  if (limit > 0 && remaining > 0) {
    metadata.continue = encodeContinue(relative[last]?.[0] ?? '', at.rv);
    if (selector.length === 0) metadata.remainingItemCount = remaining;
  }
  return { apiVersion: apiVersionOf(type), kind: `${type.kind}List`, metadata, items };
}

/** A list item: built-in kinds drop apiVersion and kind, custom resources keep them. */
function itemOf(type: ResourceType, object: Obj): Obj {
  const item = structuredClone(object);
  if (type.custom) return item;
  const { apiVersion: _a, kind: _k, ...rest } = item;
  return rest;
}
