/**
 * The ApiPolicy schema, defined once. The TypeScript types, the Ajv validator
 * and the CRD in crds/ (see crd.ts) are all derived from these definitions, so a
 * field exists in one place with one description.
 *
 * Conventions (apipolicy.md): PascalCase enums, Go-style durations, Kubernetes
 * quantities for sizes, unknown fields rejected.
 */
import { type Static, Type } from '@sinclair/typebox';
import { AllowRule, JwtProvider, RateLimit } from './auth-schema.ts';
import {
  Duration,
  JsonSchemaField,
  Name,
  NameOrNames,
  Quantity,
  StringEnum,
  StringMap,
} from './schema-types.ts';

export { AllowRule, DEFAULT_JWT_ALGORITHMS, JWT_ALGORITHMS, JwtProvider, RateLimit } from './auth-schema.ts';
export { DURATION_PATTERN, QUANTITY_PATTERN } from './schema-types.ts';

export const GROUP = 'tollgate.dev';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;
export const KIND = 'ApiPolicy';
export const PLURAL = 'apipolicies';
export const SINGULAR = 'apipolicy';
export const SHORT_NAMES = ['apol'];

export const HTTP_METHODS = [
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'PATCH',
  'DELETE',
  'OPTIONS',
  'TRACE',
  'CONNECT',
] as const;
export type HttpMethod = (typeof HTTP_METHODS)[number];

const LabelSelectorRequirement = Type.Object(
  {
    key: Type.String({ minLength: 1, description: 'Label key the requirement applies to.' }),
    operator: StringEnum(['In', 'NotIn', 'Exists', 'DoesNotExist'], 'Relationship of the key to the values.'),
    values: Type.Optional(
      Type.Array(Type.String(), {
        description: 'Values for In/NotIn; must be empty for Exists/DoesNotExist.',
      }),
    ),
  },
  { additionalProperties: false },
);

export const LabelSelector = Type.Object(
  {
    matchLabels: Type.Optional(
      StringMap(Type.String(), 'Labels the pod must carry with exactly these values.'),
    ),
    matchExpressions: Type.Optional(
      Type.Array(LabelSelectorRequirement, {
        description: 'Set-based label requirements, all of which must hold.',
      }),
    ),
  },
  {
    additionalProperties: false,
    description:
      'Pods (by label, in the policy namespace) this policy applies to; {} or omitted selects every meshed pod.',
  },
);

function Protection(description: string) {
  return Type.Object(
    {
      threshold: Type.Integer({ minimum: 1, description: 'Events within window that trigger a block.' }),
      window: Duration('Sliding window the events are counted in.'),
      block: Duration('How long the client is refused with 429.'),
    },
    { additionalProperties: false, description },
  );
}

const RequestRules = Type.Object(
  {
    maxBodyBytes: Type.Optional(
      Quantity('Largest accepted request body (413 above). Default defaults.maxBodyBytes.'),
    ),
    contentTypes: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), {
        minItems: 1,
        description: 'Accepted media types of a request body (415 otherwise).',
      }),
    ),
    query: Type.Optional(JsonSchemaField('JSON Schema for the query parameters (an object of strings).')),
    body: Type.Optional(JsonSchemaField('JSON Schema for a JSON request body.')),
  },
  { additionalProperties: false, description: 'Request validation for this route.' },
);

const ResponseRules = Type.Object(
  {
    omitFields: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), {
        minItems: 1,
        description: 'Fields (dotted paths, `*` for one level) removed from JSON response bodies.',
      }),
    ),
  },
  { additionalProperties: false, description: 'Response filtering for this route.' },
);

const Deprecation = Type.Object(
  {
    since: Type.String({
      minLength: 1,
      description: 'Date (YYYY-MM-DD) or RFC 3339 instant of deprecation.',
    }),
    sunset: Type.Optional(
      Type.String({
        minLength: 1,
        description: 'Date or RFC 3339 instant after which the route answers 410.',
      }),
    ),
    link: Type.Optional(
      Type.String({ minLength: 1, description: 'Migration guide, sent as Link rel="deprecation".' }),
    ),
  },
  { additionalProperties: false, description: 'Deprecation (RFC 9745) and sunset (RFC 8594) of this route.' },
);

export const Route = Type.Object(
  {
    name: Name('Route name (unique in the policy); used in logs, metrics and decisions.'),
    methods: Type.Optional(
      Type.Array(StringEnum(HTTP_METHODS, 'An HTTP method.'), {
        minItems: 1,
        description:
          'Methods served. Omitted: every method except TRACE and CONNECT. HEAD is not implied by GET.',
      }),
    ),
    path: Type.String({
      minLength: 1,
      description: 'Path template: literal segments, {param} for one segment, a final /** for any remainder.',
    }),
    public: Type.Optional(
      Type.Boolean({ description: 'No identity required (a bad token is still refused).' }),
    ),
    allow: Type.Optional(
      Type.Array(AllowRule, {
        minItems: 1,
        description: 'Alternatives; a request is allowed when any holds.',
      }),
    ),
    rateLimit: Type.Optional(
      NameOrNames('Rate limit name(s) for this route; overrides defaults.rateLimit ([] for none).'),
    ),
    timeout: Type.Optional(Duration('Upstream timeout for this route (504 after). Default 30s.')),
    request: Type.Optional(RequestRules),
    response: Type.Optional(ResponseRules),
    deprecation: Type.Optional(Deprecation),
  },
  {
    additionalProperties: false,
    description: 'One operation of the API.',
    'x-kubernetes-validations': [
      {
        rule: '!(has(self.public) && self.public && has(self.allow))',
        message: 'public and allow are exclusive',
      },
    ],
  },
);

