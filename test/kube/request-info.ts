/**
 * The authorization attributes of an API request, read from its method and
 * URL the way kube-apiserver's RequestInfoFactory reads them before RBAC
 * decides: verb (get, list, watch, create, update, patch, delete,
 * deletecollection), API group, resource, subresource, namespace and name;
 * a list or watch with the field selector `metadata.name=<name>` names its
 * object, so `resourceNames` rules can allow it. Paths outside /api and /apis
 * are non-resource requests (`/version`). Pure.
 */

export interface RequestInfo {
  method: string;
  /** Path and query, as sent. */
  url: string;
  resourceRequest: boolean;
  /** Resource verb, or the lower-case method of a non-resource request. */
  verb: string;
  /** The path of a non-resource request. */
  path: string;
  apiGroup: string;
  apiVersion: string;
  resource: string;
  subresource: string;
  /** '' for cluster-scoped requests (a Namespace's own name for namespaces/NAME). */
  namespace: string;
  name: string;
}

const VERBS: Record<string, string> = {
  GET: 'get',
  HEAD: 'get',
  POST: 'create',
  PUT: 'update',
  PATCH: 'patch',
  DELETE: 'delete',
};

/** Namespace subresources that are not a resource kind inside the namespace. */
const NAMESPACE_SUBRESOURCES = new Set(['status', 'finalize']);

/** `metadata.name=<name>` (or `==`) when the selector requires exactly that name. */
function selectedName(fieldSelector: string | null): string {
  for (const term of (fieldSelector ?? '').split(',')) {
    const m = /^\s*metadata\.name\s*==?\s*([^\s,]+)\s*$/.exec(term);
    if (m?.[1]) return m[1];
  }
  return '';
}

/** The attributes RBAC sees for `method url`. */
export function requestInfo(method: string, url: string): RequestInfo {
  const parsed = new URL(url, 'http://localhost');
  const segments = parsed.pathname.split('/').filter((s) => s !== '');
  const base = {
    method,
    url,
    path: parsed.pathname,
    apiGroup: '',
    apiVersion: '',
    resource: '',
    subresource: '',
    namespace: '',
    name: '',
  };
  const prefix = segments[0];
  // A version's discovery (/api/v1, /apis/GROUP/VERSION) is a non-resource request too.
  const minimum = prefix === 'api' ? 3 : 4;
  if ((prefix !== 'api' && prefix !== 'apis') || segments.length < minimum)
    return { ...base, resourceRequest: false, verb: method.toLowerCase() };
  let parts = segments.slice(1);
  const apiGroup = prefix === 'api' ? '' : (parts.shift() ?? '');
  const apiVersion = parts.shift() ?? '';
  let verb = VERBS[method] ?? method.toLowerCase();
  if (parts[0] === 'watch') {
    verb = 'watch';
    parts = parts.slice(1);
  }
  let namespace = '';
  if (parts[0] === 'namespaces' && parts.length > 1) {
    namespace = parts[1] ?? '';
    if (parts.length > 2 && !NAMESPACE_SUBRESOURCES.has(parts[2] ?? '')) parts = parts.slice(2);
  }
  const [resource = '', name = '', subresource = ''] = parts;
  const info: RequestInfo = {
    ...base,
    resourceRequest: true,
    verb,
    apiGroup,
    apiVersion,
    resource,
    subresource,
    namespace,
    name,
  };
  if (info.name === '' && verb === 'get') {
    const watch = parsed.searchParams.get('watch');
    info.verb = watch === 'true' || watch === '1' ? 'watch' : 'list';
    info.name = selectedName(parsed.searchParams.get('fieldSelector'));
  } else if (info.name === '' && verb === 'watch') {
    info.name = selectedName(parsed.searchParams.get('fieldSelector'));
  } else if (info.name === '' && verb === 'delete') {
    info.verb = 'deletecollection';
  }
  return info;
}
