/**
 * The compiler: validated ApiPolicies (+ the workload's namespace, labels and
 * port) → a PolicyBundle. Selection, conflict resolution (oldest wins), defaults
 * and unit conversion happen here, once per policy generation, never per request.
 */
import { type Diagnostic, formatPath, warning } from '../diagnostics.ts';
import type { AllowRule, ApiPolicy, JwtProvider, RateLimit, Route } from '../schema/api-policy.ts';
import { parseByteQuantity, parseDuration, parseInstant } from '../units.ts';
import { DEFAULTS, defaultMethods } from '../validate/defaults.ts';
import { validatePolicy } from '../validate/validate-policy.ts';
import {
  BUNDLE_KIND,
  BUNDLE_SCHEMA_VERSION,
  type CompiledAllowRule,
  type CompiledJwtProvider,
  type CompiledPolicy,
  type CompiledRateLimit,
  type CompiledRoute,
  type PolicyBundle,
  type PolicyRef,
  type RateLimitKey,
  type RouteAccess,
} from './bundle.ts';
import { contentHash } from './hash.ts';
import { selectorMatches } from './selector.ts';

/** The workload a bundle is compiled for; an omitted field does not filter. */
export interface Workload {
  namespace?: string;
  labels?: Readonly<Record<string, string>>;
  /** The app port (standalone: the upstream URL's port). */
  port?: number;
}

export interface Conflict {
  policy: PolicyRef;
  /** The older policy that won. */
  winner: PolicyRef;
  /** The port lost, null for every port. */
  port: number | null;
}

export interface CompileResult {
  bundle: PolicyBundle;
  diagnostics: Diagnostic[];
  conflicts: Conflict[];
}

function refOf(p: ApiPolicy): PolicyRef {
  return {
    name: p.metadata.name,
    namespace: p.metadata.namespace ?? 'default',
    generation: p.metadata.generation ?? null,
  };
}

/** Oldest first: creationTimestamp (absent sorts first, as in a file), then namespace/name. */
function createdAt(p: ApiPolicy): number {
  const t = Date.parse(p.metadata.creationTimestamp ?? '');
  return Number.isNaN(t) ? Number.NEGATIVE_INFINITY : t;
}

/** Oldest first: creationTimestamp as an instant (absent sorts first, as in a file), then namespace/name. */
function olderFirst(a: ApiPolicy, b: ApiPolicy): number {
  const ta = createdAt(a);
  const tb = createdAt(b);
  if (ta !== tb) return ta < tb ? -1 : 1;
  const na = `${a.metadata.namespace ?? ''}/${a.metadata.name}`;
  const nb = `${b.metadata.namespace ?? ''}/${b.metadata.name}`;
  return na < nb ? -1 : na > nb ? 1 : 0;
}

/**
 * Selects the policies for the workload and resolves conflicts per port: for
 * each port the oldest selecting policy wins. A port policy loses to any older
 * policy covering its port; a port-less policy loses whole to an older
 * port-less one, and yields only the ports older port policies took (it still
 * governs every other port: the engine prefers a port's own policy).
 */
export function selectPolicies(policies: readonly ApiPolicy[], workload: Workload) {
  const selected = policies
    .filter(
      (p) => workload.namespace === undefined || (p.metadata.namespace ?? 'default') === workload.namespace,
    )
    .filter((p) => workload.labels === undefined || selectorMatches(p.spec.selector, workload.labels))
    .filter((p) => workload.port === undefined || p.spec.port === undefined || p.spec.port === workload.port)
    .sort(olderFirst);
  const winners: ApiPolicy[] = [];
  const conflicts: Conflict[] = [];
  for (const p of selected) {
    const port = p.spec.port;
    const older =
      port === undefined
        ? winners.find((w) => w.spec.port === undefined)
        : winners.find((w) => w.spec.port === undefined || w.spec.port === port);
    if (older) conflicts.push({ policy: refOf(p), winner: refOf(older), port: port ?? null });
    else winners.push(p);
  }
  return { winners, conflicts };
}

