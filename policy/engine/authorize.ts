/**
 * Authorization of one request against a route's access (apipolicy.md §
 * Authorization): allow rules compiled once per bundle into predicate lists,
 * evaluated per request with an explanation for every rule that did not hold.
 */
import { type CompiledWhen, compileWhen, type WhenContext } from '../cel/when.ts';
import type { CompiledAllowRule, RouteAccess } from '../compile/bundle.ts';
import { claimMatches, claimValue, tokenScopes } from './claims.ts';
import { ipInBlocks, parseIpBlock } from './ip-block.ts';
import { compilePeerPattern, type PeerIdentity } from './peer.ts';

/** The verified identity of the caller, as the authn stage (or `check --claims`) established it. */
export interface Identity {
  provider: string;
  claims: Record<string, unknown>;
}

export interface AuthzInput {
  identity: Identity | null;
  peer: PeerIdentity | null;
  /** Client address (IPv4, IPv6 or IPv4-mapped IPv6). */
  ip: string;
  /** Built lazily: only `when` needs it. */
  whenContext: () => WhenContext;
}

type Check = (input: AuthzInput) => string | null;

interface RuleRuntime {
  source: string;
  needsToken: boolean;
  /** Checks that depend on the token (null = holds, else why not). */
  tokenChecks: Check[];
  /** Checks of the connection: peer, namespace, address. */
  transportChecks: Check[];
  when: CompiledWhen | null;
}

export type AuthzResult =
  | { allowed: true; rule: string | null; reason: string }
  | { allowed: false; status: 401 | 403; reason: string; notes: string[] };

export class AccessRuntime {
  readonly #access: RouteAccess;
  readonly #rules: RuleRuntime[];

  constructor(access: RouteAccess) {
    this.#access = access;
    this.#rules = access.kind === 'rules' ? access.rules.map(compileRule) : [];
  }

  get isPublic(): boolean {
    return this.#access.kind === 'public';
  }

  authorize(input: AuthzInput): AuthzResult {
    if (this.#access.kind === 'public') return { allowed: true, rule: null, reason: 'public route' };
    if (this.#access.kind === 'deny') {
      return {
        allowed: false,
        status: 403,
        reason: 'route has no allow rules and there is no defaults.allow',
        notes: [],
      };
    }
    const notes: string[] = [];
    let tokenWouldHelp = false;
    for (const rule of this.#rules) {
      const failure = evaluate(rule, input);
      if (failure === null) return { allowed: true, rule: rule.source, reason: `${rule.source} holds` };
      notes.push(`${rule.source}: ${failure}`);
      if (
        input.identity === null &&
        rule.needsToken &&
        rule.transportChecks.every((c) => c(input) === null)
      ) {
        tokenWouldHelp = true;
      }
    }
    return tokenWouldHelp
      ? { allowed: false, status: 401, reason: 'a valid token is required', notes }
      : { allowed: false, status: 403, reason: 'no allow rule holds', notes };
  }
}

function evaluate(rule: RuleRuntime, input: AuthzInput): string | null {
  for (const check of rule.transportChecks) {
    const why = check(input);
    if (why !== null) return why;
  }
  if (rule.needsToken && input.identity === null) return 'no valid token';
  for (const check of rule.tokenChecks) {
    const why = check(input);
    if (why !== null) return why;
  }
  if (rule.when) {
    const r = rule.when.evaluate(input.whenContext());
    if (!r.ok) return `when: ${r.reason} (denied)`;
    if (!r.value) return `when: ${rule.when.source} is false`;
  }
  return null;
}

function compileRule(rule: CompiledAllowRule): RuleRuntime {
  const tokenChecks: Check[] = [];
  const transportChecks: Check[] = [];
  const jwt = rule.jwt;
  if (jwt !== null && jwt !== 'Any') {
    tokenChecks.push((i) => (i.identity?.provider === jwt ? null : `token is not from provider ${jwt}`));
  }
  for (const { claim, values } of rule.claims ?? []) {
    tokenChecks.push((i) =>
      claimMatches(claimValue(i.identity?.claims ?? {}, claim), values)
        ? null
        : `claim ${claim} is not one of [${values.join(', ')}]`,
    );
  }
  if (rule.scopes) {
    const needed = rule.scopes;
    tokenChecks.push((i) => {
      const have = tokenScopes(i.identity?.claims ?? {});
      const missing = needed.filter((s) => !have.has(s));
      return missing.length === 0 ? null : `missing scope ${missing.join(', ')}`;
    });
  }
  if (rule.peers) {
    const patterns = rule.peers.map(compilePeerPattern);
    transportChecks.push((i) =>
      i.peer === null
        ? 'no mTLS peer identity'
        : patterns.some((p) => p(i.peer?.id ?? ''))
          ? null
          : `peer ${i.peer.id} not allowed`,
    );
  }
  if (rule.namespaces) {
    const nss = rule.namespaces;
    transportChecks.push((i) =>
      i.peer === null
        ? 'no mTLS peer identity'
        : nss.includes(i.peer.namespace)
          ? null
          : `peer namespace ${i.peer.namespace} not allowed`,
    );
  }
  if (rule.ipBlocks) {
    const blocks = rule.ipBlocks.map((text) => {
      const block = parseIpBlock(text);
      if (!block) throw new Error(`${rule.source}.ipBlocks: ${text} is not an IP address or CIDR block`);
      return block;
    });
    transportChecks.push((i) => (ipInBlocks(i.ip, blocks) ? null : `client address ${i.ip} not in ipBlocks`));
  }
  let when: CompiledWhen | null = null;
  if (rule.when !== null) {
    const r = compileWhen(rule.when);
    if (!r.ok) throw new Error(`${rule.source}.when: ${r.message}`);
    when = r.when;
  }
  const needsToken = rule.jwt !== null || rule.claims !== null || rule.scopes !== null;
  return { source: rule.source, needsToken, tokenChecks, transportChecks, when };
}
