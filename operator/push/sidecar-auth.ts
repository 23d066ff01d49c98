/**
 * Who may open a policy stream: the Hello's projected ServiceAccount token
 * (audience `tollgate`) is checked with a TokenReview, and its service account
 * must be the one the named pod runs as; a token bound to a pod must be bound
 * to that very pod. A refusal carries the gRPC status the stream ends with.
 */
import { status as GrpcStatus } from '@grpc/grpc-js';
import { type Hello, TOKEN_AUDIENCE } from '../../proto/policy-service.ts';
import type { PodInfo } from '../index/policy-index.ts';

/** The part of a TokenReview's status the operator reads. */
export interface TokenReviewResult {
  authenticated: boolean;
  username?: string;
  extra?: Record<string, string[]>;
  error?: string;
}

/** Sends a TokenReview (`authentication.k8s.io/v1`) for `token` with the given audiences. */
export type TokenReviewer = (token: string, audiences: string[]) => Promise<TokenReviewResult>;

/** Finds a pod (the index first, the API server for one just created). */
export type PodLookup = (namespace: string, name: string) => Promise<PodInfo | undefined>;

export type HelloOutcome =
  | { ok: true; pod: PodInfo; serviceAccount: string }
  | { ok: false; code: GrpcStatus; message: string };

const POD_NAME = 'authentication.kubernetes.io/pod-name';
const POD_UID = 'authentication.kubernetes.io/pod-uid';
const SA_PREFIX = 'system:serviceaccount:';

function refuse(code: GrpcStatus, message: string): HelloOutcome {
  return { ok: false, code, message };
}

/** Checks a Hello (or a SignRequest: the same pod, namespace and token); never throws (a failing TokenReview is UNAVAILABLE, so the sidecar retries). */
export async function authenticateHello(
  hello: Pick<Hello, 'podName' | 'podNamespace' | 'token'>,
  review: TokenReviewer,
  findPod: PodLookup,
): Promise<HelloOutcome> {
  if (!hello.podName || !hello.podNamespace) {
    return refuse(GrpcStatus.INVALID_ARGUMENT, 'hello must name the pod (podName, podNamespace)');
  }
  if (!hello.token) return refuse(GrpcStatus.UNAUTHENTICATED, 'hello carries no ServiceAccount token');
  let result: TokenReviewResult;
  try {
    result = await review(hello.token, [TOKEN_AUDIENCE]);
  } catch (e) {
    return refuse(GrpcStatus.UNAVAILABLE, `cannot review the token: ${(e as Error).message}`);
  }
  if (!result.authenticated) {
    return refuse(GrpcStatus.UNAUTHENTICATED, `token rejected: ${result.error || 'not authenticated'}`);
  }
  const username = result.username ?? '';
  const [namespace, serviceAccount, ...rest] = username.startsWith(SA_PREFIX)
    ? username.slice(SA_PREFIX.length).split(':')
    : [];
  if (namespace === undefined || serviceAccount === undefined || rest.length > 0) {
    return refuse(GrpcStatus.PERMISSION_DENIED, `${username || 'the token'} is not a ServiceAccount`);
  }
  const pod = await findPod(hello.podNamespace, hello.podName);
  if (!pod)
    return refuse(GrpcStatus.PERMISSION_DENIED, `pod ${hello.podNamespace}/${hello.podName} not found`);
  if (namespace !== pod.namespace || serviceAccount !== pod.serviceAccount) {
    return refuse(
      GrpcStatus.PERMISSION_DENIED,
      `ServiceAccount ${namespace}/${serviceAccount} cannot speak for pod ${pod.namespace}/${pod.name}, which runs as ${pod.serviceAccount}`,
    );
  }
  const boundName = result.extra?.[POD_NAME]?.[0];
  const boundUid = result.extra?.[POD_UID]?.[0];
  if (
    (boundName !== undefined && boundName !== pod.name) ||
    (boundUid !== undefined && boundUid !== pod.uid)
  ) {
    return refuse(
      GrpcStatus.PERMISSION_DENIED,
      `the token is bound to pod ${boundName ?? '?'}, not to ${pod.namespace}/${pod.name}`,
    );
  }
  return { ok: true, pod, serviceAccount };
}
