/**
 * The discovery documents (`/version`, `/api`, `/api/v1`, `/apis`,
 * `/apis/GROUP`, `/apis/GROUP/VERSION`) built from the types the store
 * serves, in the shapes client-node's CoreApi, ApisApi and getAPIResources
 * read.
 */
import type { ResourceType } from './resources.ts';
import { failure, type Obj } from './status.ts';

const STORED_VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

function resourceList(types: ResourceType[], group: string, version: string): Obj {
  const resources: Obj[] = [];
  for (const t of types) {
    if (t.group !== group || t.version !== version) continue;
    resources.push({
      name: t.plural,
      singularName: t.singular,
      namespaced: t.namespaced,
      kind: t.kind,
      verbs: t.virtual ? ['create'] : STORED_VERBS,
      ...(t.shortNames.length > 0 ? { shortNames: t.shortNames } : {}),
    });
    if (t.statusSubresource) {
      resources.push({
        name: `${t.plural}/status`,
        singularName: '',
        namespaced: t.namespaced,
        kind: t.kind,
        verbs: ['get', 'patch', 'update'],
      });
    }
  }
  return {
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion: group === '' ? version : `${group}/${version}`,
    resources,
  };
}

function groups(types: ResourceType[]): Obj[] {
  const versions = new Map<string, string>();
  for (const t of types) if (t.group !== '') versions.set(t.group, t.version);
  return [...versions].map(([name, version]) => {
    const gv = { groupVersion: `${name}/${version}`, version };
    return { name, versions: [gv], preferredVersion: gv };
  });
}

function unknownPath(): never {
  throw failure(404, 'NotFound', 'the server could not find the requested resource', {});
}

/** The discovery document at `segments`, or undefined when the path is not a discovery path. */
export function discovery(types: ResourceType[], segments: string[], serverAddress: string): Obj | undefined {
  const path = segments.join('/');
  if (path === 'version') {
    return {
      major: '1',
      minor: '33',
      gitVersion: 'v1.33.0-tollgate-test',
      platform: `${process.platform}/${process.arch}`,
    };
  }
  if (path === 'api') {
    return {
      kind: 'APIVersions',
      versions: ['v1'],
      serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }],
    };
  }
  if (path === 'api/v1') return resourceList(types, '', 'v1');
  if (path === 'apis') return { kind: 'APIGroupList', apiVersion: 'v1', groups: groups(types) };
  if (segments[0] === 'apis' && segments.length === 2) {
    const group = groups(types).find((g) => g.name === segments[1]);
    if (group === undefined) unknownPath();
    return { kind: 'APIGroup', apiVersion: 'v1', ...group };
  }
  if (segments[0] === 'apis' && segments.length === 3) {
    const list = resourceList(types, segments[1] ?? '', segments[2] ?? '');
    if ((list.resources as Obj[]).length === 0) unknownPath();
    return list;
  }
  return undefined;
}
