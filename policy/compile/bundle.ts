/**
 * The policy bundle: the compiled, plain-JSON form of the ApiPolicies that apply
 * to one workload. It is the only thing an agent needs from the control plane
 * (or from a file in standalone mode); the operator pushes it, the agent loads
 * it into an engine. Defaults are applied, units resolved, references checked.
 * Defined once as a schema: the types below and the agent's decode check
 * (PolicyEngine.load) both come from it.
 */
import { type Static, type TSchema, Type } from '@sinclair/typebox';

export const BUNDLE_KIND = 'tollgate.dev/PolicyBundle';
export const BUNDLE_SCHEMA_VERSION = 1;

const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);
const Enum = <const T extends string>(values: readonly T[]) => Type.Union(values.map((v) => Type.Literal(v)));
const Obj = <P extends Record<string, TSchema>>(props: P) =>
  Type.Object(props, { additionalProperties: false });
const Int = (minimum = 0) => Type.Integer({ minimum });
const Str = Type.String();
const Strings = Type.Array(Str);

export const PolicyRef = Obj({ name: Str, namespace: Str, generation: Nullable(Type.Integer()) });

export const TokenSource = Type.Union([Obj({ header: Str, prefix: Str }), Obj({ cookie: Str })]);

export const CompiledJwtProvider = Obj({
  name: Str,
  issuer: Str,
  jwksUri: Nullable(Str),
  /** Inline JWKS, parsed. */
  jwks: Nullable(Type.Object({ keys: Type.Array(Type.Record(Type.String(), Type.Unknown())) })),
  /** null: the audience is not checked. */
  audiences: Nullable(Strings),
  algorithms: Strings,
  /** Header names are lowercase. */
  from: Type.Array(TokenSource),
  maxLifetimeMs: Nullable(Int()),
  clockSkewMs: Int(),
  forwardToken: Type.Boolean(),
  /** Header names are lowercase. */
  claimHeaders: Type.Array(Obj({ claim: Str, header: Str })),
});

export const RateLimitKey = Type.Union([
  Obj({ kind: Type.Literal('workload') }),
  Obj({ kind: Type.Literal('ip') }),
  Obj({ kind: Type.Literal('peer') }),
  Obj({ kind: Type.Literal('header'), name: Str }),
  Obj({ kind: Type.Literal('claim'), claim: Str }),
]);

export const CompiledRateLimit = Obj({
  name: Str,
  key: RateLimitKey,
  limit: Int(1),
  periodMs: Type.Number({ exclusiveMinimum: 0 }),
  burst: Int(),
  scope: Enum(['Local', 'Global']),
  exposeHeaders: Type.Boolean(),
});

export const CompiledProtection = Obj({ threshold: Int(1), windowMs: Int(), blockMs: Int() });

export const CompiledAllowRule = Obj({
  /** Where the rule was written, e.g. `spec.routes[0].allow[1]` or `spec.defaults.allow[0]`. */
  source: Str,
  jwt: Nullable(Str),
  claims: Nullable(Type.Array(Obj({ claim: Str, values: Strings }))),
  scopes: Nullable(Strings),
  peers: Nullable(Strings),
  namespaces: Nullable(Strings),
  ipBlocks: Nullable(Strings),
  when: Nullable(Str),
});

export const RouteAccess = Type.Union([
  Obj({ kind: Type.Literal('public') }),
  Obj({
    kind: Type.Literal('rules'),
    from: Enum(['route', 'defaults']),
    rules: Type.Array(CompiledAllowRule),
  }),
  Obj({ kind: Type.Literal('deny') }),
]);

export const CompiledRoute = Obj({
  name: Str,
  methods: Strings,
  path: Str,
  access: RouteAccess,
  /** Names of the rate limits that apply (route's own, else defaults). */
  rateLimits: Strings,
  timeoutMs: Int(1),
  request: Obj({
    maxBodyBytes: Int(),
    /** Lowercase media ranges; null = any. */
    contentTypes: Nullable(Strings),
    query: Nullable(Type.Record(Type.String(), Type.Unknown())),
    body: Nullable(Type.Record(Type.String(), Type.Unknown())),
  }),
  response: Obj({ omitFields: Nullable(Strings) }),
  deprecation: Nullable(
    Obj({
      since: Str,
      sinceMs: Type.Number(),
      sunset: Nullable(Str),
      sunsetMs: Nullable(Type.Number()),
      link: Nullable(Str),
    }),
  ),
});

export const CompiledPolicy = Obj({
  ref: PolicyRef,
  /** `sha256:<hex>` of this policy's compiled content (the status `policyHash`). */
  hash: Str,
  /** App port protected; null = every inbound port. */
  port: Nullable(Type.Integer({ minimum: 1, maximum: 65535 })),
  mode: Enum(['Enforce', 'Audit']),
  mtlsMode: Enum(['Strict', 'Permissive', 'Disabled']),
  unmatched: Enum(['Deny', 'Allow']),
  /** Body limit of requests that match no route (unmatched: Allow): defaults.maxBodyBytes, else 1Mi. */
  maxBodyBytes: Int(),
  jwt: Type.Array(CompiledJwtProvider),
  rateLimits: Type.Array(CompiledRateLimit),
  protection: Obj({ authFailures: Nullable(CompiledProtection), unmatched: Nullable(CompiledProtection) }),
  routes: Type.Array(CompiledRoute),
});

export const PolicyBundle = Obj({
  kind: Type.Literal(BUNDLE_KIND),
  schemaVersion: Type.Literal(BUNDLE_SCHEMA_VERSION),
  /** `sha256:<hex>` of the canonical JSON of `policies`: the bundle's version. */
  version: Str,
  policies: Type.Array(CompiledPolicy),
});

export type PolicyRef = Static<typeof PolicyRef>;
export type TokenSource = Static<typeof TokenSource>;
export type CompiledJwtProvider = Static<typeof CompiledJwtProvider>;
export type RateLimitKey = Static<typeof RateLimitKey>;
export type CompiledRateLimit = Static<typeof CompiledRateLimit>;
export type CompiledProtection = Static<typeof CompiledProtection>;
export type CompiledAllowRule = Static<typeof CompiledAllowRule>;
export type RouteAccess = Static<typeof RouteAccess>;
export type CompiledRoute = Static<typeof CompiledRoute>;
export type CompiledPolicy = Static<typeof CompiledPolicy>;
export type PolicyBundle = Static<typeof PolicyBundle>;
