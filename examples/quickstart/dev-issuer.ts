/**
 * A local development token issuer for the quick start: a real ES256 key pair,
 * its JWKS and OpenID discovery document over HTTP, and signed access tokens.
 * For development only: it signs whatever claims it is asked to.
 */
import { createServer, type Server } from 'node:http';
import { type CryptoKey, exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';

export interface DevIssuer {
  server: Server;
  sign(claims: Record<string, unknown>, lifetimeSeconds?: number): Promise<string>;
}

export async function createDevIssuer(issuer: string, audience: string): Promise<DevIssuer> {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const jwk: JWK = { ...(await exportJWK(publicKey)), kid: 'dev-1', alg: 'ES256', use: 'sig' };
  const server = createServer((req, res) => {
    const json = (body: unknown) => {
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=300' });
      res.end(JSON.stringify(body));
    };
    if (req.url === '/.well-known/jwks.json') return json({ keys: [jwk] });
    if (req.url === '/.well-known/openid-configuration') {
      return json({
        issuer,
        jwks_uri: `${issuer}.well-known/jwks.json`,
        id_token_signing_alg_values_supported: ['ES256'],
      });
    }
    res.writeHead(404).end();
  });
  return { server, sign: (claims, lifetime = 3600) => sign(privateKey, issuer, audience, claims, lifetime) };
}

function sign(key: CryptoKey, iss: string, aud: string, claims: Record<string, unknown>, lifetime: number) {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'ES256', kid: 'dev-1', typ: 'at+jwt' })
    .setIssuer(iss)
    .setAudience(aud)
    .setIssuedAt()
    .setExpirationTime(`${lifetime}s`)
    .sign(key);
}
