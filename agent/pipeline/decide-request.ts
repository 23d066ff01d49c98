/**
 * The per-request policy pipeline of the agent, in the contract's order:
 * normalize → route/method → protection block → sunset → authenticate →
 * authorize → rate limit →
 * validate (the head: Content-Length 413, content type 415, query 400; the
 * body is checked next, by validate/request-body.ts, from `plan.body`).
 * It returns a forward plan or throws a PolicyError; in Audit mode every denial
 * is recorded as a finding instead and the request goes on unchanged.
 */
import type { IncomingMessage } from 'node:http';
import type { CompiledPolicy } from '../../policy/compile/bundle.ts';
import type { AuthzInput } from '../../policy/engine/authorize.ts';
import { rateLimitKey } from '../../policy/engine/decide.ts';
import type { PolicyEngine, RouteRuntime } from '../../policy/engine/engine.ts';
import { parsePeer } from '../../policy/engine/peer.ts';
import { closestToRefusing } from '../../policy/ratelimit/rate-limiter.ts';
import { PolicyError } from '../errors.ts';
import { buildUpstreamHeaders } from '../proxy/upstream-headers.ts';
import type { RequestFacts } from '../telemetry/channels.ts';
import { claimHeaderValues, stripToken } from './authn/authenticator.ts';
import type { BundleState } from './bundle-state.ts';
import { deprecationHeaders } from './deprecation.ts';
import { guardRequest, type ProtectionEnv } from './protection/protection.ts';
import type { RequestLimiter } from './ratelimit/global-limiter.ts';
import { rateLimitHeaders } from './ratelimit/rate-limit-headers.ts';
import type { BodyPlan } from './validate/request-body.ts';
import { checkRequestHead } from './validate/request-validator.ts';
import { whenContextFor } from './when-context.ts';

/** What the forwarder needs once a request is allowed. */
export interface ForwardPlan {
  policy: CompiledPolicy;
  route: string | null;
  /** Normalized path plus the original query: exactly what was authorized. */
  path: string;
  headers: Record<string, string | string[]>;
  timeoutMs: number;
  /** Headers added to the client response (rate limit, deprecation); none in Audit mode. */
  responseHeaders: Record<string, string>;
  /** Denials an Enforce-mode policy would have answered (Audit mode only). */
  findings: PolicyError[];
  decision: 'allow' | 'undeclared' | 'audit-deny';
  /** The body checks still to run: the route's, or the body limit of undeclared traffic; null: none. */
  body: BodyPlan | null;
}

export interface RequestInfo {
  req: IncomingMessage;
  requestId: string;
  clientIp: string;
  proto: 'http' | 'https';
  /** mTLS peer SPIFFE ID, when the connection carried a verified certificate. */
  peerId: string | null;
  /** SHA-256 (hex) of that certificate, for x-forwarded-client-cert. */
  peerCertHash?: string;
  /** Filled in for telemetry as the stages run (never read by them); none when absent. */
  facts?: RequestFacts;
}

export interface PipelineEnv {
  port: number | null;
  /** Local buckets (RateLimiter), or Redis-shared ones for Global limits (GlobalLimiter). */
  limiter: RequestLimiter;
  now: () => number;
  state: (engine: PolicyEngine) => BundleState;
  /** Abuse protection (protection/protection.ts); none when absent. */
  protection?: ProtectionEnv;
}

const DEFAULT_TIMEOUT_MS = 30_000;

