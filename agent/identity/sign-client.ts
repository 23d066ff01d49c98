/**
 * The client side of `tollgate.v1.IdentityService.Sign`: a fresh ECDSA P-256
 * key pair made in memory (never written anywhere), its PKCS#10 request, and
 * one Sign call to the operator over TLS. Loaded only in operator mode.
 */
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import { type Client, credentials, makeGenericClientConstructor, type ServiceError } from '@grpc/grpc-js';
import { PemConverter, Pkcs10CertificateRequestGenerator } from '@peculiar/x509';
import {
  identityServiceDefinition,
  type SignRequest,
  type SignResponse,
} from '../../proto/identity-service.ts';

const KEY_ALG = { name: 'ECDSA', namedCurve: 'P-256' } as const;

/** A private key (PKCS#8 PEM, kept in memory) and the CSR for its public key. */
export interface KeyAndCsr {
  key: string;
  csr: string;
}

/** Makes a P-256 key pair and a CSR for it (the operator ignores the names: none are asked for). */
export async function newKeyAndCsr(): Promise<KeyAndCsr> {
  const keys = (await webcrypto.subtle.generateKey(KEY_ALG, true, [
    'sign',
    'verify',
  ])) as webcrypto.CryptoKeyPair;
  const csr = await Pkcs10CertificateRequestGenerator.create(
    { keys, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } },
    webcrypto,
  );
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return { key: PemConverter.encode(pkcs8, 'PRIVATE KEY'), csr: csr.toString('pem') };
}

export interface SignCallOptions {
  /** The operator's gRPC address, `HOST:PORT`. */
  target: string;
  /** PEM CA of the operator's serving certificate. */
  ca: Buffer | string;
  /** The name its certificate must carry when not the target's host. */
  serverName?: string | undefined;
  /** Default 10 s. */
  deadlineMs?: number;
}

type ClientConstructor = ReturnType<typeof makeGenericClientConstructor>;
let clientClass: ClientConstructor | undefined;

/** The host of `HOST:PORT` (brackets of an IPv6 literal removed). */
function hostOf(target: string): string {
  const i = target.lastIndexOf(':');
  return (i < 0 ? target : target.slice(0, i)).replace(/^\[|\]$/g, '');
}

/** One Sign call; rejects with the gRPC ServiceError (its `code` says why), CANCELLED when `signal` aborts. */
export function callSign(
  options: SignCallOptions,
  request: SignRequest,
  signal?: AbortSignal,
): Promise<SignResponse> {
  // Not even a connection once stopped: a pending TLS connect would outlive a cancelled call.
  if (signal?.aborted) return Promise.reject(new Error('stopped'));
  clientClass ??= makeGenericClientConstructor(identityServiceDefinition(), 'IdentityService');
  const host = hostOf(options.target);
  const name = options.serverName ?? host;
  const client: Client = new clientClass(
    options.target,
    credentials.createSsl(Buffer.from(options.ca)),
    name === host ? {} : { 'grpc.ssl_target_name_override': name },
  );
  const stub = client as unknown as {
    Sign(
      req: SignRequest,
      opts: { deadline: Date },
      cb: (e: ServiceError | null, res?: SignResponse) => void,
    ): { cancel(): void };
  };
  return new Promise<SignResponse>((resolve, reject) => {
    const cancel = () => call.cancel();
    const call = stub.Sign(
      request,
      { deadline: new Date(Date.now() + (options.deadlineMs ?? 10_000)) },
      (error, response) => {
        signal?.removeEventListener('abort', cancel);
        client.close();
        if (error || !response) reject(error ?? new Error('empty Sign response'));
        else resolve(response);
      },
    );
    if (signal?.aborted) cancel();
    else signal?.addEventListener('abort', cancel, { once: true });
  });
}
