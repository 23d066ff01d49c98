/**
 * The identity and limit parts of the ApiPolicy schema: JWT providers, rate
 * limits and allow rules (re-exported by api-policy.ts, the schema's entry).
 */
import { type Static, Type } from '@sinclair/typebox';
import { Duration, EmptyObject, Name, StringEnum, StringMap } from './schema-types.ts';

export const JWT_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
] as const;
export const DEFAULT_JWT_ALGORITHMS = ['RS256', 'PS256', 'ES256', 'EdDSA'] as const;

const TokenSource = Type.Object(
  {
    header: Type.Optional(Type.String({ minLength: 1, description: 'Header that carries the token.' })),
    prefix: Type.Optional(
      Type.String({ description: 'Prefix before the token in the header (e.g. "Bearer ").' }),
    ),
    cookie: Type.Optional(Type.String({ minLength: 1, description: 'Cookie that carries the token.' })),
  },
  {
    additionalProperties: false,
    minProperties: 1,
    description: 'Where to look for a token: {header, prefix} or {cookie}.',
    'x-kubernetes-validations': [
      { rule: 'has(self.header) != has(self.cookie)', message: 'exactly one of header or cookie' },
      { rule: '!has(self.prefix) || has(self.header)', message: 'prefix only applies to a header' },
    ],
  },
);

const ClaimHeader = Type.Object(
  {
    claim: Type.String({ minLength: 1, description: 'Claim (dotted path) to copy.' }),
    header: Type.String({ minLength: 1, description: 'Upstream header that receives the verified value.' }),
  },
  { additionalProperties: false },
);

export const JwtProvider = Type.Object(
  {
    name: Name('Provider name, referenced by allow rules (`jwt: NAME`).'),
    issuer: Type.String({ minLength: 1, description: 'Expected `iss` claim.' }),
    jwksUri: Type.Optional(
      Type.String({
        minLength: 1,
        description: 'HTTPS URL of the issuer JWKS (cached, refreshed on unknown kid).',
      }),
    ),
    jwks: Type.Optional(Type.String({ minLength: 1, description: 'Inline JWKS JSON, instead of jwksUri.' })),
    audiences: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), {
        minItems: 1,
        description: 'Accepted `aud` values (any of). Omitted: the audience is not checked.',
      }),
    ),
    algorithms: Type.Optional(
      Type.Array(StringEnum(JWT_ALGORITHMS, 'A signature algorithm.'), {
        minItems: 1,
        description:
          'Accepted `alg` values. Default [RS256, PS256, ES256, EdDSA]; none and HS* are never accepted.',
      }),
    ),
    from: Type.Optional(
      Type.Array(TokenSource, {
        minItems: 1,
        description:
          'Where tokens are read from, in order. Default: the Authorization header with prefix "Bearer ".',
      }),
    ),
    maxLifetime: Type.Optional(
      Duration('Reject tokens without `exp`, or whose `exp - iat` exceeds this. Omitted: no lifetime bound.'),
    ),
    clockSkew: Type.Optional(Duration('Tolerance applied to `exp`, `nbf` and `iat`. Default 30s.')),
    forwardToken: Type.Optional(
      Type.Boolean({ default: true, description: 'Pass the token on to the app. Default true.' }),
    ),
    claimHeaders: Type.Optional(
      Type.Array(ClaimHeader, {
        description:
          'Verified claims copied to upstream headers; incoming copies of these headers are removed.',
      }),
    ),
  },
  {
    additionalProperties: false,
    description: 'A JWT issuer whose tokens authenticate callers.',
    'x-kubernetes-validations': [
      { rule: 'has(self.jwksUri) != has(self.jwks)', message: 'exactly one of jwksUri or jwks' },
    ],
  },
);

const RateLimitKey = Type.Object(
  {
    ip: Type.Optional(EmptyObject('Key by client IP address.')),
    peer: Type.Optional(EmptyObject('Key by mTLS peer identity (SPIFFE ID).')),
    header: Type.Optional(
      Type.String({ minLength: 1, description: 'Key by the value of this request header.' }),
    ),
    claim: Type.Optional(
      Type.String({ minLength: 1, description: 'Key by this verified JWT claim (dotted path).' }),
    ),
  },
  {
    additionalProperties: false,
    minProperties: 1,
    maxProperties: 1,
    description:
      'What the bucket is keyed by: one of ip, peer, header, claim. Omitted: one bucket for the workload.',
  },
);

export const RateLimit = Type.Object(
  {
    name: Name('Limit name, referenced by `rateLimit`.'),
    key: Type.Optional(RateLimitKey),
    limit: Type.Integer({ minimum: 1, description: 'Tokens added per period.' }),
    period: Duration('Refill period.'),
    burst: Type.Optional(
      Type.Integer({ minimum: 0, default: 0, description: 'Extra capacity above limit. Default 0.' }),
    ),
    scope: Type.Optional(
      StringEnum(
        ['Local', 'Global'],
        'Local: per sidecar. Global: shared by every replica through Redis.',
        'Local',
      ),
    ),
    exposeHeaders: Type.Optional(
      Type.Boolean({
        default: true,
        description:
          'Send RateLimit-* and X-RateLimit-* headers. Default true (429 and Retry-After are always sent).',
      }),
    ),
  },
  { additionalProperties: false, description: 'A token-bucket rate limit.' },
);

export const AllowRule = Type.Object(
  {
    jwt: Type.Optional(
      Type.String({ minLength: 1, description: 'A valid token from this provider, or `Any` provider.' }),
    ),
    claims: Type.Optional(
      StringMap(
        Type.Array(Type.String(), { minItems: 1 }),
        'Each claim (dotted path) equals, or as an array contains, one of the values. Implies a valid token.',
      ),
    ),
    scopes: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), {
        minItems: 1,
        description: 'All of these in `scope` (space-separated) or `scp` (array). Implies a valid token.',
      }),
    ),
    peers: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), {
        minItems: 1,
        description: 'mTLS peer SPIFFE IDs; `*` matches one whole segment.',
      }),
    ),
    namespaces: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), { minItems: 1, description: 'mTLS peer namespaces.' }),
    ),
    ipBlocks: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), { minItems: 1, description: 'Client address CIDRs.' }),
    ),
    when: Type.Optional(
      Type.String({
        minLength: 1,
        description: 'CEL over request, params, claims, peer, source; must evaluate to true.',
      }),
    ),
  },
  {
    additionalProperties: false,
    minProperties: 1,
    description: 'One alternative: holds when all of its fields hold.',
  },
);

export type JwtProvider = Static<typeof JwtProvider>;
export type RateLimit = Static<typeof RateLimit>;
export type AllowRule = Static<typeof AllowRule>;