export async function decideRequest(
  engine: PolicyEngine | null,
  info: RequestInfo,
  env: PipelineEnv,
): Promise<ForwardPlan> {
  if (!engine) throw new PolicyError('ERR_NO_POLICY', 'no policy is loaded for this workload yet');
  const rt = engine.policyFor(env.port);
  // A loaded bundle without a policy for this port (e.g. none selects the pod any more): deny, never forward.
  if (!rt)
    throw new PolicyError('ERR_POLICY_NONE', 'no policy applies to this workload: every request is denied');
  const policy = rt.policy;
  const notes = info.facts;
  if (notes) notes.policy = `${policy.ref.namespace}/${policy.ref.name}`;
  const audit = policy.mode === 'Audit';
  const findings: PolicyError[] = [];
  let routeName: string | null = null;
  // Every response of a deprecated route says so, denials included.
  let routeHeaders: Record<string, string> = {};
  const deny = (denial: PolicyError) => {
    const e =
      Object.keys(routeHeaders).length === 0
        ? denial
        : new PolicyError(
            denial.code,
            denial.detail,
            { ...routeHeaders, ...denial.headers },
            { ...denial.extensions },
          );
    e.route = routeName;
    if (!audit) throw e;
    findings.push(e);
  };
  const { req } = info;
  // The connection's kind comes before anything in it: mtls.mode of the policy in force.
  if (policy.mtlsMode === 'Strict' && info.peerId === null) {
    deny(new PolicyError('ERR_MTLS_REQUIRED', 'this workload accepts mutual TLS connections only'));
  } else if (policy.mtlsMode === 'Disabled' && info.peerId !== null) {
    deny(new PolicyError('ERR_MTLS_DISABLED', 'this workload accepts plaintext connections only'));
  }
  const method = req.method ?? 'GET';
  const routed = rt.route(method, req.url ?? '/');
  // A target that cannot be normalized cannot be forwarded safely, audit or not.
  if (routed.kind === 'bad-target') throw new PolicyError('ERR_PATH_INVALID', routed.detail);
  const target = routed.target;
  if (notes) notes.path = target.path;
  // Protection: an unmatched path is an event (recorded before its 404 is answered).
  const guard = guardRequest(env.protection, policy, info, env.now);
  if (guard && routed.kind === 'unmatched') guard.record('unmatched');
  // Every 401 is an authentication failure; the one that starts a block is answered 429.
  const authFailure = (denial: PolicyError) => {
    const refusal = guard?.record('authFailures') ? guard.refusal() : null;
    if (refusal) deny(refusal);
    deny(denial);
  };
  if (routed.kind === 'method-not-allowed') {
    deny(
      new PolicyError('ERR_ROUTE_METHOD', `${method} is not allowed here`, {
        allow: routed.allow.join(', '),
      }),
    );
  } else if (routed.kind === 'unmatched' && policy.unmatched === 'Deny') {
    deny(new PolicyError('ERR_ROUTE_NOT_FOUND', 'no route matches this path'));
  }
  // The contract's order: route/method, then the protection block, then authentication.
  const refusal = guard?.refusal();
  if (refusal) deny(refusal);
  const route: RouteRuntime | null = routed.kind === 'matched' ? routed.route : null;
  const params = routed.kind === 'matched' ? routed.params : {};
  routeName = route?.route.name ?? null;
  if (notes && route) {
    notes.route = route.route.name;
    notes.routePath = route.route.path;
  }
  if (route?.route.deprecation) routeHeaders = deprecationHeaders(route.route.deprecation);
  const now = env.now();
  const sunset = route?.route.deprecation?.sunsetMs ?? null;
  if (sunset !== null && now > sunset)
    deny(new PolicyError('ERR_ROUTE_SUNSET', 'this API route has been retired'));

  const state = env.state(engine);
  const auth = state.authenticator(policy);
  const authn = auth ? await auth.authenticate(req.headers) : ({ kind: 'none' } as const);
  const identity = authn.kind === 'valid' ? { provider: authn.provider, claims: authn.claims } : null;
  const setHeaders: Record<string, string> = {};
  if (authn.kind === 'invalid') {
    if (notes) notes.authnFailure = authn.reason;
    authFailure(invalidToken());
  }
  if (authn.kind === 'valid') {
    if (notes && typeof authn.claims.sub === 'string') notes.subject = authn.claims.sub;
    const provider = policy.jwt.find((p) => p.name === authn.provider);
    const values = provider ? claimHeaderValues(provider, authn.claims) : { ok: true as const, headers: {} };
    if (values.ok) Object.assign(setHeaders, values.headers);
    else {
      if (notes) notes.authnFailure = 'bad_claim_value';
      authFailure(invalidToken());
    }
  }

  const peer = info.peerId ? parsePeer(info.peerId) : null;
  if (route) {
    const input: AuthzInput = {
      identity,
      peer,
      ip: info.clientIp,
      whenContext: () =>
        whenContextFor(req, target.path, target.query, params, identity, peer, info.clientIp),
    };
    const r = route.access.authorize(input);
    if (!r.allowed) {
      if (r.status === 401 && notes) notes.authnFailure ??= 'missing';
      if (r.status === 401)
        authFailure(
          new PolicyError('ERR_AUTHN_REQUIRED', 'a valid token is required', {
            'www-authenticate': 'Bearer',
          }),
        );
      else deny(new PolicyError('ERR_AUTHZ_DENIED', 'the caller is not allowed to do this'));
    }
  }

  const responseHeaders: Record<string, string> = {};
  if (route && route.limits.length > 0) {
    // Header keys are rare: flatten the headers only when a limit needs one.
    const headers = route.limitsReadHeaders ? flatHeaders(req) : {};
    const facts = {
      method,
      target: target.path,
      headers,
      identity,
      peer: info.peerId,
      ip: info.clientIp,
    };
    const scope = `${policy.ref.namespace}/${policy.ref.name}`;
    const outcomes = await env.limiter.admit(
      route.limits.map((limit) => ({ limit, key: rateLimitKey(limit, facts), scope })),
      scope,
    );
    const decisive = closestToRefusing(outcomes);
    if (decisive) {
      const headers = rateLimitHeaders(decisive, now);
      if (!decisive.allowed && notes) notes.limit = decisive.limit.name;
      if (!decisive.allowed)
        deny(new PolicyError('ERR_RATE_LIMITED', `rate limit ${decisive.limit.name} exceeded`, headers));
      Object.assign(responseHeaders, headers);
    }
  }
  Object.assign(responseHeaders, routeHeaders);

  let body: BodyPlan | null = null;
  // Undeclared traffic forwarded under unmatched: Allow still has a body limit (defaults.maxBodyBytes).
  const validator = route ? state.validator(route.route) : state.undeclaredValidator(policy);
  if (validator) {
    for (const denial of checkRequestHead(req, validator, target.query)) deny(denial);
    body = { validator, audit };
  }

  // Only the verified certificate speaks: a client's own x-forwarded-client-cert is always removed.
  if (info.peerId !== null && info.peerCertHash) {
    setHeaders['x-forwarded-client-cert'] = `Hash=${info.peerCertHash};URI=${info.peerId}`;
  }
  const headers = buildUpstreamHeaders(req, {
    clientIp: info.clientIp,
    proto: info.proto,
    requestId: info.requestId,
    remove: state.identityHeaders,
    set: setHeaders,
  });
  if (authn.kind === 'valid') {
    const provider = policy.jwt.find((p) => p.name === authn.provider);
    if (provider && !provider.forwardToken) stripToken(headers, authn);
  }
  return {
    policy,
    route: route?.route.name ?? null,
    path: target.query === null ? target.path : `${target.path}?${target.query}`,
    headers,
    timeoutMs: route?.route.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    responseHeaders: audit ? {} : responseHeaders,
    findings,
    decision: findings.length > 0 ? 'audit-deny' : route ? 'allow' : 'undeclared',
    body,
  };
}

function invalidToken(): PolicyError {
  return new PolicyError('ERR_AUTHN_INVALID_TOKEN', 'the presented token is not valid', {
    'www-authenticate': 'Bearer error="invalid_token"',
  });
}

/** Request headers as single strings (lowercase names; repeated values joined with ", "). */
export function flatHeaders(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) {
    if (v !== undefined) out[k] = Array.isArray(v) ? v.join(', ') : v;
  }
  return out;
}
