/**
 * The policy engine: a PolicyBundle loaded into per-request structures (route
 * trie, compiled allow rules and CEL, rate-limit lookups), built once per bundle.
 * Loading throws a BundleLoadError on anything that does not compile, so an
 * agent can refuse (NACK) a bad bundle and keep the old engine.
 */
import type { ValidateFunction } from 'ajv';
import type { CompiledPolicy, CompiledRateLimit, CompiledRoute, PolicyBundle } from '../compile/bundle.ts';
import { BUNDLE_KIND, BUNDLE_SCHEMA_VERSION, PolicyBundle as BundleSchema } from '../compile/bundle.ts';
import { type NormalizedTarget, normalizeTarget } from '../path/normalize.ts';
import { RouteMatcher } from '../route/matcher.ts';
import { parseTemplate } from '../route/template.ts';
import { createAjv } from '../validate/schema-validator.ts';
import { AccessRuntime } from './authorize.ts';

let compiledValidator: ValidateFunction | undefined;
function bundleValidator(): ValidateFunction {
  compiledValidator ??= createAjv().compile(BundleSchema);
  return compiledValidator;
}

export class BundleLoadError extends Error {
  readonly code = 'ERR_BUNDLE_INVALID';
}

export interface RouteRuntime {
  route: CompiledRoute;
  access: AccessRuntime;
  limits: CompiledRateLimit[];
  /** Whether a limit is keyed by a request header (computed once per bundle). */
  limitsReadHeaders: boolean;
}

/** Outcome of normalizing and routing a request target. */
export type RouteOutcome =
  | { kind: 'bad-target'; code: string; detail: string }
  | { kind: 'matched'; target: NormalizedTarget; route: RouteRuntime; params: Record<string, string> }
  | { kind: 'method-not-allowed'; target: NormalizedTarget; allow: string[] }
  | { kind: 'unmatched'; target: NormalizedTarget };

export class PolicyRuntime {
  readonly policy: CompiledPolicy;
  readonly #matcher: RouteMatcher<RouteRuntime>;

  constructor(policy: CompiledPolicy) {
    this.policy = policy;
    const limits = new Map(policy.rateLimits.map((l) => [l.name, l]));
    const routes = policy.routes.map((route) => {
      const t = parseTemplate(route.path);
      if (!t.ok) throw new BundleLoadError(`route ${route.name}: ${t.message}`);
      const routeLimits = route.rateLimits.map((name) => {
        const l = limits.get(name);
        if (!l) throw new BundleLoadError(`route ${route.name}: unknown rate limit ${name}`);
        return l;
      });
      let access: AccessRuntime;
      try {
        access = new AccessRuntime(route.access);
      } catch (e) {
        throw new BundleLoadError(`route ${route.name}: ${(e as Error).message}`);
      }
      return {
        template: t.template,
        methods: route.methods,
        value: {
          route,
          access,
          limits: routeLimits,
          limitsReadHeaders: routeLimits.some((l) => l.key.kind === 'header'),
        },
      };
    });
    this.#matcher = new RouteMatcher(routes);
  }

  /** Normalizes the request target and finds the route (apipolicy.md § Path normalization, Methods). */
  route(method: string, rawTarget: string): RouteOutcome {
    const n = normalizeTarget(method, rawTarget);
    if (!n.ok) return { kind: 'bad-target', code: n.code, detail: n.detail };
    const target = n.value;
    if (target.asterisk) return { kind: 'unmatched', target };
    const m = this.#matcher.match(method, target.segments);
    switch (m.kind) {
      case 'matched':
        return { kind: 'matched', target, route: m.value, params: m.params };
      case 'method-not-allowed':
        return { kind: 'method-not-allowed', target, allow: m.allow };
      case 'unmatched':
        return { kind: 'unmatched', target };
    }
  }
}

export class PolicyEngine {
  readonly bundle: PolicyBundle;
  readonly #byPort = new Map<number, PolicyRuntime>();
  readonly #anyPort: PolicyRuntime | null;

  private constructor(bundle: PolicyBundle) {
    this.bundle = bundle;
    let anyPort: PolicyRuntime | null = null;
    for (const p of bundle.policies) {
      const rt = new PolicyRuntime(p);
      if (p.port === null) anyPort = rt;
      else this.#byPort.set(p.port, rt);
    }
    this.#anyPort = anyPort;
  }

  /**
   * Builds an engine from a bundle (untrusted input: it may come over the network
   * or from disk); throws BundleLoadError when it does not match the bundle
   * schema, holds two policies for one port, or does not compile.
   */
  static load(bundle: unknown): PolicyEngine {
    const validate = bundleValidator();
    if (!validate(bundle)) {
      const e = validate.errors?.[0];
      throw new BundleLoadError(
        `not a valid ${BUNDLE_KIND} v${BUNDLE_SCHEMA_VERSION}: ${e?.instancePath || '/'} ${e?.message ?? ''}`,
      );
    }
    const b = bundle as PolicyBundle;
    const ports = new Set<number | null>();
    for (const p of b.policies) {
      if (ports.has(p.port))
        throw new BundleLoadError(`two policies for ${p.port === null ? 'every port' : `port ${p.port}`}`);
      ports.add(p.port);
    }
    return new PolicyEngine(b);
  }

  /** The policy for an app port: the port's own, else the one without a port; null when none applies. */
  policyFor(port: number | null): PolicyRuntime | null {
    return (port === null ? undefined : this.#byPort.get(port)) ?? this.#anyPort;
  }
}
