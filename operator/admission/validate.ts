/**
 * ApiPolicy admission validation: the webhook layer of "validate in layers"
 * (after the CRD's schema and CEL rules, before the compiler). It runs the
 * same `validatePolicy` as the CLI, the agent and the operator's index, and
 * denies a policy with errors the way the API server denies a schema-invalid
 * object: `422 Invalid`, the message listing `field.path: problem`, and one
 * `details.causes` entry per problem. Warning-severity findings become
 * AdmissionResponse warnings (kubectl prints them). Pure.
 *
 * An UPDATE that leaves `spec` as it was (labels, annotations, finalizers)
 * and any write to a policy being deleted are allowed even when the stored
 * spec is invalid (written before the webhook existed): denying them would
 * leave such a policy impossible to relabel or to finish deleting.
 */
import { isDeepStrictEqual } from 'node:util';
import { type Diagnostic, formatPath } from '../../policy/diagnostics.ts';
import { validatePolicy } from '../../policy/validate/validate-policy.ts';
import type { AdmissionRequest, AdmissionResult } from './admission-review.ts';

export const POLICY_GROUP = 'tollgate.dev';
export const POLICY_KIND = 'ApiPolicy';
/** The most problems listed in the denial message (every one is in `details.causes`). */
const MESSAGE_LIMIT = 10;

function record(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : {};
}

const line = (d: Diagnostic) => `${formatPath(d.path)}: ${d.message}`;

/** The admission decision for an ApiPolicy create or update. */
export function validateApiPolicyAdmission(request: AdmissionRequest): AdmissionResult {
  if (request.kind.group !== POLICY_GROUP || request.kind.kind !== POLICY_KIND)
    return { allowed: true, warnings: [`${POLICY_KIND} validation skipped a ${request.kind.kind}`] };
  if (request.operation !== 'CREATE' && request.operation !== 'UPDATE') return { allowed: true };
  const object = record(request.object);
  const metadata = record(object.metadata);
  if (metadata.deletionTimestamp !== undefined) return { allowed: true };
  if (
    request.operation === 'UPDATE' &&
    request.oldObject !== undefined &&
    isDeepStrictEqual(object.spec, record(request.oldObject).spec)
  )
    return { allowed: true };
  const { diagnostics } = validatePolicy(object);
  const errors = diagnostics.filter((d) => d.severity === 'error');
  const warnings = diagnostics.filter((d) => d.severity === 'warning').map(line);
  if (errors.length === 0) return { allowed: true, warnings };
  const name = request.name || (typeof metadata.name === 'string' ? metadata.name : '');
  const listed = errors.slice(0, MESSAGE_LIMIT).map(line);
  if (errors.length > MESSAGE_LIMIT) listed.push(`and ${errors.length - MESSAGE_LIMIT} more`);
  return {
    allowed: false,
    warnings,
    status: {
      code: 422,
      reason: 'Invalid',
      message: `${POLICY_KIND} ${JSON.stringify(name)} is invalid: ${listed.join('; ')}`,
      details: {
        name,
        group: POLICY_GROUP,
        kind: POLICY_KIND,
        causes: errors.map((d) => ({
          reason: 'FieldValueInvalid',
          message: d.message,
          field: formatPath(d.path),
        })),
      },
    },
  };
}
