/**
 * Feeds the inventory from the agent's request handling. The pipeline's
 * outcome is noted when it is known — the forward plan, or the denial — and
 * the request is recorded once, with the status the client actually got, when
 * the response closes (or, for an upgrade, when it is refused or tunnelled).
 *
 * What counts (apipolicy.md § Unmatched): a request that matched a declared
 * route is a hit of that route whatever its status (denials included); a
 * request that matched no route is undeclared whether it was forwarded
 * (`unmatched: Allow`) or refused with 404 (`unmatched: Deny`). Requests refused
 * before routing (malformed framing, a target that cannot be normalized, no
 * policy loaded) and 405s (the path is declared, the method is not) are in
 * neither.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { normalizeTarget } from '../../policy/path/normalize.ts';
import { PolicyError, RESCUE } from '../errors.ts';
import type { ForwardPlan } from '../pipeline/decide-request.ts';
import type { Inventory } from './inventory.ts';

type Note =
  | { kind: 'route'; route: string; deprecated: boolean }
  | { kind: 'undeclared'; method: string; path: string };

export class InventoryTracker {
  readonly #inventory: Inventory;
  readonly #deprecated: (route: string) => boolean;
  readonly #notes = new WeakMap<IncomingMessage, Note>();

  /** `deprecated(route)`: whether the route of the loaded policy has a `deprecation`. */
  constructor(inventory: Inventory, deprecated: (route: string) => boolean) {
    this.#inventory = inventory;
    this.#deprecated = deprecated;
  }

  /** Records the request when its response closes, with the status sent (0 when none was). */
  watch(req: IncomingMessage, res: ServerResponse, callerKey: string | null): void {
    res.once('close', () => this.finish(req, res.headersSent ? res.statusCode : 0, callerKey));
  }

  /** Notes the outcome of an allowed (or audited) request. */
  plan(req: IncomingMessage, plan: ForwardPlan): void {
    if (plan.route !== null) {
      const deprecated = plan.policy.routes.some((r) => r.name === plan.route && r.deprecation !== null);
      this.#notes.set(req, { kind: 'route', route: plan.route, deprecated });
      return;
    }
    // Audit mode forwards a 405 too: its path is declared, so it is not undeclared traffic.
    if (plan.findings.some((f) => f.code === 'ERR_ROUTE_METHOD')) return;
    const q = plan.path.indexOf('?');
    const path = q === -1 ? plan.path : plan.path.slice(0, q);
    this.#notes.set(req, { kind: 'undeclared', method: req.method ?? 'GET', path });
  }

  /** Notes a denial, unless the plan was already noted (an upstream failure after forwarding). */
  denial(req: IncomingMessage, e: unknown): void {
    if (this.#notes.has(req) || !(e instanceof PolicyError)) return;
    if (e.route !== null) {
      this.#notes.set(req, { kind: 'route', route: e.route, deprecated: this.#deprecated(e.route) });
      return;
    }
    if (e.code !== 'ERR_ROUTE_NOT_FOUND') return;
    const method = req.method ?? 'GET';
    const n = normalizeTarget(method, req.url ?? '/');
    if (n.ok) this.#notes.set(req, { kind: 'undeclared', method, path: n.value.path });
  }

  /** Records a noted request once; later calls for the same request do nothing. */
  finish(req: IncomingMessage, status: number, callerKey: string | null): void {
    const note = this.#notes.get(req);
    if (!note) return;
    this.#notes.delete(req);
    if (note.kind === 'route') this.#inventory.recordRoute(note.route, status, callerKey, note.deprecated);
    else this.#inventory.recordUndeclared(note.method, note.path, status);
  }

  /** An upgrade refused with `e`: noted and recorded at once (there is no ServerResponse). */
  refusedUpgrade(req: IncomingMessage, e: unknown, callerKey: string | null): void {
    this.denial(req, e);
    const status = e instanceof PolicyError ? RESCUE[e.code].status : 500;
    this.finish(req, status, callerKey);
  }
}

/** The client key of a request: the mTLS peer id, else the client IP. */
export function callerKey(info: { peerId: string | null; clientIp: string }): string | null {
  return info.peerId ?? (info.clientIp === '' ? null : info.clientIp);
}
