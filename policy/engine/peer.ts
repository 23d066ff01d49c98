/** mTLS peer identities: SPIFFE IDs of the form spiffe://<trust-domain>/ns/<ns>/sa/<sa>. */

export interface PeerIdentity {
  id: string;
  namespace: string;
  serviceAccount: string;
}

/** Parses a SPIFFE ID; namespace and serviceAccount are '' when the path is not /ns/X/sa/Y. */
export function parsePeer(id: string): PeerIdentity | null {
  const m = /^spiffe:\/\/[^/]+(\/.*)?$/.exec(id);
  if (!m) return null;
  const k8s = /^\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(m[1] ?? '');
  return { id, namespace: k8s?.[1] ?? '', serviceAccount: k8s?.[2] ?? '' };
}

/** Compiles a `peers` entry: exact, `*` (any peer), or `*` standing for whole segments. */
export function compilePeerPattern(pattern: string): (id: string) => boolean {
  if (pattern === '*') return () => true;
  if (!pattern.includes('*')) return (id) => id === pattern;
  const parts = pattern.split('/');
  return (id) => {
    const got = id.split('/');
    return (
      got.length === parts.length && parts.every((p, i) => (p === '*' ? (got[i] ?? '') !== '' : p === got[i]))
    );
  };
}
