/**
 * A local ES256 token issuer for the bench: serves its JWKS over HTTP on
 * 127.0.0.1 (port 0) and signs one access token. Listening first means the
 * issuer URL in the policy and in the token is the real origin.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';

export interface BenchIssuer {
  /** e.g. http://127.0.0.1:40123 (no trailing slash) */
  origin: string;
  server: Server;
  /** Counts JWKS fetches: the agent should fetch once and cache. */
  jwksFetches(): number;
  sign(claims: Record<string, unknown>, lifetimeSeconds: number): Promise<string>;
}

export async function startIssuer(audience: string): Promise<BenchIssuer> {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'bench-1', alg: 'ES256', use: 'sig' };
  let fetches = 0;
  const server = createServer((req, res) => {
    if (req.url === '/.well-known/jwks.json') {
      fetches += 1;
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=300' });
      res.end(JSON.stringify({ keys: [jwk] }));
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;
  return {
    origin,
    server,
    jwksFetches: () => fetches,
    sign: (claims, lifetime) =>
      new SignJWT(claims)
        .setProtectedHeader({ alg: 'ES256', kid: 'bench-1', typ: 'at+jwt' })
        .setIssuer(`${origin}/`)
        .setAudience(audience)
        .setIssuedAt()
        .setExpirationTime(`${lifetime}s`)
        .sign(privateKey),
  };
}
