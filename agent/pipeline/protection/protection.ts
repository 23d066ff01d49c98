/**
 * Abuse protection in the request pipeline: the protectors of the loaded
 * policies (kept across bundle reloads while a policy's protection is
 * unchanged), the client key, and the per-request guard decideRequest uses to
 * record events and refuse blocked clients with 429.
 *
 * Events: `unmatched` is a request whose path matches no route (under
 * `unmatched: Deny` or `Allow`; a 405 on a declared path is not one);
 * `authFailures` is a request answered (or, in Audit mode, that would be
 * answered) 401: a presented token that fails verification, or no valid token
 * where one could have allowed the request. A 403 is not one. A request counts
 * at most once per kind.
 */
import type { CompiledPolicy } from '../../../policy/compile/bundle.ts';
import { PolicyError } from '../../errors.ts';
import { publishSecurity } from '../../telemetry/channels.ts';
import {
  type Block,
  hasProtection,
  type ProtectionKind,
  Protector,
  type ProtectorOptions,
} from './protector.ts';

/** A client key just crossed a threshold. */
export interface BlockEvent {
  /** The client key: the mTLS peer identity, else the client IP. */
  key: string;
  reason: ProtectionKind;
  /** Epoch ms at which the block lifts. */
  until: number;
  /** `namespace/name` of the policy. */
  policy: string;
  mode: CompiledPolicy['mode'];
}

/** A request refused because its client key is blocked (Enforce mode). */
export interface RefuseEvent {
  reason: ProtectionKind;
  policy: string;
}

/** What the pipeline needs for protection; the agent supplies it (logging and metrics included). */
export interface ProtectionEnv {
  /** The policy's protector, or null when it declares no protection. */
  protector(policy: CompiledPolicy): Protector | null;
  onBlock(event: BlockEvent): void;
  onRefuse(event: RefuseEvent): void;
}

/**
 * One protector per policy, by `namespace/name`, mode and protection config:
 * a reload that leaves them unchanged keeps the counts and blocks (a policy
 * edit elsewhere must not unblock everyone); a changed config or mode starts
 * afresh (Audit-era blocks are never enforced by a switch to Enforce).
 */
export class ProtectorRegistry {
  readonly #options: ProtectorOptions;
  readonly #byName = new Map<string, { identity: string; protector: Protector }>();
  readonly #byPolicy = new WeakMap<CompiledPolicy, Protector | null>();

  constructor(options: ProtectorOptions = {}) {
    this.#options = options;
  }

  protector(policy: CompiledPolicy): Protector | null {
    const cached = this.#byPolicy.get(policy);
    if (cached !== undefined) return cached;
    let protector: Protector | null = null;
    const name = policyName(policy);
    if (hasProtection(policy.protection)) {
      const identity = JSON.stringify([policy.mode, policy.protection]);
      const known = this.#byName.get(name);
      if (known && known.identity === identity) protector = known.protector;
      else {
        protector = new Protector(policy.protection, this.#options);
        this.#byName.set(name, { identity, protector });
      }
    } else {
      this.#byName.delete(name);
    }
    this.#byPolicy.set(policy, protector);
    return protector;
  }
}

/** The metrics calls protection makes (Metrics' shape); blocks are published as security events. */
export interface ProtectionSinks {
  metrics: { inc(name: string, labels?: Record<string, string>, by?: number, help?: string): void };
  now?: () => number;
}

/**
 * The agent's ProtectionEnv: a block is published as the `client_blocked`
 * security event (the access log writes it as `client blocked`) and counted;
 * refusals are counted.
 */
export function protectionEnv(sinks: ProtectionSinks, options: ProtectorOptions = {}): ProtectionEnv {
  const registry = new ProtectorRegistry({ ...options, ...(sinks.now ? { now: sinks.now } : {}) });
  return {
    protector: (policy) => registry.protector(policy),
    onBlock: (e) => {
      publishSecurity({
        name: 'client_blocked',
        fields: {
          key: e.key,
          reason: e.reason,
          until: new Date(e.until).toISOString(),
          policy: e.policy,
          mode: e.mode,
        },
      });
      sinks.metrics.inc(
        'tollgate_protection_blocks_total',
        { reason: e.reason },
        1,
        'Client keys blocked by protection',
      );
    },
    onRefuse: (e) =>
      sinks.metrics.inc(
        'tollgate_protection_refused_total',
        { reason: e.reason },
        1,
        'Requests refused because their client key is blocked',
      ),
  };
}

/** The client key: the mTLS peer identity when the connection carried one, else the client IP. */
export function clientKey(info: { peerId: string | null; clientIp: string }): string {
  // A SPIFFE ID (spiffe://...) and an IP address can never be equal.
  return info.peerId ?? info.clientIp;
}

/** The 429 of a blocked client, with `Retry-After` in whole seconds until the block lifts (at least 1). */
export function blockedError(block: Block, now: number): PolicyError {
  const seconds = Math.max(1, Math.ceil((block.until - now) / 1000));
  return new PolicyError('ERR_PROTECTION_BLOCKED', 'too many suspicious requests from this client', {
    'retry-after': String(seconds),
  });
}

/** Protection for one request: events are recorded, a blocked key is refused. */
export class RequestGuard {
  readonly #env: ProtectionEnv;
  readonly #protector: Protector;
  readonly #policy: CompiledPolicy;
  readonly #key: string;
  readonly #now: () => number;
  readonly #counted = new Set<ProtectionKind>();

  constructor(
    env: ProtectionEnv,
    protector: Protector,
    policy: CompiledPolicy,
    key: string,
    now: () => number,
  ) {
    this.#env = env;
    this.#protector = protector;
    this.#policy = policy;
    this.#key = key;
    this.#now = now;
  }

  /** Counts an event of this request (once per kind); true when it started a block (then reported). */
  record(kind: ProtectionKind): boolean {
    if (this.#counted.has(kind)) return false;
    this.#counted.add(kind);
    const { block } = this.#protector.record(this.#key, kind);
    if (!block) return false;
    this.#env.onBlock({
      key: this.#key,
      reason: block.reason,
      until: block.until,
      policy: policyName(this.#policy),
      mode: this.#policy.mode,
    });
    return true;
  }

  /** The 429 when the key is blocked (counted as a refusal in Enforce mode), else null. */
  refusal(): PolicyError | null {
    const block = this.#protector.blocked(this.#key);
    if (!block) return null;
    if (this.#policy.mode === 'Enforce')
      this.#env.onRefuse({ reason: block.reason, policy: policyName(this.#policy) });
    return blockedError(block, this.#now());
  }
}

/** The request's guard, or null when the policy declares no protection (or none is wired). */
export function guardRequest(
  env: ProtectionEnv | undefined,
  policy: CompiledPolicy,
  info: { peerId: string | null; clientIp: string },
  now: () => number,
): RequestGuard | null {
  const protector = env?.protector(policy) ?? null;
  return env && protector ? new RequestGuard(env, protector, policy, clientKey(info), now) : null;
}

function policyName(policy: CompiledPolicy): string {
  return `${policy.ref.namespace}/${policy.ref.name}`;
}