/**
 * Compiles the policies that apply to `workload` into a bundle. Input documents
 * are re-validated; invalid ones are left out (their diagnostics are returned)
 * so one bad policy cannot take other workloads' bundles down. Callers that
 * must not run with a policy missing (the standalone file source) check the
 * diagnostics first.
 */
export function compilePolicies(policies: readonly unknown[], workload: Workload = {}): CompileResult {
  const diagnostics: Diagnostic[] = [];
  const valid: ApiPolicy[] = [];
  for (const doc of policies) {
    const r = validatePolicy(doc);
    diagnostics.push(...r.diagnostics);
    if (r.policy) valid.push(r.policy);
  }
  const { winners, conflicts } = selectPolicies(valid, workload);
  for (const c of conflicts) {
    const msg = `Conflicted: ${c.policy.namespace}/${c.policy.name} selects the same workload and port as the older ${c.winner.namespace}/${c.winner.name}, which wins`;
    diagnostics.push(warning(['metadata', 'name'], msg));
  }
  const compiled = winners.map(compilePolicy);
  const bundle: PolicyBundle = {
    kind: BUNDLE_KIND,
    schemaVersion: BUNDLE_SCHEMA_VERSION,
    version: contentHash(compiled),
    policies: compiled,
  };
  return { bundle, diagnostics, conflicts };
}

/** Compiles one validated policy. */
export function compilePolicy(policy: ApiPolicy): CompiledPolicy {
  const spec = policy.spec;
  const protection = (p: { threshold: number; window: string; block: string } | undefined) =>
    p ? { threshold: p.threshold, windowMs: ms(p.window), blockMs: ms(p.block) } : null;
  const defaultBody = bytes(spec.defaults?.maxBodyBytes) ?? DEFAULTS.maxBodyBytes;
  const body: Omit<CompiledPolicy, 'hash'> = {
    ref: refOf(policy),
    port: spec.port ?? null,
    mode: spec.mode ?? DEFAULTS.mode,
    mtlsMode: spec.mtls?.mode ?? DEFAULTS.mtlsMode,
    unmatched: spec.unmatched ?? DEFAULTS.unmatched,
    maxBodyBytes: defaultBody,
    jwt: (spec.jwt ?? []).map(compileProvider),
    rateLimits: (spec.rateLimits ?? []).map(compileRateLimit),
    protection: {
      authFailures: protection(spec.protection?.authFailures),
      unmatched: protection(spec.protection?.unmatched),
    },
    routes: spec.routes.map((r, i) => compileRoute(policy, r, i, defaultBody)),
  };
  // The hash covers what the agent enforces, not which object it came from.
  const { ref: _ref, ...content } = body;
  return { ...body, hash: contentHash(content) };
}

function ms(duration: string): number {
  const v = parseDuration(duration);
  if (v === null) throw new Error(`unvalidated duration ${duration}`);
  return v;
}

function bytes(q: number | string | undefined): number | null {
  return q === undefined ? null : parseByteQuantity(q);
}

function names(ref: string | string[] | undefined): string[] | null {
  return ref === undefined ? null : typeof ref === 'string' ? [ref] : [...ref];
}

function compileProvider(p: JwtProvider): CompiledJwtProvider {
  return {
    name: p.name,
    issuer: p.issuer,
    jwksUri: p.jwksUri ?? null,
    jwks: p.jwks === undefined ? null : (JSON.parse(p.jwks) as { keys: Record<string, unknown>[] }),
    audiences: p.audiences ? [...p.audiences] : null,
    algorithms: [...(p.algorithms ?? DEFAULTS.algorithms)],
    from: p.from
      ? p.from.map((s) =>
          s.header !== undefined
            ? { header: s.header.toLowerCase(), prefix: s.prefix ?? '' }
            : { cookie: s.cookie ?? '' },
        )
      : DEFAULTS.tokenSources.map((s) => ({ ...s })),
    maxLifetimeMs: p.maxLifetime === undefined ? null : ms(p.maxLifetime),
    clockSkewMs: p.clockSkew === undefined ? DEFAULTS.clockSkewMs : ms(p.clockSkew),
    forwardToken: p.forwardToken ?? DEFAULTS.forwardToken,
    claimHeaders: (p.claimHeaders ?? []).map((c) => ({ claim: c.claim, header: c.header.toLowerCase() })),
  };
}

