/**
 * The TypeScript side of proto/tollgate/v1/identity.proto: the service
 * definition loaded once (lazily, not at import time) with
 * @grpc/proto-loader, and the message shapes the agent and the operator use.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { ServiceDefinition } from '@grpc/grpc-js';
import type * as ProtoLoader from '@grpc/proto-loader';

/** @grpc/proto-loader (and protobufjs) loaded on first use: importing the message shapes costs no memory. */
const loadSync: typeof ProtoLoader.loadSync = (...args) =>
  (createRequire(import.meta.url)('@grpc/proto-loader') as typeof ProtoLoader).loadSync(...args);

/** The .proto file: beside this module in the source tree, two levels up from dist/proto/ in a build. */
export const IDENTITY_PROTO = [
  new URL('./tollgate/v1/identity.proto', import.meta.url),
  new URL('../../proto/tollgate/v1/identity.proto', import.meta.url),
]
  .map((u) => fileURLToPath(u))
  .find((p) => existsSync(p)) as string;

export interface SignRequest {
  podName: string;
  podNamespace: string;
  token: string;
  /** PEM PKCS#10. */
  csr: string;
}

export interface SignResponse {
  /** PEM, leaf first. */
  certChain: string[];
  /** PEM roots of the mesh. */
  trustBundle: string;
}

let definition: ServiceDefinition | undefined;

/** `tollgate.v1.IdentityService`, for `server.addService` and `makeGenericClientConstructor`. */
export function identityServiceDefinition(): ServiceDefinition {
  if (definition === undefined) {
    const pkg = loadSync(IDENTITY_PROTO, {
      keepCase: false,
      longs: Number,
      enums: String,
      defaults: true,
      oneofs: true,
    });
    definition = pkg['tollgate.v1.IdentityService'] as unknown as ServiceDefinition;
  }
  return definition;
}
