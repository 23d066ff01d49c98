import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { AdmissionRequest } from './admission-review.ts';
import { validateApiPolicyAdmission } from './validate.ts';

const KIND = { group: 'tollgate.dev', version: 'v1alpha1', kind: 'ApiPolicy' };

function policy(routes: unknown[], extra: Record<string, unknown> = {}) {
  return {
    apiVersion: 'tollgate.dev/v1alpha1',
    kind: 'ApiPolicy',
    metadata: { name: 'orders', namespace: 'shop', ...extra },
    spec: { routes },
  };
}

function review(object: unknown, over: Partial<AdmissionRequest> = {}): AdmissionRequest {
  return { uid: 'u1', kind: KIND, operation: 'CREATE', name: 'orders', namespace: 'shop', object, ...over };
}

const GOOD = [{ name: 'get', path: '/v1/orders/{id}', methods: ['GET'], public: true }];
const BAD = [{ name: 'bad', path: '/a//b', methods: ['GET'], public: true }];

describe('validateApiPolicyAdmission', () => {
  test('a valid policy is allowed without warnings', () => {
    assert.deepEqual(validateApiPolicyAdmission(review(policy(GOOD))), { allowed: true, warnings: [] });
  });

  test('a semantically invalid policy is denied with 422 Invalid and the field path', () => {
    const r = validateApiPolicyAdmission(review(policy(BAD)));
    assert.equal(r.allowed, false);
    assert.equal(r.status?.code, 422);
    assert.equal(r.status?.reason, 'Invalid');
    assert.match(r.status?.message ?? '', /^ApiPolicy "orders" is invalid: spec\.routes\[0\]\.path: /);
    assert.equal(r.status?.details?.causes?.[0]?.field, 'spec.routes[0].path');
    assert.equal(r.status?.details?.kind, 'ApiPolicy');
  });

  test('warning-severity findings become warnings, the policy is allowed', () => {
    const r = validateApiPolicyAdmission(review(policy([{ name: 'closed', path: '/x', methods: ['GET'] }])));
    assert.equal(r.allowed, true);
    assert.equal(r.warnings?.length, 1);
    assert.match(r.warnings?.[0] ?? '', /^spec\.routes\[0\]: /);
  });

  test('a long list of errors is cut in the message but complete in the causes', () => {
    const routes = Array.from({ length: 12 }, (_, i) => ({ ...BAD[0], name: `r${i}` }));
    const r = validateApiPolicyAdmission(review(policy(routes)));
    assert.match(r.status?.message ?? '', /and 2 more$/);
    assert.equal(r.status?.details?.causes?.length, 12);
  });

  test('an update that keeps an invalid spec (labels, finalizers) is allowed', () => {
    const old = policy(BAD);
    const relabelled = policy(BAD, { labels: { team: 'a' } });
    assert.equal(
      validateApiPolicyAdmission(review(relabelled, { operation: 'UPDATE', oldObject: old })).allowed,
      true,
    );
    const changed = policy([...BAD, ...GOOD]);
    assert.equal(
      validateApiPolicyAdmission(review(changed, { operation: 'UPDATE', oldObject: old })).allowed,
      false,
    );
  });

  test('a policy being deleted, a DELETE and other kinds are allowed', () => {
    const deleting = policy(BAD, { deletionTimestamp: '2026-01-01T00:00:00Z' });
    assert.equal(validateApiPolicyAdmission(review(deleting, { operation: 'UPDATE' })).allowed, true);
    assert.equal(validateApiPolicyAdmission(review(undefined, { operation: 'DELETE' })).allowed, true);
    const pod = review({}, { kind: { group: '', version: 'v1', kind: 'Pod' } });
    assert.equal(validateApiPolicyAdmission(pod).allowed, true);
  });

  test('garbage objects are denied, never thrown on', () => {
    for (const object of [undefined, 'x', 42, [], { spec: 'x' }, { spec: { routes: 'x' } }]) {
      const r = validateApiPolicyAdmission(review(object));
      assert.equal(r.allowed, false, JSON.stringify(object));
      assert.equal(r.status?.code, 422);
    }
  });
});
