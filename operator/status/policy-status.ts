/**
 * The status of an ApiPolicy, computed from the index and the sidecars' ACKs
 * (pure: the reconciler writes it). `Accepted` says whether this generation is
 * valid and governs its pods (Valid | Invalid | Conflicted); `Programmed`
 * whether every selected sidecar runs it (AllSynced | Pending | Rejected |
 * NoWorkloads | Invalid | Conflicted); `workloads` counts the selected sidecars
 * and those that ACKed a bundle holding this generation.
 */
import { canonicalJson } from '../../policy/compile/hash.ts';
import { formatPath } from '../../policy/diagnostics.ts';
import { keyOf, type PodInfo, type PolicyIndex, type PolicyRecord } from '../index/policy-index.ts';

/** What a pod's sidecar last said about its bundles. */
export interface AckState {
  /** The bundle version it ACKed last ("" if none). */
  version: string;
  /** Its last NACK, if it came after that ACK. */
  nack: { version: string; error: string } | null;
}

export type AckView = (pod: PodInfo) => AckState;

export interface Condition {
  type: 'Accepted' | 'Programmed';
  status: 'True' | 'False';
  reason: string;
  message: string;
  observedGeneration: number;
  lastTransitionTime?: string;
}

export type PolicyStatus = {
  observedGeneration: number;
  conditions: Condition[];
  workloads: { selected: number; programmed: number };
  policyHash?: string;
};

/** A sidecar that refused the bundle holding this policy. */
export interface Rejection {
  pod: string;
  version: string;
  error: string;
}

export interface StatusResult {
  status: PolicyStatus;
  rejections: Rejection[];
  /** Older policies this one loses to, as `namespace/name` (empty unless Conflicted). */
  conflictsWith: string[];
}

const MAX_LISTED = 5;

function listed(items: string[]): string {
  const head = items.slice(0, MAX_LISTED).join('; ');
  return items.length > MAX_LISTED ? `${head}; and ${items.length - MAX_LISTED} more` : head;
}

/** Parses the `tollgate.dev/policy-error` annotation ("version: error"). */
export function parseNack(annotation: string): AckState['nack'] {
  const at = annotation.indexOf(': ');
  if (at <= 0) return null;
  return { version: annotation.slice(0, at), error: annotation.slice(at + 2) };
}

/** The ACK state the pod's annotations record (written by whichever operator replica got the ACK). */
export function annotatedAck(pod: PodInfo): AckState {
  return { version: pod.ackedVersion, nack: parseNack(pod.nack) };
}

export function computeStatus(index: PolicyIndex, record: PolicyRecord, acks: AckView): StatusResult {
  const generation = record.generation;
  const selected = index.selectedPods(record);
  const base = {
    observedGeneration: generation,
    ...(record.running ? { policyHash: record.running.compiled.hash } : {}),
  };
  if (!record.valid) {
    const problems = record.diagnostics
      .filter((d) => d.severity === 'error')
      .map((d) => `${formatPath(d.path)}: ${d.message}`);
    const running = record.running
      ? `generation ${record.running.generation} keeps running`
      : 'no generation of this policy was ever accepted';
    return {
      status: {
        ...base,
        conditions: [
          {
            type: 'Accepted',
            status: 'False',
            reason: 'Invalid',
            message: listed(problems),
            observedGeneration: generation,
          },
          {
            type: 'Programmed',
            status: 'False',
            reason: 'Invalid',
            message: `generation ${generation} is invalid; ${running}`,
            observedGeneration: generation,
          },
        ],
        workloads: { selected: selected.length, programmed: 0 },
      },
      rejections: [],
      conflictsWith: [],
    };
  }
  let programmed = 0;
  const rejections: Rejection[] = [];
  const winners = new Set<string>();
  const lostOn: string[] = [];
  for (const pod of selected) {
    const workload = index.bundleFor(pod);
    const lost = workload.conflicts.filter(
      (c) => c.policy.namespace === record.namespace && c.policy.name === record.name,
    );
    for (const c of lost) {
      winners.add(keyOf(c.winner.namespace, c.winner.name));
      lostOn.push(`pod ${pod.name}${c.port === null ? '' : ` port ${c.port}`}`);
    }
    const runsHere = workload.bundle.policies.some(
      (p) =>
        p.ref.namespace === record.namespace && p.ref.name === record.name && p.ref.generation === generation,
    );
    const ack = acks(pod);
    if (runsHere && ack.version === workload.version) programmed++;
    if (ack.nack && ack.nack.version === workload.version) {
      rejections.push({
        pod: keyOf(pod.namespace, pod.name),
        version: ack.nack.version,
        error: ack.nack.error,
      });
    }
  }
  const conflictsWith = [...winners].sort();
  const accepted: Condition =
    conflictsWith.length > 0
      ? {
          type: 'Accepted',
          status: 'False',
          reason: 'Conflicted',
          message: `selects the same pods and port as the older ${listed(conflictsWith)}, which wins (${listed(lostOn)})`,
          observedGeneration: generation,
        }
      : {
          type: 'Accepted',
          status: 'True',
          reason: 'Valid',
          message: 'the policy is valid',
          observedGeneration: generation,
        };
  return {
    status: {
      ...base,
      conditions: [
        accepted,
        programmedCondition(generation, selected.length, programmed, rejections, conflictsWith),
      ],
      workloads: { selected: selected.length, programmed },
    },
    rejections,
    conflictsWith,
  };
}

function programmedCondition(
  generation: number,
  selected: number,
  programmed: number,
  rejections: Rejection[],
  conflictsWith: string[],
): Condition {
  const c = (status: 'True' | 'False', reason: string, message: string): Condition => ({
    type: 'Programmed',
    status,
    reason,
    message,
    observedGeneration: generation,
  });
  const counted = `${programmed} of ${selected} selected sidecars run generation ${generation}`;
  if (rejections.length > 0) {
    return c(
      'False',
      'Rejected',
      `${counted}; ${listed(rejections.map((r) => `${r.pod} rejected ${r.version}: ${r.error}`))}`,
    );
  }
  if (conflictsWith.length > 0 && programmed === 0)
    return c('False', 'Conflicted', `${counted}; it loses to older policies`);
  if (selected === 0)
    return c('False', 'NoWorkloads', 'no running pod with a Tollgate sidecar matches the selector');
  if (programmed === selected) return c('True', 'AllSynced', counted);
  return c('False', 'Pending', counted);
}

/** Carries `lastTransitionTime` over from the current conditions when a condition's status did not change. */
export function withTransitionTimes(
  desired: PolicyStatus,
  current: readonly Partial<Condition>[] | undefined,
  now: Date,
): PolicyStatus {
  const conditions = desired.conditions.map((c) => {
    const before = current?.find((x) => x.type === c.type);
    const since =
      before && before.status === c.status && before.lastTransitionTime
        ? before.lastTransitionTime
        : now.toISOString();
    return { ...c, lastTransitionTime: since };
  });
  return { ...desired, conditions };
}

/** True when `current` already says what `desired` says (transition times aside). */
export function sameStatus(desired: PolicyStatus, current: unknown): boolean {
  const strip = (status: unknown): unknown => {
    if (typeof status !== 'object' || status === null) return null;
    const { conditions, ...rest } = status as { conditions?: unknown };
    const list = Array.isArray(conditions) ? conditions : [];
    return {
      ...rest,
      conditions: list.map((c) => {
        const { lastTransitionTime: _, ...kept } = c as Record<string, unknown>;
        return kept;
      }),
    };
  };
  return canonicalJson(strip(desired)) === canonicalJson(strip(current));
}
