/**
 * A `@kubernetes/client-node` KubeConfig built in code for the API test
 * server, and the parsing of the `Status` an ApiException carries.
 */
import { ApiException, KubeConfig } from '@kubernetes/client-node';
import type { StatusBody } from './status.ts';

/** A KubeConfig whose only context points at `server` with a bearer token. */
export function kubeConfigFor(server: string, token = 'tollgate-test-token'): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'test', server, skipTLSVerify: true }],
    users: [{ name: 'test', token }],
    contexts: [{ name: 'test', cluster: 'test', user: 'test', namespace: 'default' }],
    currentContext: 'test',
  });
  return kc;
}

/** Awaits `promise`, expecting it to fail with an ApiException; returns its code and Status body. */
export async function apiFailure(promise: Promise<unknown>): Promise<{ code: number; status: StatusBody }> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof ApiException) {
      const body: unknown = error.body;
      const status = (typeof body === 'string' ? JSON.parse(body) : body) as StatusBody;
      return { code: error.code, status };
    }
    throw error;
  }
  throw new Error('expected the request to fail');
}
