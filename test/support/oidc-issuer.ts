/**
 * A real OpenID Provider for tests: oidc-provider on 127.0.0.1:0 (issuer
 * `http://127.0.0.1:PORT`) with a client-credentials client and resource
 * indicators, so `/token` issues JWT access tokens signed with the RS256 or
 * ES256 key of its JWKS (served at `/jwks`). Key rotation rebuilds the provider
 * on the same address, like an issuer restarting with new keys.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, type JWK } from 'jose';

export interface OidcIssuer {
  /** `http://127.0.0.1:PORT` */
  readonly issuer: string;
  /** `${issuer}/jwks` */
  readonly jwksUri: string;
  /** The kids currently served, signing keys first. */
  readonly kids: readonly string[];
  /** An access token from the client-credentials grant; `resource` default `urn:tollgate:test`. */
  getToken(options?: { scope?: string; resource?: string; alg?: 'RS256' | 'ES256' }): Promise<string>;
  /** New RS256 and ES256 signing keys; old ones stay published unless `dropOld`. */
  rotateKeys(options?: { dropOld?: boolean }): Promise<void>;
  close(): Promise<void>;
}

export const TEST_CLIENT = { id: 'tollgate-test', secret: 'tollgate-test-secret' } as const;
export const TEST_SCOPES = ['orders:read', 'orders:write'] as const;
export const DEFAULT_RESOURCE = 'urn:tollgate:test';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;
interface OidcProviderInstance {
  callback(): Handler;
}
type OidcProviderClass = new (issuer: string, configuration: Record<string, unknown>) => OidcProviderInstance;

// oidc-provider ships no type declarations; a non-literal specifier keeps tsc from
// demanding them, and the local types above say all this helper relies on.
const MODULE = 'oidc-provider';

async function signingKeys(): Promise<JWK[]> {
  const suffix = Math.random().toString(36).slice(2, 8);
  const rsa = await generateKeyPair('RS256', { extractable: true });
  const ec = await generateKeyPair('ES256', { extractable: true });
  return [
    { ...(await exportJWK(rsa.privateKey)), kid: `rsa-${suffix}`, alg: 'RS256', use: 'sig' },
    { ...(await exportJWK(ec.privateKey)), kid: `ec-${suffix}`, alg: 'ES256', use: 'sig' },
  ];
}

/** The in-memory storage oidc-provider wants; the built-in one prints a warning at start. */
class MemoryAdapter {
  static readonly store = new Map<string, unknown>();
  readonly #name: string;
  constructor(name: string) {
    this.#name = name;
  }
  #key(id: string): string {
    return `${this.#name}:${id}`;
  }
  async upsert(id: string, payload: unknown): Promise<void> {
    MemoryAdapter.store.set(this.#key(id), payload);
  }
  async find(id: string): Promise<unknown> {
    return MemoryAdapter.store.get(this.#key(id));
  }
  async findByUid(): Promise<undefined> {}
  async findByUserCode(): Promise<undefined> {}
  async consume(): Promise<void> {}
  async destroy(id: string): Promise<void> {
    MemoryAdapter.store.delete(this.#key(id));
  }
  async revokeByGrantId(): Promise<void> {}
}

function configuration(keys: JWK[], algFor: (resource: string) => string): Record<string, unknown> {
  return {
    adapter: MemoryAdapter,
    clients: [
      {
        client_id: TEST_CLIENT.id,
        client_secret: TEST_CLIENT.secret,
        grant_types: ['client_credentials'],
        redirect_uris: [],
        response_types: [],
        scope: TEST_SCOPES.join(' '),
      },
    ],
    jwks: { keys },
    scopes: [...TEST_SCOPES],
    ttl: { ClientCredentials: () => 300 },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => DEFAULT_RESOURCE,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx: unknown, resource: string) => ({
          scope: TEST_SCOPES.join(' '),
          audience: resource,
          accessTokenFormat: 'jwt',
          accessTokenTTL: 300,
          jwt: { sign: { alg: algFor(resource) } },
        }),
      },
    },
  };
}

/** Starts the issuer; `close()` it in `after()`. */
export async function startOidcIssuer(): Promise<OidcIssuer> {
  const { default: Provider } = (await import(MODULE)) as { default: OidcProviderClass };
  let handler: Handler = (_req, res) => res.writeHead(503).end();
  const server = createServer((req, res) => handler(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  // Tokens for one resource are signed with the alg last asked for it (tests ask serially).
  const algs = new Map<string, string>();
  let keys: JWK[] = [];
  const install = (next: JWK[]): void => {
    keys = next;
    const provider = new Provider(
      issuer,
      configuration(keys, (r) => algs.get(r) ?? 'ES256'),
    );
    handler = provider.callback();
  };
  install(await signingKeys());

  return {
    issuer,
    jwksUri: `${issuer}/jwks`,
    get kids() {
      return keys.map((k) => k.kid ?? '');
    },
    async getToken(options = {}) {
      const resource = options.resource ?? DEFAULT_RESOURCE;
      algs.set(resource, options.alg ?? 'ES256');
      const response = await fetch(`${issuer}/token`, {
        method: 'POST',
        headers: {
          authorization: `Basic ${Buffer.from(`${TEST_CLIENT.id}:${TEST_CLIENT.secret}`).toString('base64')}`,
          'content-type': 'application/x-www-form-urlencoded',
        },
        body: new URLSearchParams({
          grant_type: 'client_credentials',
          scope: options.scope ?? TEST_SCOPES.join(' '),
          resource,
        }),
      });
      const body = (await response.json()) as { access_token?: unknown; error?: unknown };
      if (!response.ok || typeof body.access_token !== 'string') {
        throw new Error(`token request failed: ${response.status} ${String(body.error)}`);
      }
      return body.access_token;
    },
    async rotateKeys(options = {}) {
      const fresh = await signingKeys();
      install(options.dropOld ? fresh : [...fresh, ...keys]);
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}
