/**
 * The TypeScript side of proto/tollgate/v1/policy.proto: the service definition
 * loaded once (lazily, not at import time) with @grpc/proto-loader, and the
 * message shapes both the agent and the operator use. Field names are the
 * proto's in camelCase; a message's `kind` names the oneof member that is set.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { ServiceDefinition } from '@grpc/grpc-js';
import type * as ProtoLoader from '@grpc/proto-loader';

/** @grpc/proto-loader (and protobufjs) loaded on first use: importing the message shapes costs no memory. */
const loadSync: typeof ProtoLoader.loadSync = (...args) =>
  (createRequire(import.meta.url)('@grpc/proto-loader') as typeof ProtoLoader).loadSync(...args);

/** The .proto file: beside this module in the source tree, two levels up from dist/proto/ in a build. */
export const POLICY_PROTO = [
  new URL('./tollgate/v1/policy.proto', import.meta.url),
  new URL('../../proto/tollgate/v1/policy.proto', import.meta.url),
]
  .map((u) => fileURLToPath(u))
  .find((p) => existsSync(p)) as string;

/** The audience of the projected ServiceAccount token a sidecar presents. */
export const TOKEN_AUDIENCE = 'tollgate';

export interface Hello {
  podName: string;
  podNamespace: string;
  token: string;
  appPort: number;
  bundleVersion: string;
  agentVersion: string;
}
export interface Ack {
  version: string;
}
export interface Nack {
  version: string;
  error: string;
}
export interface Report {
  kind: string;
  json: string;
}
export type SidecarMessage =
  | { kind: 'hello'; hello: Hello }
  | { kind: 'ack'; ack: Ack }
  | { kind: 'nack'; nack: Nack }
  | { kind: 'report'; report: Report };

export interface Bundle {
  version: string;
  json: string;
}
export interface MeshEndpointMessage {
  addresses: string[];
  ports: number[];
  excludedPorts: number[];
  identities: string[];
}
export interface Mesh {
  version: string;
  endpoints: MeshEndpointMessage[];
}
export type OperatorMessage =
  | { kind: 'bundle'; bundle: Bundle }
  | { kind: 'trustBundle'; trustBundle: TrustBundle }
  | { kind: 'mesh'; mesh: Mesh };
/** The mesh roots (PEM, one or more CA certificates); `version` is {@link trustBundleVersion} of `pem`. */
export interface TrustBundle {
  version: string;
  pem: string;
}

/** The Report kind a sidecar answers a TrustBundle with (JSON {@link TrustBundleReport}). */
export const TRUST_BUNDLE_REPORT = 'trust-bundle';
export interface TrustBundleReport {
  version: string;
  result: 'accepted' | 'rejected';
  /** Why it was rejected. */
  error?: string;
}

/** The version of a trust bundle: `sha256:` and the hex SHA-256 of its PEM text exactly as sent. */
export function trustBundleVersion(pem: string): string {
  return `sha256:${createHash('sha256').update(pem).digest('hex')}`;
}

let definition: ServiceDefinition | undefined;

/** `tollgate.v1.PolicyService`, for `server.addService` and `makeGenericClientConstructor`. */
export function policyServiceDefinition(): ServiceDefinition {
  if (definition === undefined) {
    const pkg = loadSync(POLICY_PROTO, {
      keepCase: false,
      longs: Number,
      enums: String,
      defaults: true,
      oneofs: true,
    });
    definition = pkg['tollgate.v1.PolicyService'] as unknown as ServiceDefinition;
  }
  return definition;
}
