/**
 * Per-bundle agent state built once when a bundle is loaded, never per request:
 * one JWT authenticator per policy (its JWKS caches and token cache), the set
 * of identity headers to strip from every request, and each route's compiled
 * request validator (JSON Schemas of query and body).
 */
import type { CompiledPolicy, CompiledRoute } from '../../policy/compile/bundle.ts';
import type { PolicyEngine } from '../../policy/engine/engine.ts';
import {
  identityHeaderNames,
  JwtAuthenticator,
  type JwtAuthenticatorOptions,
} from './authn/authenticator.ts';
import { compileRouteValidators, type RouteValidator } from './validate/request-validator.ts';

/** Headers only the agent may set: identity it verified itself. */
const ALWAYS_STRIPPED = ['x-forwarded-client-cert'];

export interface BundleState {
  authenticator(policy: CompiledPolicy): JwtAuthenticator | null;
  identityHeaders: ReadonlySet<string>;
  /** The route's request checks; null for a route of another bundle. */
  validator(route: CompiledRoute): RouteValidator | null;
  /** The checks of requests that match no route (forwarded under unmatched: Allow): the body limit. */
  undeclaredValidator(policy: CompiledPolicy): RouteValidator;
}

export function createBundleState(engine: PolicyEngine, options: JwtAuthenticatorOptions): BundleState {
  const authenticators = new Map<CompiledPolicy, JwtAuthenticator>();
  const identity = new Set(ALWAYS_STRIPPED);
  for (const policy of engine.bundle.policies) {
    if (policy.jwt.length > 0) authenticators.set(policy, new JwtAuthenticator(policy.jwt, options));
    for (const h of identityHeaderNames(policy.jwt)) identity.add(h);
  }
  const validators = compileRouteValidators(engine.bundle.policies.flatMap((p) => p.routes));
  const undeclared = new Map<CompiledPolicy, RouteValidator>();
  return {
    authenticator: (policy) => authenticators.get(policy) ?? null,
    identityHeaders: identity,
    validator: (route) => validators.get(route) ?? null,
    undeclaredValidator: (policy) => {
      let v = undeclared.get(policy);
      if (!v) {
        v = { maxBodyBytes: policy.maxBodyBytes, contentTypes: null, query: null, body: null };
        undeclared.set(policy, v);
      }
      return v;
    },
  };
}

/** Caches the state per engine (an engine is immutable; a new bundle is a new engine). */
export function bundleStates(options: JwtAuthenticatorOptions): (engine: PolicyEngine) => BundleState {
  const cache = new WeakMap<PolicyEngine, BundleState>();
  return (engine) => {
    let state = cache.get(engine);
    if (!state) {
      state = createBundleState(engine, options);
      cache.set(engine, state);
    }
    return state;
  };
}
