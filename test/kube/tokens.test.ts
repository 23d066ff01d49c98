/**
 * ServiceAccount tokens and TokenReview through client-node's
 * AuthenticationV1Api, with the behaviours that go with them: the default
 * ServiceAccount of every namespace, pods defaulting to it, and the
 * authenticator's real failure messages.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { AuthenticationV1Api, CoreV1Api, type V1TokenReviewStatus } from '@kubernetes/client-node';
import { apiFailure, kubeConfigFor } from './client.ts';
import { KubeTestServer } from './server.ts';
import { fixtureJson, obj, shape, UID } from './testing.ts';
import { ISSUER } from './tokens.ts';

const POD_SPEC = { containers: [{ name: 'app', image: 'app:1' }] };

function claimsOf(token: string): Record<string, unknown> {
  return obj(JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')));
}

describe('ServiceAccount tokens and TokenReview', () => {
  let server: KubeTestServer;
  let core: CoreV1Api;
  let auth: AuthenticationV1Api;

  async function review(token: string, audiences?: string[]): Promise<V1TokenReviewStatus> {
    const created = await auth.createTokenReview({
      body: {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenReview',
        spec: { token, ...(audiences ? { audiences } : {}) },
      },
    });
    assert.equal(created.kind, 'TokenReview');
    return created.status ?? {};
  }

  async function pod(namespace: string, name: string, serviceAccountName?: string): Promise<string> {
    const created = await core.createNamespacedPod({
      namespace,
      body: {
        metadata: { name },
        spec: { ...POD_SPEC, ...(serviceAccountName ? { serviceAccountName } : {}) },
      },
    });
    return created.metadata?.uid ?? '';
  }

  before(async () => {
    server = await KubeTestServer.start({ token: 'admin' });
    const kc = kubeConfigFor(server.url, 'admin');
    core = kc.makeApiClient(CoreV1Api);
    auth = kc.makeApiClient(AuthenticationV1Api);
    await core.createNamespace({ body: { metadata: { name: 'shop' } } });
    await core.createNamespacedServiceAccount({ namespace: 'shop', body: { metadata: { name: 'robot' } } });
  });
  after(async () => {
    await server.close();
  });

  test('every namespace has a default ServiceAccount, recreated with a new uid when deleted', async () => {
    const first = await core.readNamespacedServiceAccount({ name: 'default', namespace: 'shop' });
    assert.match(first.metadata?.uid ?? '', UID);
    const system = await core.readNamespacedServiceAccount({ name: 'default', namespace: 'kube-system' });
    assert.match(system.metadata?.uid ?? '', UID);
    const deleted = await core.deleteNamespacedServiceAccount({ name: 'default', namespace: 'shop' });
    assert.equal(deleted.metadata?.name, 'default', 'a ServiceAccount delete answers the object');
    const again = await core.readNamespacedServiceAccount({ name: 'default', namespace: 'shop' });
    assert.notEqual(again.metadata?.uid, first.metadata?.uid);
  });

  test('pods default to the default ServiceAccount; a missing one is refused with 403', async () => {
    await pod('shop', 'defaulted');
    const read = await core.readNamespacedPod({ name: 'defaulted', namespace: 'shop' });
    assert.equal(read.spec?.serviceAccountName, 'default');
    assert.equal(read.spec?.serviceAccount, 'default');
    const refused = await apiFailure(
      core.createNamespacedPod({
        namespace: 'shop',
        body: { metadata: { name: 'lost' }, spec: { ...POD_SPEC, serviceAccountName: 'ghost' } },
      }),
    );
    assert.equal(refused.code, 403);
    assert.equal(refused.status.reason, 'Forbidden');
    assert.equal(
      refused.status.message,
      'pods "lost" is forbidden: service account shop/ghost was not found, retry after the service account is created',
    );
  });

  test('issueToken mints a projected-style JWT bound to the stored objects', async () => {
    const uid = await pod('shop', 'bound', 'robot');
    const token = await server.issueToken({
      namespace: 'shop',
      serviceAccount: 'robot',
      pod: { name: 'bound', uid },
    });
    const header = obj(JSON.parse(Buffer.from(token.split('.')[0] ?? '', 'base64url').toString('utf8')));
    assert.equal(header.alg, 'RS256');
    assert.match(String(header.kid), /^[A-Za-z0-9_-]{43}$/);
    const claims = claimsOf(token);
    const sa = await core.readNamespacedServiceAccount({ name: 'robot', namespace: 'shop' });
    assert.deepEqual(Object.keys(claims), ['aud', 'exp', 'iat', 'iss', 'jti', 'kubernetes.io', 'nbf', 'sub']);
    assert.deepEqual(claims.aud, [ISSUER]);
    assert.equal(claims.iss, 'https://kubernetes.default.svc.cluster.local');
    assert.equal(claims.sub, 'system:serviceaccount:shop:robot');
    assert.equal(Number(claims.exp) - Number(claims.iat), 3600);
    assert.equal(claims.nbf, claims.iat);
    assert.deepEqual(claims['kubernetes.io'], {
      namespace: 'shop',
      pod: { name: 'bound', uid },
      serviceaccount: { name: 'robot', uid: sa.metadata?.uid },
    });
    await assert.rejects(
      server.issueToken({ namespace: 'shop', serviceAccount: 'ghost' }),
      /serviceaccounts "ghost" not found/,
    );
    await assert.rejects(
      server.issueToken({ namespace: 'shop', serviceAccount: 'default', pod: { name: 'bound', uid } }),
      /cannot bind token for serviceaccount "default" to pod running with different serviceaccount name/,
    );
  });

  test('a valid bound token is authenticated with the user, groups, extras and audiences', async () => {
    const uid = await pod('shop', 'valid', 'robot');
    const token = await server.issueToken({
      namespace: 'shop',
      serviceAccount: 'robot',
      pod: { name: 'valid', uid },
    });
    const status = await review(token);
    const sa = await core.readNamespacedServiceAccount({ name: 'robot', namespace: 'shop' });
    assert.equal(status.authenticated, true);
    assert.equal(status.error, undefined);
    assert.deepEqual(status.audiences, [ISSUER]);
    assert.deepEqual(
      { ...status.user },
      {
        username: 'system:serviceaccount:shop:robot',
        uid: sa.metadata?.uid,
        groups: ['system:serviceaccounts', 'system:serviceaccounts:shop', 'system:authenticated'],
        extra: {
          'authentication.kubernetes.io/credential-id': [`JTI=${String(claimsOf(token).jti)}`],
          'authentication.kubernetes.io/pod-name': ['valid'],
          'authentication.kubernetes.io/pod-uid': [uid],
        },
      },
    );
    const recorded = obj(fixtureJson('tokenreview-authenticated.json').status);
    assert.deepEqual(shape(status), shape(recorded));
  });

  test('audiences: the token is checked against spec.audiences, else against the API server', async () => {
    const token = await server.issueToken({
      namespace: 'shop',
      serviceAccount: 'robot',
      audiences: ['vault'],
    });
    const forServer = await review(token);
    assert.equal(forServer.authenticated, undefined, 'authenticated is omitted when false, as Go omits it');
    assert.deepEqual({ ...forServer.user }, {});
    assert.equal(
      forServer.error,
      '[invalid bearer token, token audiences ["vault"] is invalid for the target audiences ["https://kubernetes.default.svc.cluster.local"]]',
    );
    const forVault = await review(token, ['other', 'vault']);
    assert.equal(forVault.authenticated, true);
    assert.deepEqual(forVault.audiences, ['vault']);
    const two = await server.issueToken({
      namespace: 'shop',
      serviceAccount: 'robot',
      audiences: ['a', 'b'],
    });
    assert.equal(
      (await review(two, ['c'])).error,
      '[invalid bearer token, token audiences ["a" "b"] is invalid for the target audiences ["c"]]',
    );
  });

  test('expiry allows go-jose leeway of 60 s, then "service account token has expired"', async () => {
    const now = new Date(Date.now() - 2 * 3600_000);
    const expired = await server.issueToken({ namespace: 'shop', serviceAccount: 'robot', now });
    assert.equal((await review(expired)).error, '[invalid bearer token, service account token has expired]');
    const justExpired = await server.issueToken({
      namespace: 'shop',
      serviceAccount: 'robot',
      expirationSeconds: -20,
    });
    assert.equal((await review(justExpired)).authenticated, true);
    const future = await server.issueToken({
      namespace: 'shop',
      serviceAccount: 'robot',
      now: new Date(Date.now() + 3600_000),
    });
    assert.equal(
      (await review(future)).error,
      '[invalid bearer token, service account token is not valid yet]',
    );
  });

  test('signature, issuer and garbage: what the request authenticators report', async () => {
    const foreign = await server.issueToken({
      namespace: 'shop',
      serviceAccount: 'robot',
      signingKey: 'foreign',
    });
    assert.equal((await review(foreign)).error, '[invalid bearer token, invalid signature, no keys found]');
    const [header, payload] = (await server.issueToken({ namespace: 'shop', serviceAccount: 'robot' })).split(
      '.',
    );
    const forged = `${header}.${payload}.${Buffer.from('not a signature').toString('base64url')}`;
    assert.equal(
      (await review(forged)).error,
      '[invalid bearer token, go-jose/go-jose: error in cryptographic primitive]',
    );
    assert.equal((await review('not-a-jwt')).error, 'invalid bearer token');
    const empty = await apiFailure(auth.createTokenReview({ body: { spec: { token: '' } } }));
    assert.equal(empty.code, 400);
    assert.equal(empty.status.message, 'token is required for TokenReview in authentication');
  });

  test('a deleted or recreated ServiceAccount or pod invalidates its tokens', async () => {
    await core.createNamespacedServiceAccount({ namespace: 'shop', body: { metadata: { name: 'temp' } } });
    const uid = await pod('shop', 'worker', 'temp');
    const token = await server.issueToken({
      namespace: 'shop',
      serviceAccount: 'temp',
      pod: { name: 'worker', uid },
    });
    assert.equal((await review(token)).authenticated, true);

    await core.deleteNamespacedPod({ name: 'worker', namespace: 'shop' });
    assert.equal(
      (await review(token)).error,
      '[invalid bearer token, service account token has been invalidated]',
    );
    const newUid = await pod('shop', 'worker', 'temp');
    assert.equal(
      (await review(token)).error,
      `[invalid bearer token, pod UID (${newUid}) does not match service account pod ref claim (${uid})]`,
    );

    const saToken = await server.issueToken({ namespace: 'shop', serviceAccount: 'temp' });
    const oldSa = await core.readNamespacedServiceAccount({ name: 'temp', namespace: 'shop' });
    await core.deleteNamespacedServiceAccount({ name: 'temp', namespace: 'shop' });
    assert.equal((await review(saToken)).error, '[invalid bearer token, serviceaccounts "temp" not found]');
    const newSa = await core.createNamespacedServiceAccount({
      namespace: 'shop',
      body: { metadata: { name: 'temp' } },
    });
    assert.equal(
      (await review(saToken)).error,
      `[invalid bearer token, service account UID (${newSa.metadata?.uid}) does not match claim (${oldSa.metadata?.uid})]`,
    );
  });

  test('an issued token is a credential for the API; TokenReview is in discovery', async () => {
    const token = await server.issueToken({ namespace: 'shop', serviceAccount: 'robot' });
    const asRobot = kubeConfigFor(server.url, token).makeApiClient(CoreV1Api);
    assert.ok((await asRobot.listNamespace()).items.length >= 5);
    const vaultOnly = await server.issueToken({
      namespace: 'shop',
      serviceAccount: 'robot',
      audiences: ['vault'],
    });
    const refused = await apiFailure(
      kubeConfigFor(server.url, vaultOnly).makeApiClient(CoreV1Api).listNamespace(),
    );
    assert.equal(refused.code, 401);
    const resources = await auth.getAPIResources();
    assert.deepEqual(
      resources.resources.map((r) => [r.name, r.namespaced, r.kind, r.verbs]),
      [['tokenreviews', false, 'TokenReview', ['create']]],
    );
  });

  test('TokenRequest (serviceaccounts/NAME/token): a bound token the TokenReview accepts for its audience', async () => {
    const uid = await pod('shop', 'requested', 'robot');
    const request = await core.createNamespacedServiceAccountToken({
      name: 'robot',
      namespace: 'shop',
      body: {
        spec: {
          audiences: ['tollgate'],
          expirationSeconds: 600,
          boundObjectRef: { kind: 'Pod', apiVersion: 'v1', name: 'requested', uid },
        },
      },
    });
    const token = request.status?.token ?? '';
    assert.ok(request.status?.expirationTimestamp);
    const claims = claimsOf(token);
    assert.deepEqual(claims.aud, ['tollgate']);
    assert.equal(claims.sub, 'system:serviceaccount:shop:robot');
    const ok = await review(token, ['tollgate']);
    assert.equal(ok.authenticated, true);
    assert.deepEqual(ok.user?.extra?.['authentication.kubernetes.io/pod-name'], ['requested']);
    const short = await apiFailure(
      core.createNamespacedServiceAccountToken({
        name: 'robot',
        namespace: 'shop',
        body: { spec: { audiences: ['x'], expirationSeconds: 60 } },
      }),
    );
    assert.equal(short.code, 422);
    assert.match(short.status.message ?? '', /may not specify a duration less than 10 minutes/);
  });
});
