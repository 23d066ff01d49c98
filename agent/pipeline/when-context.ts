/** The CEL `when` variables of a live request (built only when a rule has `when`). */
import type { IncomingMessage } from 'node:http';
import { type WhenContext, whenContext } from '../../policy/cel/when.ts';
import type { Identity } from '../../policy/engine/authorize.ts';
import type { PeerIdentity } from '../../policy/engine/peer.ts';
import { flatHeaders } from './decide-request.ts';

export function whenContextFor(
  req: IncomingMessage,
  path: string,
  query: string | null,
  params: Record<string, string>,
  identity: Identity | null,
  peer: PeerIdentity | null,
  ip: string,
): WhenContext {
  const method = req.method ?? 'GET';
  const host = typeof req.headers.host === 'string' ? req.headers.host : '';
  const headers = () => flatHeaders(req);
  return whenContext({
    method,
    path,
    headers,
    host,
    query,
    params,
    claims: identity?.claims ?? null,
    peer,
    ip,
  });
}
