/**
 * The policy bundle: the compiled, plain-JSON form of the ApiPolicies that apply
 * to one workload. It is the only thing an agent needs from the control plane
 * (or from a file in standalone mode); the operator pushes it, the agent loads
 * it into an engine. Defaults are applied, units resolved, references checked.
 */

export const BUNDLE_KIND = 'tollgate.dev/PolicyBundle';
export const BUNDLE_SCHEMA_VERSION = 1;

export interface PolicyBundle {
  kind: typeof BUNDLE_KIND;
  schemaVersion: typeof BUNDLE_SCHEMA_VERSION;
  /** `sha256:<hex>` of the canonical JSON of `policies`: the bundle's version. */
  version: string;
  policies: CompiledPolicy[];
}

export interface PolicyRef {
  name: string;
  namespace: string;
  generation: number | null;
}

export interface CompiledPolicy {
  ref: PolicyRef;
  /** `sha256:<hex>` of this policy's compiled content (the status `policyHash`). */
  hash: string;
  /** App port protected; null = every inbound port. */
  port: number | null;
  mode: 'Enforce' | 'Audit';
  mtlsMode: 'Strict' | 'Permissive' | 'Disabled';
  unmatched: 'Deny' | 'Allow';
  jwt: CompiledJwtProvider[];
  rateLimits: CompiledRateLimit[];
  protection: { authFailures: CompiledProtection | null; unmatched: CompiledProtection | null };
  routes: CompiledRoute[];
}

export type TokenSource = { header: string; prefix: string } | { cookie: string };

export interface CompiledJwtProvider {
  name: string;
  issuer: string;
  jwksUri: string | null;
  /** Inline JWKS, parsed. */
  jwks: { keys: Record<string, unknown>[] } | null;
  /** null: the audience is not checked. */
  audiences: string[] | null;
  algorithms: string[];
  /** Header names are lowercase. */
  from: TokenSource[];
  maxLifetimeMs: number | null;
  clockSkewMs: number;
  forwardToken: boolean;
  /** Header names are lowercase. */
  claimHeaders: { claim: string; header: string }[];
}

export type RateLimitKey =
  | { kind: 'workload' }
  | { kind: 'ip' }
  | { kind: 'peer' }
  | { kind: 'header'; name: string }
  | { kind: 'claim'; claim: string };

export interface CompiledRateLimit {
  name: string;
  key: RateLimitKey;
  limit: number;
  periodMs: number;
  burst: number;
  scope: 'Local' | 'Global';
  exposeHeaders: boolean;
}

export interface CompiledProtection {
  threshold: number;
  windowMs: number;
  blockMs: number;
}

export interface CompiledAllowRule {
  /** Where the rule was written, e.g. `spec.routes[0].allow[1]` or `spec.defaults.allow[0]`. */
  source: string;
  jwt: string | null;
  claims: { claim: string; values: string[] }[] | null;
  scopes: string[] | null;
  peers: string[] | null;
  namespaces: string[] | null;
  ipBlocks: string[] | null;
  when: string | null;
}

export type RouteAccess =
  | { kind: 'public' }
  | { kind: 'rules'; from: 'route' | 'defaults'; rules: CompiledAllowRule[] }
  | { kind: 'deny' };

export interface CompiledRoute {
  name: string;
  methods: string[];
  path: string;
  access: RouteAccess;
  /** Names of the rate limits that apply (route's own, else defaults). */
  rateLimits: string[];
  timeoutMs: number;
  request: {
    maxBodyBytes: number;
    /** Lowercase media ranges; null = any. */
    contentTypes: string[] | null;
    query: Record<string, unknown> | null;
    body: Record<string, unknown> | null;
  };
  response: { omitFields: string[] | null };
  deprecation: {
    since: string;
    sinceMs: number;
    sunset: string | null;
    sunsetMs: number | null;
    link: string | null;
  } | null;
}
