/**
 * The decision for one request described by facts (no I/O): normalize → route
 * and method → sunset → authentication outcome → authorize → rate limit. The CLI
 * (`check`, `test`) calls it offline; the agent runs the same stages per request.
 */
import { whenContext } from '../cel/when.ts';
import type { CompiledRateLimit } from '../compile/bundle.ts';
import type { Admitter } from '../ratelimit/rate-limiter.ts';
import type { AuthzInput, Identity } from './authorize.ts';
import { claimValue } from './claims.ts';
import type { PolicyEngine, PolicyRuntime, RouteRuntime } from './engine.ts';
import { parsePeer } from './peer.ts';

export interface RequestFacts {
  method: string;
  /** The raw request target, e.g. `/v1/users/alice/orders?x=1`. */
  target: string;
  /** Lowercase names. */
  headers?: Readonly<Record<string, string>>;
  /** A verified token (`check --claims`), or null. */
  identity?: Identity | null;
  /** Set when a token was presented and failed verification (why). */
  tokenError?: string | null;
  /** mTLS peer SPIFFE ID. */
  peer?: string | null;
  ip?: string;
  /** App port the request is for (selects the policy); null = the port-less policy. */
  port?: number | null;
  /** Epoch ms, for sunsets. */
  now?: number;
  /** Applies the route's rate limits; without it limits are listed, not applied. */
  rateLimiter?: Admitter;
}

export type DecisionCode =
  | 'OK'
  | 'OK_UNDECLARED'
  | 'ERR_NO_POLICY'
  | 'ERR_PATH_INVALID'
  | 'ERR_ROUTE_NOT_FOUND'
  | 'ERR_ROUTE_METHOD'
  | 'ERR_ROUTE_SUNSET'
  | 'ERR_AUTHN_INVALID_TOKEN'
  | 'ERR_AUTHN_REQUIRED'
  | 'ERR_AUTHZ_DENIED'
  | 'ERR_RATE_LIMITED';

export interface Decision {
  /** What the client gets (in Audit mode always the forward). */
  status: number;
  /** What the policy decided, enforced or not. */
  verdict: 'allow' | 'deny';
  /** The status an Enforce-mode policy would answer (200 = forwarded). */
  wouldStatus: number;
  enforced: boolean;
  code: DecisionCode;
  reason: string;
  /** Why the other rules did not hold. */
  notes: string[];
  policy: string | null;
  route: string | null;
  /** The allow rule (field path) that allowed the request. */
  rule: string | null;
  /** The rate limit that refused it, or null. */
  limit: string | null;
  /** Rate limits that apply to the route. */
  limits: string[];
  path: string | null;
  params: Record<string, string>;
  /** Allow header value for 405. */
  allow: string[] | null;
}

const STATUS: Record<DecisionCode, number> = {
  OK: 200,
  OK_UNDECLARED: 200,
  ERR_NO_POLICY: 503,
  ERR_PATH_INVALID: 400,
  ERR_ROUTE_NOT_FOUND: 404,
  ERR_ROUTE_METHOD: 405,
  ERR_ROUTE_SUNSET: 410,
  ERR_AUTHN_INVALID_TOKEN: 401,
  ERR_AUTHN_REQUIRED: 401,
  ERR_AUTHZ_DENIED: 403,
  ERR_RATE_LIMITED: 429,
};

type Partial = Omit<Decision, 'status' | 'verdict' | 'wouldStatus' | 'enforced' | 'policy'>;

function base(): Partial {
  return {
    code: 'OK',
    reason: '',
    notes: [],
    route: null,
    rule: null,
    limit: null,
    limits: [],
    path: null,
    params: {},
    allow: null,
  };
}

function finish(rt: PolicyRuntime | null, d: Partial): Decision {
  const wouldStatus = STATUS[d.code];
  // A target that cannot be normalized is never forwarded, so it is refused in Audit mode too.
  const enforced = rt === null || rt.policy.mode === 'Enforce' || d.code === 'ERR_PATH_INVALID';
  const verdict = wouldStatus < 400 ? 'allow' : 'deny';
  return {
    ...d,
    status: enforced ? wouldStatus : 200,
    verdict,
    wouldStatus,
    enforced,
    policy: rt ? `${rt.policy.ref.namespace}/${rt.policy.ref.name}` : null,
  };
}

