/**
 * Per-bundle agent state built once when a bundle is loaded, never per request:
 * one JWT authenticator per policy (its JWKS caches and token cache) and the set
 * of identity headers to strip from every request.
 */
import type { CompiledPolicy } from '../../policy/compile/bundle.ts';
import type { PolicyEngine } from '../../policy/engine/engine.ts';
import {
  identityHeaderNames,
  JwtAuthenticator,
  type JwtAuthenticatorOptions,
} from './authn/authenticator.ts';

/** Headers only the agent may set: identity it verified itself. */
const ALWAYS_STRIPPED = ['x-forwarded-client-cert'];

export interface BundleState {
  authenticator(policy: CompiledPolicy): JwtAuthenticator | null;
  identityHeaders: ReadonlySet<string>;
}

export function createBundleState(engine: PolicyEngine, options: JwtAuthenticatorOptions): BundleState {
  const authenticators = new Map<CompiledPolicy, JwtAuthenticator>();
  const identity = new Set(ALWAYS_STRIPPED);
  for (const policy of engine.bundle.policies) {
    if (policy.jwt.length > 0) authenticators.set(policy, new JwtAuthenticator(policy.jwt, options));
    for (const h of identityHeaderNames(policy.jwt)) identity.add(h);
  }
  return {
    authenticator: (policy) => authenticators.get(policy) ?? null,
    identityHeaders: identity,
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
