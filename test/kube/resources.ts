/**
 * The kinds of object the API test server serves (core v1, coordination,
 * admissionregistration webhook configurations, apiextensions,
 * authentication, and the custom resources CRDs define), and the small
 * helpers every module shares to read objects the way the real server does:
 * metadata accessors, label maps, storage keys and timestamps.
 */
import { isDeepStrictEqual } from 'node:util';
import type { CelRules } from './cel-rules.ts';
import type { CrdSchema } from './schema.ts';
import type { Obj } from './status.ts';

/** A kind of object the server serves. */
export interface ResourceType {
  group: string;
  version: string;
  plural: string;
  singular: string;
  kind: string;
  namespaced: boolean;
  shortNames: string[];
  /** Has a `status` subresource: main writes keep status, status writes keep the rest. */
  statusSubresource: boolean;
  /** Maintains `metadata.generation` (CRDs and custom resources). */
  generation: boolean;
  /** Served by a CRD (its list items carry apiVersion and kind). */
  custom: boolean;
  /** A delete answers with the deleted object instead of a `Success` Status (`ReturnDeletedObject`). */
  returnsDeleted: boolean;
  /** Create-only and never stored (TokenReview). */
  virtual: boolean;
  schema?: CrdSchema;
  rules?: CelRules;
}

type Builtin = Pick<ResourceType, 'plural' | 'singular' | 'kind' | 'namespaced' | 'shortNames'> &
  Partial<ResourceType>;

function builtin(group: string, spec: Builtin): ResourceType {
  return {
    group,
    version: 'v1',
    statusSubresource: false,
    generation: false,
    custom: false,
    returnsDeleted: false,
    virtual: false,
    ...spec,
  };
}

/** The built-in kinds, in discovery order. */
export const BUILTIN: readonly ResourceType[] = [
  builtin('', {
    plural: 'namespaces',
    singular: 'namespace',
    kind: 'Namespace',
    namespaced: false,
    shortNames: ['ns'],
    statusSubresource: true,
  }),
  builtin('', {
    plural: 'pods',
    singular: 'pod',
    kind: 'Pod',
    namespaced: true,
    shortNames: ['po'],
    statusSubresource: true,
    returnsDeleted: true,
  }),
  builtin('', {
    plural: 'serviceaccounts',
    singular: 'serviceaccount',
    kind: 'ServiceAccount',
    namespaced: true,
    shortNames: ['sa'],
    returnsDeleted: true,
  }),
  builtin('', { plural: 'secrets', singular: 'secret', kind: 'Secret', namespaced: true, shortNames: [] }),
  builtin('', {
    plural: 'services',
    singular: 'service',
    kind: 'Service',
    namespaced: true,
    shortNames: ['svc'],
    statusSubresource: true,
  }),
  builtin('', {
    plural: 'configmaps',
    singular: 'configmap',
    kind: 'ConfigMap',
    namespaced: true,
    shortNames: ['cm'],
  }),
  builtin('', { plural: 'events', singular: 'event', kind: 'Event', namespaced: true, shortNames: ['ev'] }),
  builtin('coordination.k8s.io', {
    plural: 'leases',
    singular: 'lease',
    kind: 'Lease',
    namespaced: true,
    shortNames: [],
  }),
  builtin('admissionregistration.k8s.io', {
    plural: 'mutatingwebhookconfigurations',
    singular: 'mutatingwebhookconfiguration',
    kind: 'MutatingWebhookConfiguration',
    namespaced: false,
    shortNames: [],
  }),
  builtin('admissionregistration.k8s.io', {
    plural: 'validatingwebhookconfigurations',
    singular: 'validatingwebhookconfiguration',
    kind: 'ValidatingWebhookConfiguration',
    namespaced: false,
    shortNames: [],
  }),
  builtin('apiextensions.k8s.io', {
    plural: 'customresourcedefinitions',
    singular: 'customresourcedefinition',
    kind: 'CustomResourceDefinition',
    namespaced: false,
    shortNames: ['crd', 'crds'],
    statusSubresource: true,
    generation: true,
    returnsDeleted: true,
  }),
  builtin('authentication.k8s.io', {
    plural: 'tokenreviews',
    singular: 'tokenreview',
    kind: 'TokenReview',
    namespaced: false,
    shortNames: [],
    virtual: true,
  }),
];

