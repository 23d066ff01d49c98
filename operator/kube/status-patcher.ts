/**
 * Writes the `status` of a custom resource (an ApiPolicy's conditions,
 * observedGeneration, workload counts) through its status subresource with a
 * JSON merge patch, the way a controller reports what it observed without
 * touching what the user declared. client-node 2.x sends patches as JSON Patch
 * unless a middleware sets the Content-Type, which {@link mergePatch} does.
 */
import type { CustomObjectsApi, KubernetesObject } from '@kubernetes/client-node';
import { mergePatch } from './request-options.ts';

/** The status-patching calls used (a `CustomObjectsApi` has them). */
export type StatusApi = Pick<
  CustomObjectsApi,
  'patchNamespacedCustomObjectStatus' | 'patchClusterCustomObjectStatus'
>;

/** Which custom object: `namespace` is omitted for cluster-scoped kinds. */
export interface CustomObjectRef {
  group: string;
  version: string;
  plural: string;
  namespace?: string;
  name: string;
}

/** Options of {@link patchStatus}. */
export interface PatchStatusOptions {
  /** Write only if the object is still at this version; else the API answers 409. Default: unconditional. */
  resourceVersion?: string;
  /** Recorded in managedFields. Default `tollgate-operator`. */
  fieldManager?: string;
}

/**
 * Merge-patches (RFC 7386) `status` into the object's status subresource and
 * returns the updated object. Merge semantics: objects merge key by key,
 * `null` removes a key, arrays (such as `conditions`) are replaced whole.
 * Spec, metadata and `generation` are left as they are. Rejects with
 * client-node's ApiException on failure (404 gone, 409 stale
 * `resourceVersion`, 422 invalid status).
 */
export async function patchStatus<T extends KubernetesObject = KubernetesObject>(
  api: StatusApi,
  ref: CustomObjectRef,
  status: Record<string, unknown>,
  options: PatchStatusOptions = {},
): Promise<T> {
  const body = {
    ...(options.resourceVersion === undefined
      ? {}
      : { metadata: { resourceVersion: options.resourceVersion } }),
    status,
  };
  const { group, version, plural, name } = ref;
  const fieldManager = options.fieldManager ?? 'tollgate-operator';
  const updated: unknown =
    ref.namespace === undefined
      ? await api.patchClusterCustomObjectStatus(
          { group, version, plural, name, body, fieldManager },
          mergePatch(),
        )
      : await api.patchNamespacedCustomObjectStatus(
          { group, version, plural, namespace: ref.namespace, name, body, fieldManager },
          mergePatch(),
        );
  return updated as T;
}