/** Decides one request against the engine's policy for `facts.port`. */
export function decide(engine: PolicyEngine | null, input: RequestFacts): Decision {
  const facts: RequestFacts = { ...input, ip: input.ip ?? '127.0.0.1' };
  const rt = engine?.policyFor(facts.port ?? null) ?? null;
  if (!rt)
    return finish(null, { ...base(), code: 'ERR_NO_POLICY', reason: 'no policy is loaded for this port' });
  const d = base();
  const routed = rt.route(facts.method, facts.target);
  if (routed.kind === 'bad-target')
    return finish(rt, { ...d, code: 'ERR_PATH_INVALID', reason: `${routed.code}: ${routed.detail}` });
  d.path = routed.target.path;
  if (routed.kind === 'method-not-allowed') {
    const reason = `${facts.method} is not declared for this path`;
    return finish(rt, { ...d, code: 'ERR_ROUTE_METHOD', reason, allow: routed.allow });
  }
  if (routed.kind === 'unmatched' && rt.policy.unmatched === 'Deny') {
    return finish(rt, { ...d, code: 'ERR_ROUTE_NOT_FOUND', reason: 'no route matches this path' });
  }
  if (facts.tokenError) {
    // A bad token is refused even where none is needed (public routes, unmatched: Allow).
    return finish(rt, {
      ...d,
      code: 'ERR_AUTHN_INVALID_TOKEN',
      reason: `invalid token: ${facts.tokenError}`,
    });
  }
  if (routed.kind === 'unmatched') {
    return finish(rt, {
      ...d,
      code: 'OK_UNDECLARED',
      reason: 'no route matches; unmatched: Allow forwards it',
    });
  }
  const { route } = routed;
  d.route = route.route.name;
  d.params = routed.params;
  d.limits = route.limits.map((l) => l.name);
  const sunset = route.route.deprecation?.sunsetMs ?? null;
  if (sunset !== null && (facts.now ?? Date.now()) > sunset) {
    return finish(rt, {
      ...d,
      code: 'ERR_ROUTE_SUNSET',
      reason: `route was sunset on ${route.route.deprecation?.sunset}`,
    });
  }
  const authz = route.access.authorize(
    authzInput(facts, routed.target.path, routed.target.query, routed.params),
  );
  if (!authz.allowed) {
    const code = authz.status === 401 ? 'ERR_AUTHN_REQUIRED' : 'ERR_AUTHZ_DENIED';
    return finish(rt, { ...d, code, reason: authz.reason, notes: authz.notes });
  }
  d.rule = authz.rule;
  d.reason = authz.reason;
  const limited = applyLimits(route, facts);
  if (limited)
    return finish(rt, {
      ...d,
      code: 'ERR_RATE_LIMITED',
      limit: limited,
      reason: `rate limit ${limited} exceeded`,
    });
  return finish(rt, d);
}

function applyLimits(route: RouteRuntime, facts: RequestFacts): string | null {
  if (!facts.rateLimiter || route.limits.length === 0) return null;
  const outcomes = facts.rateLimiter.admit(
    route.limits.map((limit) => ({ limit, key: rateLimitKey(limit, facts) })),
  );
  return outcomes.find((o) => !o.allowed)?.limit.name ?? null;
}

/** The bucket key of a request under a limit; null when the request lacks it (shared "missing key" bucket). */
export function rateLimitKey(limit: CompiledRateLimit, facts: RequestFacts): string | null {
  const k = limit.key;
  switch (k.kind) {
    case 'workload':
      return '';
    case 'ip':
      return facts.ip ?? null;
    case 'peer':
      return facts.peer ?? null;
    case 'header':
      return facts.headers?.[k.name] ?? null;
    case 'claim': {
      const v = facts.identity ? claimValue(facts.identity.claims, k.claim) : undefined;
      return typeof v === 'string' || typeof v === 'number' ? String(v) : null;
    }
  }
}

function authzInput(
  facts: RequestFacts,
  path: string,
  query: string | null,
  params: Record<string, string>,
): AuthzInput {
  const peer = facts.peer ? parsePeer(facts.peer) : null;
  const ip = facts.ip ?? '127.0.0.1';
  return {
    identity: facts.identity ?? null,
    peer,
    ip,
    whenContext: () =>
      whenContext({
        method: facts.method,
        path,
        headers: facts.headers ?? {},
        host: facts.headers?.host ?? '',
        query,
        params,
        claims: facts.identity?.claims ?? null,
        peer,
        ip,
      }),
  };
}