function compileKey(rl: RateLimit): RateLimitKey {
  const k = rl.key;
  if (k?.ip) return { kind: 'ip' };
  if (k?.peer) return { kind: 'peer' };
  if (k?.header !== undefined) return { kind: 'header', name: k.header.toLowerCase() };
  if (k?.claim !== undefined) return { kind: 'claim', claim: k.claim };
  return { kind: 'workload' };
}

function compileRateLimit(rl: RateLimit): CompiledRateLimit {
  return {
    name: rl.name,
    key: compileKey(rl),
    limit: rl.limit,
    periodMs: ms(rl.period),
    burst: rl.burst ?? DEFAULTS.burst,
    scope: rl.scope ?? DEFAULTS.scope,
    exposeHeaders: rl.exposeHeaders ?? DEFAULTS.exposeHeaders,
  };
}

function compileRule(rule: AllowRule, source: string): CompiledAllowRule {
  return {
    source,
    jwt: rule.jwt ?? null,
    // Sorted: a map's key order is not content and must not change the hash.
    claims: rule.claims
      ? Object.entries(rule.claims)
          .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
          .map(([claim, values]) => ({ claim, values: [...values] }))
      : null,
    scopes: rule.scopes ? [...rule.scopes] : null,
    peers: rule.peers ? [...rule.peers] : null,
    namespaces: rule.namespaces ? [...rule.namespaces] : null,
    ipBlocks: rule.ipBlocks ? [...rule.ipBlocks] : null,
    when: rule.when ?? null,
  };
}

function compileAccess(policy: ApiPolicy, route: Route, index: number): RouteAccess {
  if (route.public === true) return { kind: 'public' };
  if (route.allow) {
    const at = (j: number) => formatPath(['spec', 'routes', index, 'allow', j]);
    return { kind: 'rules', from: 'route', rules: route.allow.map((r, j) => compileRule(r, at(j))) };
  }
  const defaults = policy.spec.defaults?.allow;
  if (defaults) {
    const at = (j: number) => formatPath(['spec', 'defaults', 'allow', j]);
    return { kind: 'rules', from: 'defaults', rules: defaults.map((r, j) => compileRule(r, at(j))) };
  }
  return { kind: 'deny' };
}

function compileRoute(policy: ApiPolicy, route: Route, index: number, defaultBody: number): CompiledRoute {
  const req = route.request;
  const dep = route.deprecation;
  return {
    name: route.name,
    methods: [...(route.methods ?? defaultMethods())],
    path: route.path,
    access: compileAccess(policy, route, index),
    rateLimits: names(route.rateLimit) ?? names(policy.spec.defaults?.rateLimit) ?? [],
    timeoutMs: route.timeout === undefined ? DEFAULTS.routeTimeoutMs : ms(route.timeout),
    request: {
      maxBodyBytes: bytes(req?.maxBodyBytes) ?? defaultBody,
      // Parameters (charset=...) do not select a media type: they are dropped.
      contentTypes: req?.contentTypes
        ? req.contentTypes.map((c) => (c.split(';')[0] ?? '').trim().toLowerCase())
        : null,
      query: req?.query ?? null,
      body: req?.body ?? null,
    },
    response: { omitFields: route.response?.omitFields ? [...route.response.omitFields] : null },
    deprecation: dep
      ? {
          since: dep.since,
          sinceMs: parseInstant(dep.since) ?? 0,
          sunset: dep.sunset ?? null,
          sunsetMs: dep.sunset === undefined ? null : parseInstant(dep.sunset),
          link: dep.link ?? null,
        }
      : null,
  };
}
