/**
 * Semantic validation of a schema-valid ApiPolicy: what JSON Schema cannot say
 * (unique names, template conflicts, references, CEL, CIDRs, SPIFFE IDs, nested
 * JSON Schemas, units). Each problem becomes a diagnostic at its field path.
 */
import { compileWhen } from '../cel/when.ts';
import { type Diagnostic, error, type FieldPath, warning } from '../diagnostics.ts';
import { parseIpBlock } from '../engine/ip-block.ts';
import { methodsOverlap } from '../route/matcher.ts';
import { type PathTemplate, parseTemplate } from '../route/template.ts';
import type { AllowRule, ApiPolicySpec, Route } from '../schema/api-policy.ts';
import { parseByteQuantity, parseInstant } from '../units.ts';
import { defaultMethods } from './defaults.ts';
import { checkDuration, HEADER_NAME } from './field-checks.ts';
import { checkJsonSchema } from './json-schema.ts';
import { checkProviders } from './semantic-providers.ts';

const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";
// A media type, a type wildcard or the any-type wildcard, optionally with parameters.
const MEDIA_RANGE = new RegExp(`^(\\*/\\*|(?!\\*/)${TOKEN}/(${TOKEN}|\\*))(\\s*;.*)?$`);
const SPIFFE = /^spiffe:\/\/([a-z0-9._-]+|\*)(\/([A-Za-z0-9._~!$&'()+,=:@%-]+|\*))*$/;

/** Validates the spec of one policy (assumed schema-valid). */
export function validateSemantics(spec: ApiPolicySpec): Diagnostic[] {
  const out: Diagnostic[] = [];
  const at = (...p: (string | number)[]): FieldPath => ['spec', ...p];
  // Each group is guarded: on a schema-invalid document (validated anyway, so every
  // problem is reported at once) a malformed part must not hide the others.
  guard(() => checkSelector(spec, out), at('selector'), out);
  const providers = guard(() => checkProviders(spec.jwt ?? [], out), at('jwt'), out) ?? new Set<string>();
  const limits =
    guard(() => checkRateLimits(spec, providers.size > 0, out), at('rateLimits'), out) ?? new Set<string>();
  const refs = { providers, limits };
  guard(
    () => {
      if (spec.defaults?.allow) checkAllowList(spec.defaults.allow, at('defaults', 'allow'), refs, null, out);
      checkLimitRefs(spec.defaults?.rateLimit, at('defaults', 'rateLimit'), limits, out);
      checkSize(spec.defaults?.maxBodyBytes, at('defaults', 'maxBodyBytes'), out);
    },
    at('defaults'),
    out,
  );
  guard(
    () => {
      for (const kind of ['authFailures', 'unmatched'] as const) {
        const p = spec.protection?.[kind];
        if (!p) continue;
        checkDuration(p.window, at('protection', kind, 'window'), out);
        checkDuration(p.block, at('protection', kind, 'block'), out);
      }
    },
    at('protection'),
    out,
  );
  guard(() => checkRoutes(spec, refs, out), at('routes'), out);
  return out;
}

function guard<T>(fn: () => T, path: FieldPath, out: Diagnostic[]): T | undefined {
  try {
    return fn();
  } catch (e) {
    // Fail closed: a part that cannot be checked is an error, never a silent pass.
    // (On schema-invalid input the schema's own diagnostic for the part supersedes this one.)
    out.push(error(path, `could not be validated: ${(e as Error).message}`));
    return undefined;
  }
}

interface Refs {
  providers: Set<string>;
  limits: Set<string>;
}

function checkSelector(spec: ApiPolicySpec, out: Diagnostic[]): void {
  (spec.selector?.matchExpressions ?? []).forEach((req, i) => {
    const path = ['spec', 'selector', 'matchExpressions', i, 'values'];
    const n = req.values?.length ?? 0;
    if ((req.operator === 'In' || req.operator === 'NotIn') && n === 0) {
      out.push(error(path, `operator ${req.operator} needs at least one value`));
    }
    if ((req.operator === 'Exists' || req.operator === 'DoesNotExist') && n > 0) {
      out.push(error(path, `operator ${req.operator} takes no values`));
    }
  });
}

function checkRateLimits(spec: ApiPolicySpec, hasProviders: boolean, out: Diagnostic[]): Set<string> {
  const names = new Set<string>();
  (spec.rateLimits ?? []).forEach((rl, i) => {
    const at = (...s: (string | number)[]): FieldPath => ['spec', 'rateLimits', i, ...s];
    if (names.has(rl.name)) out.push(error(at('name'), `duplicate rate limit name "${rl.name}"`));
    names.add(rl.name);
    const period = checkDuration(rl.period, at('period'), out);
    if (period !== null && period < 1) out.push(error(at('period'), 'must be at least 1ms'));
    if (rl.key?.header !== undefined && !HEADER_NAME.test(rl.key.header)) {
      out.push(error(at('key', 'header'), 'is not a valid header name'));
    }
    if (rl.key?.claim !== undefined && !hasProviders) {
      out.push(error(at('key', 'claim'), 'a claim key needs at least one jwt provider'));
    }
    if (rl.key?.peer !== undefined && spec.mtls?.mode === 'Disabled') {
      out.push(warning(at('key', 'peer'), 'mTLS is disabled: every request shares the missing-key bucket'));
    }
  });
  return names;
}

function checkLimitRefs(
  ref: string | string[] | undefined,
  path: FieldPath,
  limits: Set<string>,
  out: Diagnostic[],
) {
  if (ref === undefined) return;
  const list = typeof ref === 'string' ? [ref] : ref;
  list.forEach((name, i) => {
    if (!limits.has(name)) {
      out.push(error(typeof ref === 'string' ? path : [...path, i], `unknown rate limit "${name}"`));
    }
  });
}

function checkSize(value: number | string | undefined, path: FieldPath, out: Diagnostic[]): void {
  if (value !== undefined && parseByteQuantity(value) === null) {
    out.push(error(path, 'must be a whole, non-negative byte size such as 64Ki or 1Mi'));
  }
}

function checkAllowList(
  rules: AllowRule[],
  path: FieldPath,
  refs: Refs,
  template: PathTemplate | null,
  out: Diagnostic[],
): void {
  rules.forEach((rule, i) => {
    checkAllowRule(rule, [...path, i], refs, template, out);
  });
}

function checkAllowRule(
  rule: AllowRule,
  path: FieldPath,
  refs: Refs,
  tpl: PathTemplate | null,
  out: Diagnostic[],
) {
  const needsToken = rule.jwt !== undefined || rule.claims !== undefined || rule.scopes !== undefined;
  if (needsToken && refs.providers.size === 0)
    out.push(error(path, 'needs a token, but spec.jwt declares no provider'));
  if (rule.jwt !== undefined && rule.jwt !== 'Any' && !refs.providers.has(rule.jwt)) {
    out.push(
      error([...path, 'jwt'], `unknown jwt provider "${rule.jwt}" (declare it in spec.jwt, or use Any)`),
    );
  }
  for (const claim of Object.keys(rule.claims ?? {})) {
    if (claim.split('.').some((s) => s === ''))
      out.push(error([...path, 'claims', claim], 'has an empty path segment'));
  }
  (rule.peers ?? []).forEach((peer, j) => {
    if (peer !== '*' && !SPIFFE.test(peer)) {
      out.push(
        error(
          [...path, 'peers', j],
          'must be a SPIFFE ID (spiffe://trust-domain/path, "*" as a whole segment)',
        ),
      );
    }
  });
  (rule.ipBlocks ?? []).forEach((block, j) => {
    if (!parseIpBlock(block)) out.push(error([...path, 'ipBlocks', j], 'is not an IP address or CIDR block'));
  });
  if (rule.when !== undefined) {
    const r = compileWhen(rule.when);
    if (!r.ok) out.push(error([...path, 'when'], r.message));
    else if (tpl) {
      const params = new Set(tpl.segments.flatMap((s) => (s.kind === 'param' ? [s.name] : [])));
      for (const ref of r.when.paramRefs) {
        if (!params.has(ref))
          out.push(error([...path, 'when'], `params.${ref} is not a parameter of ${tpl.source}`));
      }
    }
  }
}

function checkRoutes(spec: ApiPolicySpec, refs: Refs, out: Diagnostic[]): void {
  const names = new Map<string, number>();
  const parsed: ParsedRoute[] = [];
  spec.routes.forEach((route, i) => {
    guard(() => checkRoute(spec, route, i, refs, names, parsed, out), ['spec', 'routes', i], out);
  });
  checkConflicts(parsed, out);
}

type ParsedRoute = { route: Route; index: number; template: PathTemplate; methods: readonly string[] };

function checkRoute(
  spec: ApiPolicySpec,
  route: Route,
  i: number,
  refs: Refs,
  names: Map<string, number>,
  parsed: ParsedRoute[],
  out: Diagnostic[],
): void {
  const at = (...s: (string | number)[]): FieldPath => ['spec', 'routes', i, ...s];
  if (names.has(route.name)) {
    out.push(
      error(at('name'), `duplicate route name "${route.name}" (also routes[${names.get(route.name)}])`),
    );
  } else names.set(route.name, i);
  if (route.methods && new Set(route.methods).size !== route.methods.length) {
    out.push(error(at('methods'), 'lists a method twice'));
  }
  const t = parseTemplate(route.path);
  if (!t.ok) out.push(error(at('path'), t.message));
  const template = t.ok ? t.template : null;
  if (template) parsed.push({ route, index: i, template, methods: route.methods ?? defaultMethods() });
  checkRouteAccess(spec, route, at, refs, template, out);
  checkLimitRefs(route.rateLimit, at('rateLimit'), refs.limits, out);
  checkDuration(route.timeout, at('timeout'), out);
  checkRouteRequest(route, at, out);
  checkRouteDeprecation(route, at, out);
  (route.response?.omitFields ?? []).forEach((f, j) => {
    if (f.split('.').some((s) => s === ''))
      out.push(error(at('response', 'omitFields', j), 'has an empty path segment'));
  });
}

function checkConflicts(parsed: readonly ParsedRoute[], out: Diagnostic[]): void {
  for (let a = 0; a < parsed.length; a++) {
    for (let b = a + 1; b < parsed.length; b++) {
      const x = parsed[a];
      const y = parsed[b];
      if (!x || !y || x.template.shape !== y.template.shape || !methodsOverlap(x.methods, y.methods))
        continue;
      const common = x.methods.filter((m) => y.methods.includes(m)).join(', ');
      out.push(
        error(
          ['spec', 'routes', y.index, 'path'],
          `conflicts with route "${x.route.name}": same template and method ${common}`,
        ),
      );
    }
  }
}

type At = (...s: (string | number)[]) => FieldPath;

function checkRouteAccess(
  spec: ApiPolicySpec,
  route: Route,
  at: At,
  refs: Refs,
  tpl: PathTemplate | null,
  out: Diagnostic[],
) {
  if (route.public === true && route.allow) out.push(error(at('public'), 'public and allow are exclusive'));
  if (route.allow) checkAllowList(route.allow, at('allow'), refs, tpl, out);
  if (route.public !== true && !route.allow && spec.defaults?.allow && tpl) {
    checkInheritedParams(spec.defaults.allow, tpl, at('path'), out);
  }
  if (route.public !== true && !route.allow && !spec.defaults?.allow) {
    out.push(
      warning(at(), 'has neither allow nor public and there is no defaults.allow: every request is denied'),
    );
  }
}

/** A route that takes defaults.allow must bind every params.X its `when`s use. */
function checkInheritedParams(
  rules: AllowRule[],
  tpl: PathTemplate,
  path: FieldPath,
  out: Diagnostic[],
): void {
  const params = new Set(tpl.segments.flatMap((s) => (s.kind === 'param' ? [s.name] : [])));
  rules.forEach((rule, j) => {
    const r = rule.when === undefined ? null : compileWhen(rule.when);
    for (const ref of r?.ok ? r.when.paramRefs : []) {
      if (!params.has(ref)) {
        out.push(
          error(
            path,
            `inherits spec.defaults.allow[${j}].when, which uses params.${ref}: not a parameter here`,
          ),
        );
      }
    }
  });
}

function checkRouteRequest(route: Route, at: At, out: Diagnostic[]): void {
  const req = route.request;
  if (!req) return;
  checkSize(req.maxBodyBytes, at('request', 'maxBodyBytes'), out);
  (req.contentTypes ?? []).forEach((ct, j) => {
    if (!MEDIA_RANGE.test(ct))
      out.push(error(at('request', 'contentTypes', j), 'is not a media type such as application/json'));
  });
  for (const part of ['query', 'body'] as const) {
    const schema = req[part];
    if (schema === undefined) continue;
    for (const message of checkJsonSchema(schema)) out.push(error(at('request', part), message));
  }
}

function checkRouteDeprecation(route: Route, at: At, out: Diagnostic[]): void {
  const d = route.deprecation;
  if (!d) return;
  const since = parseInstant(d.since);
  if (since === null)
    out.push(error(at('deprecation', 'since'), 'must be a date (YYYY-MM-DD) or RFC 3339 instant'));
  if (d.sunset !== undefined) {
    const sunset = parseInstant(d.sunset);
    if (sunset === null)
      out.push(error(at('deprecation', 'sunset'), 'must be a date (YYYY-MM-DD) or RFC 3339 instant'));
    else if (since !== null && sunset <= since)
      out.push(error(at('deprecation', 'sunset'), 'must be after since'));
  }
  if (d.link !== undefined) {
    try {
      new URL(d.link);
    } catch {
      out.push(error(at('deprecation', 'link'), 'is not a valid URL'));
    }
  }
}
