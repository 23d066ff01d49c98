/**
 * A real JWKS endpoint for tests: node:http on 127.0.0.1:0 serving `/jwks`
 * from keys generated with jose, a signer for tokens under those keys, key
 * rotation, and switches to make the endpoint fail (503, dropped sockets, a
 * garbage body, a slow answer). Counts every request it receives.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type CryptoKey, exportJWK, generateKeyPair, type JWK, type JWTPayload, SignJWT } from 'jose';
import type { CompiledJwtProvider } from '../../policy/compile/bundle.ts';

export type TestKeyAlg = 'ES256' | 'RS256' | 'EdDSA';

export interface TestSignOptions {
  /** Key to sign with; a kid that is not served signs with the current key but carries this kid. */
  kid?: string;
  /** Extra or overriding protected-header members. */
  header?: Record<string, unknown>;
}

export interface JwksServer {
  /** `http://127.0.0.1:PORT` */
  readonly issuer: string;
  /** `${issuer}/jwks` */
  readonly jwksUri: string;
  /** Requests received so far (any path, any outcome). */
  readonly requests: number;
  readonly currentKid: string;
  /** A JWT signed with the current key (or `kid`'s); claims are used as given. */
  sign(claims: JWTPayload, options?: TestSignOptions): Promise<string>;
  /** Adds a new current key and returns its kid; `dropOld` stops serving the previous keys. */
  rotate(options?: { alg?: TestKeyAlg; dropOld?: boolean }): Promise<string>;
  /** While down, requests get 503 (`how: 'status'`, the default) or have their socket destroyed. */
  setDown(down: boolean, how?: 'status' | 'destroy'): void;
  /** Serve this body (200, application/json) instead of the key set; null restores the keys. */
  setBody(body: string | null): void;
  /** Delay every answer by this many ms. */
  setDelay(ms: number): void;
  /** `testProvider` pointed at this server (issuer and jwksUri), with overrides. */
  provider(overrides?: Partial<CompiledJwtProvider>): CompiledJwtProvider;
  close(): Promise<void>;
}

interface TestKey {
  kid: string;
  alg: TestKeyAlg;
  privateKey: CryptoKey;
  jwk: JWK;
}

let kidCounter = 0;

async function newKey(alg: TestKeyAlg): Promise<TestKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg);
  const kid = `k${++kidCounter}-${alg.toLowerCase()}`;
  return { kid, alg, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

/** Starts a JWKS server with one key of `alg` (default ES256). */
export async function startJwksServer(options: { alg?: TestKeyAlg } = {}): Promise<JwksServer> {
  let keys: TestKey[] = [await newKey(options.alg ?? 'ES256')];
  let requests = 0;
  let down: false | 'status' | 'destroy' = false;
  let body: string | null = null;
  let delayMs = 0;

  const answer = (req: IncomingMessage, res: ServerResponse): void => {
    if (down === 'destroy') {
      req.socket.destroy();
    } else if (down === 'status') {
      res.writeHead(503, { 'content-type': 'text/plain' }).end('down');
    } else if (req.url !== '/jwks') {
      res.writeHead(404).end();
    } else {
      const text = body ?? JSON.stringify({ keys: keys.map((k) => k.jwk) });
      res.writeHead(200, { 'content-type': 'application/json' }).end(text);
    }
  };
  const server = createServer((req, res) => {
    requests++;
    if (delayMs > 0) setTimeout(() => answer(req, res), delayMs);
    else answer(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const current = (): TestKey => {
    const key = keys.at(-1);
    if (!key) throw new Error('no current key');
    return key;
  };

  return {
    issuer,
    jwksUri: `${issuer}/jwks`,
    get requests() {
      return requests;
    },
    get currentKid() {
      return current().kid;
    },
    async sign(claims, signOptions = {}) {
      const key = keys.find((k) => k.kid === signOptions.kid) ?? current();
      const header = { alg: key.alg, kid: signOptions.kid ?? key.kid, typ: 'JWT', ...signOptions.header };
      return new SignJWT(claims).setProtectedHeader(header).sign(key.privateKey);
    },
    async rotate(rotateOptions = {}) {
      const key = await newKey(rotateOptions.alg ?? current().alg);
      keys = rotateOptions.dropOld ? [key] : [...keys, key];
      return key.kid;
    },
    setDown(isDown, how = 'status') {
      down = isDown ? how : false;
    },
    setBody(text) {
      body = text;
    },
    setDelay(ms) {
      delayMs = ms;
    },
    provider: (overrides = {}) => testProvider({ issuer, jwksUri: `${issuer}/jwks`, ...overrides }),
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}

/** A compiled provider for tests: issuer `https://issuer.test`, audience `orders-api`, Bearer header. */
export function testProvider(overrides: Partial<CompiledJwtProvider> = {}): CompiledJwtProvider {
  return {
    name: 'corp',
    issuer: 'https://issuer.test',
    jwksUri: null,
    jwks: null,
    audiences: ['orders-api'],
    algorithms: ['RS256', 'PS256', 'ES256', 'EdDSA'],
    from: [{ header: 'authorization', prefix: 'Bearer ' }],
    maxLifetimeMs: null,
    clockSkewMs: 0,
    forwardToken: true,
    claimHeaders: [],
    ...overrides,
  };
}