/**
 * The fields a typed Go object serializes even when empty: a BOOKMARK for a
 * built-in kind carries them (`"spec":{"containers":null},"status":{}` for a
 * Pod, as recorded in Arnavion/k8s-openapi#70); custom resources carry none.
 */
const ZERO_FIELDS: Record<string, Obj> = {
  Namespace: { spec: {}, status: {} },
  Pod: { spec: { containers: null }, status: {} },
  Event: {
    involvedObject: {},
    source: {},
    firstTimestamp: null,
    lastTimestamp: null,
    eventTime: null,
    reportingComponent: '',
    reportingInstance: '',
  },
  Lease: { spec: {} },
};

/** The object of a BOOKMARK event at `resourceVersion` for `type`. */
export function bookmarkObject(type: ResourceType, resourceVersion: string): Obj {
  if (type.custom) {
    return { apiVersion: apiVersionOf(type), kind: type.kind, metadata: { resourceVersion } };
  }
  return {
    kind: type.kind,
    apiVersion: apiVersionOf(type),
    metadata: { resourceVersion, creationTimestamp: null },
    ...structuredClone(ZERO_FIELDS[type.kind] ?? {}),
  };
}

export function isRecord(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `object.metadata`, created when absent. */
export function metaOf(object: Obj): Obj {
  if (!isRecord(object.metadata)) object.metadata = {};
  return object.metadata as Obj;
}

export function str(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/** `metadata.finalizers` as strings ([] when absent). */
export function finalizersOf(object: Obj): string[] {
  const finalizers = metaOf(object).finalizers;
  return Array.isArray(finalizers) ? finalizers.filter((f): f is string => typeof f === 'string') : [];
}

export function labelsOf(object: Obj): Record<string, string> {
  const labels = metaOf(object).labels;
  const out: Record<string, string> = {};
  if (isRecord(labels)) for (const [k, v] of Object.entries(labels)) if (typeof v === 'string') out[k] = v;
  return out;
}

export function apiVersionOf(type: Pick<ResourceType, 'group' | 'version'>): string {
  return type.group === '' ? type.version : `${type.group}/${type.version}`;
}

export function typeKey(type: Pick<ResourceType, 'group' | 'plural'>): string {
  return `${type.group}/${type.plural}`;
}

/** The store key of an object: `group/plural/namespace/name`. */
export function objectKey(type: ResourceType, namespace: string | undefined, name: string): string {
  return `${typeKey(type)}/${namespace ?? ''}/${name}`;
}

/** The real server's timestamp format: RFC 3339 in UTC, whole seconds. */
export function timestamp(at: Date = new Date()): string {
  return at.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Everything but metadata and status: what a generation counts changes of. */
export function specPart(object: Obj): Obj {
  const { metadata: _m, status: _s, apiVersion: _a, kind: _k, ...rest } = object;
  return rest;
}

/** ObjectMeta's fields in the order the real server serializes them. */
const META_ORDER = [
  'name',
  'generateName',
  'namespace',
  'selfLink',
  'uid',
  'resourceVersion',
  'generation',
  'creationTimestamp',
  'deletionTimestamp',
  'deletionGracePeriodSeconds',
  'labels',
  'annotations',
  'ownerReferences',
  'finalizers',
  'managedFields',
];

function sortedKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortedKeys);
  if (!isRecord(value)) return value;
  return Object.fromEntries(
    Object.keys(value)
      .sort()
      .map((k) => [k, sortedKeys(value[k])]),
  );
}

/**
 * `object` with its keys in the order the real server writes them: a typed
 * (built-in) object as its Go struct (kind, apiVersion, metadata in
 * ObjectMeta order, then the rest), a custom resource as unstructured JSON
 * (every map sorted by key).
 */
export function canonical(type: ResourceType, object: Obj): Obj {
  if (type.custom) return sortedKeys(object) as Obj;
  const meta = metaOf(object);
  const ordered: Obj = {};
  for (const key of META_ORDER) if (meta[key] !== undefined) ordered[key] = meta[key];
  for (const [key, value] of Object.entries(meta)) if (!(key in ordered)) ordered[key] = value;
  const { kind, apiVersion, metadata: _m, ...rest } = object;
  return { kind, apiVersion, metadata: ordered, ...rest };
}

/** Deep equality of two JSON values, ignoring key order. */
export function sameJson(a: unknown, b: unknown): boolean {
  return isDeepStrictEqual(a, b);
}
