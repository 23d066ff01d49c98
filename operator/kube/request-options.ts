/**
 * Per-request options for client-node 2.x API calls. Its generated clients
 * pick the first media type a patch operation declares (JSON Patch), so a
 * merge patch needs the `Content-Type` set by a middleware; and a request
 * is cancelled by putting an AbortSignal on its RequestContext, also from a
 * middleware. Middlewares at this layer return client-node's Observable.
 */
import {
  type ConfigurationOptions,
  Observable,
  type ObservableMiddleware,
  PatchStrategy,
  type RequestContext,
  type ResponseContext,
  setHeaderOptions,
} from '@kubernetes/client-node';

/** The options of one API call. */
export type RequestOptions = ConfigurationOptions<ObservableMiddleware>;

/** Sends the patch body as `application/merge-patch+json` (RFC 7386). */
export function mergePatch(options?: RequestOptions): RequestOptions {
  return setHeaderOptions('Content-Type', PatchStrategy.MergePatch, options);
}

/** Cancels the request (it rejects with an AbortError) once `signal` aborts. */
export function withSignal(signal: AbortSignal, options?: RequestOptions): RequestOptions {
  const middleware: ObservableMiddleware = {
    pre: (context: RequestContext) => {
      context.setSignal(signal);
      return new Observable(Promise.resolve(context));
    },
    post: (response: ResponseContext) => new Observable(Promise.resolve(response)),
  };
  return {
    ...options,
    middleware: [...(options?.middleware ?? []), middleware],
    middlewareMergeStrategy: 'append',
  };
}

/** The HTTP status of a failed API call (client-node's ApiException), if it has one. */
export function statusOf(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const { code } = error as { code?: unknown };
  return typeof code === 'number' ? code : undefined;
}