const Defaults = Type.Object(
  {
    allow: Type.Optional(
      Type.Array(AllowRule, {
        minItems: 1,
        description: 'Allow rules for routes with neither allow nor public.',
      }),
    ),
    rateLimit: Type.Optional(NameOrNames('Rate limit name(s) for routes without their own.')),
    maxBodyBytes: Type.Optional(Quantity('Largest accepted request body. Default 1Mi.')),
  },
  { additionalProperties: false, description: 'Settings for routes that do not set their own.' },
);

export const ApiPolicySpec = Type.Object(
  {
    selector: Type.Optional(LabelSelector),
    port: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 65535,
        description: 'App port this policy protects; omitted = every inbound port.',
      }),
    ),
    mode: Type.Optional(
      StringEnum(['Enforce', 'Audit'], 'Enforce, or Audit (evaluate and record, never block).', 'Enforce'),
    ),
    mtls: Type.Optional(
      Type.Object(
        {
          mode: Type.Optional(
            StringEnum(
              ['Strict', 'Permissive', 'Disabled'],
              'Strict: mTLS only. Permissive: mTLS or plaintext. Disabled: plaintext only.',
              'Permissive',
            ),
          ),
        },
        { additionalProperties: false, description: 'Inbound mutual TLS.' },
      ),
    ),
    jwt: Type.Optional(Type.Array(JwtProvider, { description: 'JWT providers.' })),
    rateLimits: Type.Optional(Type.Array(RateLimit, { description: 'Rate limits routes refer to by name.' })),
    defaults: Type.Optional(Defaults),
    unmatched: Type.Optional(
      StringEnum(
        ['Deny', 'Allow'],
        'Requests matching no route: Deny (404) or Allow (forward, recorded).',
        'Deny',
      ),
    ),
    protection: Type.Optional(
      Type.Object(
        {
          authFailures: Type.Optional(
            Protection('Blocking of clients with repeated authentication failures.'),
          ),
          unmatched: Type.Optional(Protection('Blocking of clients that probe undeclared paths.')),
        },
        { additionalProperties: false, description: 'Temporary blocking of abusive clients.' },
      ),
    ),
    routes: Type.Array(Route, { description: 'The declared API surface.' }),
  },
  { additionalProperties: false, description: 'Desired policy.' },
);

const Condition = Type.Object(
  {
    type: Type.String({ description: 'Accepted or Programmed.' }),
    status: StringEnum(['True', 'False', 'Unknown'], 'Condition status.'),
    reason: Type.String({ description: 'CamelCase reason.' }),
    message: Type.Optional(Type.String({ description: 'Human-readable detail.' })),
    observedGeneration: Type.Optional(Type.Integer({ description: 'Generation the condition was set for.' })),
    lastTransitionTime: Type.Optional(
      Type.String({ format: 'date-time', description: 'Last status change.' }),
    ),
  },
  { additionalProperties: false },
);

export const ApiPolicyStatus = Type.Object(
  {
    observedGeneration: Type.Optional(
      Type.Integer({ description: 'Generation the operator last processed.' }),
    ),
    conditions: Type.Optional(Type.Array(Condition, { description: 'Accepted and Programmed.' })),
    workloads: Type.Optional(
      Type.Object(
        {
          selected: Type.Integer({ minimum: 0, description: 'Sidecars this policy selects.' }),
          programmed: Type.Integer({ minimum: 0, description: 'Sidecars running this generation.' }),
        },
        { additionalProperties: false },
      ),
    ),
    policyHash: Type.Optional(Type.String({ description: 'Content hash of the compiled policy.' })),
  },
  { additionalProperties: false, description: 'Observed state, written by the operator.' },
);

const ObjectMeta = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 253 }),
    namespace: Type.Optional(Type.String({ minLength: 1, maxLength: 63 })),
    uid: Type.Optional(Type.String()),
    generation: Type.Optional(Type.Integer()),
    resourceVersion: Type.Optional(Type.String()),
    creationTimestamp: Type.Optional(Type.String()),
    labels: Type.Optional(StringMap(Type.String(), 'Labels.')),
    annotations: Type.Optional(StringMap(Type.String(), 'Annotations.')),
  },
  // Kubernetes adds server-side fields (managedFields, ...): tolerated, not used.
  { additionalProperties: true },
);

/** The whole resource as written in a file (the CRD's root schema is spec + status). */
export const ApiPolicy = Type.Object(
  {
    apiVersion: Type.Literal(API_VERSION),
    kind: Type.Literal(KIND),
    metadata: ObjectMeta,
    spec: ApiPolicySpec,
    status: Type.Optional(ApiPolicyStatus),
  },
  { additionalProperties: false },
);

export type ApiPolicy = Static<typeof ApiPolicy>;
export type ApiPolicySpec = Static<typeof ApiPolicySpec>;
export type ApiPolicyStatus = Static<typeof ApiPolicyStatus>;
export type Route = Static<typeof Route>;
export type LabelSelector = Static<typeof LabelSelector>;
