/**
 * The two webhooks as handlers for the webhook server: `/inject` (Pod
 * CREATE → the injection patch, see inject.ts) and `/validate` (ApiPolicy
 * CREATE/UPDATE → validate.ts). Requests for anything else are allowed
 * unchanged: the webhook configurations' rules decide what is sent here.
 */
import type { V1Pod } from '@kubernetes/client-node';
import type { KubeLogger } from '../kube/log.ts';
import type { AdmissionRequest, AdmissionResult } from './admission-review.ts';
import { type InjectOptions, injectSidecar } from './inject.ts';
import { validateApiPolicyAdmission } from './validate.ts';
import type { AdmissionHandler } from './webhook-server.ts';

export const INJECT_PATH = '/inject';
export const VALIDATE_PATH = '/validate';

export interface AdmissionHandlersOptions {
  inject: InjectOptions;
  /** The labels of a namespace (the informer's view, else a read). */
  namespaceLabels: (namespace: string) => Promise<Readonly<Record<string, string>>>;
  log: KubeLogger;
}

function isPodCreate(request: AdmissionRequest): boolean {
  return (
    request.kind.group === '' &&
    request.kind.kind === 'Pod' &&
    request.operation === 'CREATE' &&
    request.subResource === undefined
  );
}

async function inject(o: AdmissionHandlersOptions, request: AdmissionRequest): Promise<AdmissionResult> {
  if (!isPodCreate(request)) return { allowed: true };
  const pod = request.object;
  if (typeof pod !== 'object' || pod === null || Array.isArray(pod))
    return {
      allowed: false,
      status: { code: 400, reason: 'BadRequest', message: 'the request carries no Pod' },
    };
  const meta = (pod as V1Pod).metadata;
  const namespace = request.namespace ?? meta?.namespace ?? 'default';
  const result = injectSidecar(pod as V1Pod, await o.namespaceLabels(namespace), o.inject);
  const who = { namespace, pod: meta?.name ?? meta?.generateName ?? '', dryRun: request.dryRun === true };
  if (!result.injected) {
    o.log.debug({ ...who, reason: result.reason }, 'sidecar not injected');
    return { allowed: true, warnings: result.warnings };
  }
  o.log.info({ ...who, warnings: result.warnings.length }, 'sidecar injected');
  return { allowed: true, patch: result.patch, warnings: result.warnings };
}

/** `{ '/inject': ..., '/validate': ... }` for {@link WebhookServer}. */
export function admissionHandlers(options: AdmissionHandlersOptions): Record<string, AdmissionHandler> {
  return {
    [INJECT_PATH]: (request) => inject(options, request),
    [VALIDATE_PATH]: (request) => validateApiPolicyAdmission(request),
  };
}
