/**
 * Kubernetes objects as the API server returns them, for the operator's
 * in-memory tests: a minimal valid ApiPolicy and a (meshed) Pod.
 */
import { AGENT_CONTAINER } from '../../operator/index/policy-index.ts';

/** A minimal valid ApiPolicy object as the API server returns it. */
export function policyObject(
  name: string,
  opts: {
    namespace?: string;
    generation?: number;
    created?: string;
    selector?: unknown;
    port?: number;
    path?: string;
    uid?: string;
  } = {},
) {
  return {
    apiVersion: 'tollgate.dev/v1alpha1',
    kind: 'ApiPolicy',
    metadata: {
      name,
      namespace: opts.namespace ?? 'shop',
      uid: opts.uid ?? `uid-${name}`,
      generation: opts.generation ?? 1,
      creationTimestamp: opts.created ?? '2026-01-01T00:00:00Z',
    },
    spec: {
      ...(opts.selector === undefined ? {} : { selector: opts.selector }),
      ...(opts.port === undefined ? {} : { port: opts.port }),
      routes: [{ name: 'r', path: opts.path ?? '/ok', methods: ['GET'], public: true }],
    },
  };
}

export function podObject(
  name: string,
  labels: Record<string, string>,
  opts: {
    namespace?: string;
    meshed?: boolean;
    annotations?: Record<string, string>;
    deleting?: boolean;
  } = {},
) {
  return {
    metadata: {
      name,
      namespace: opts.namespace ?? 'shop',
      uid: `uid-${name}`,
      labels,
      ...(opts.annotations ? { annotations: opts.annotations } : {}),
      ...(opts.deleting ? { deletionTimestamp: '2026-01-01T00:00:00Z' } : {}),
    },
    spec: {
      serviceAccountName: 'orders',
      containers: [{ name: 'app' }, ...(opts.meshed === false ? [] : [{ name: AGENT_CONTAINER }])],
    },
    status: { phase: 'Running' },
  };
}
