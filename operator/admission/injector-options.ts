/**
 * The injector's settings from the operator's configuration: every
 * `--agent-*` and `--init-*` flag, `--native-sidecars`, and the address of the
 * operator's Service in its own namespace, which injected agents dial. Pure.
 */

import { OPERATOR_SERVICE } from '../ca/certificate-manager.ts';
import type { OperatorConfig } from '../config.ts';
import type { InjectOptions } from './inject.ts';

/** The gRPC port of the operator's Service (the chart's `grpc` port). */
export const OPERATOR_GRPC_PORT = 15010;

export type InjectorConfig = Pick<OperatorConfig, 'agentImage' | 'servingSecret'> &
  Partial<
    Pick<
      OperatorConfig,
      | 'agentImagePullPolicy'
      | 'initImage'
      | 'initImagePullPolicy'
      | 'nativeSidecars'
      | 'agentResources'
      | 'agentLogLevel'
      | 'agentOtlp'
      | 'agentRedisUrl'
    >
  >;

/** What the webhook server injects with (`auto` native sidecars are resolved when it starts). */
export type InjectorOptions = Omit<InjectOptions, 'nativeSidecars'> & { nativeSidecars: boolean | 'auto' };

/** The injector options of `config`; `version` is written on injected pods. */
export function injectorOptions(config: InjectorConfig, version: string): InjectorOptions {
  return {
    agentImage: config.agentImage,
    ...(config.agentImagePullPolicy ? { agentImagePullPolicy: config.agentImagePullPolicy } : {}),
    initImage: config.initImage ?? config.agentImage,
    ...(config.initImagePullPolicy ? { initImagePullPolicy: config.initImagePullPolicy } : {}),
    operatorAddress: `${OPERATOR_SERVICE}.${config.servingSecret.namespace}.svc:${OPERATOR_GRPC_PORT}`,
    nativeSidecars: config.nativeSidecars ?? 'auto',
    ...(config.agentResources ? { resources: config.agentResources } : {}),
    ...(config.agentLogLevel ? { logLevel: config.agentLogLevel } : {}),
    ...(config.agentOtlp ? { otlp: config.agentOtlp } : {}),
    ...(config.agentRedisUrl ? { redisUrl: config.agentRedisUrl } : {}),
    version,
  };
}
