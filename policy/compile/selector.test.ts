import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { LabelSelector } from '../schema/api-policy.ts';
import { selectorMatches } from './selector.ts';

const labels = { app: 'orders', tier: 'backend', version: '' };

describe('selectorMatches', () => {
  const cases: [name: string, selector: LabelSelector | undefined, expected: boolean][] = [
    ['omitted selector selects everything', undefined, true],
    ['empty selector selects everything', {}, true],
    ['empty matchLabels and matchExpressions', { matchLabels: {}, matchExpressions: [] }, true],
    ['matchLabels equal', { matchLabels: { app: 'orders' } }, true],
    ['matchLabels all equal', { matchLabels: { app: 'orders', tier: 'backend' } }, true],
    ['matchLabels one differs', { matchLabels: { app: 'orders', tier: 'frontend' } }, false],
    ['matchLabels missing label', { matchLabels: { team: 'shop' } }, false],
    ['matchLabels empty value matches an empty label', { matchLabels: { version: '' } }, true],
    ['matchLabels empty value does not match a missing label', { matchLabels: { team: '' } }, false],
    ['matchLabels is case-sensitive', { matchLabels: { app: 'Orders' } }, false],
    [
      'In: value listed',
      { matchExpressions: [{ key: 'app', operator: 'In', values: ['cart', 'orders'] }] },
      true,
    ],
    ['In: value not listed', { matchExpressions: [{ key: 'app', operator: 'In', values: ['cart'] }] }, false],
    ['In: label missing', { matchExpressions: [{ key: 'team', operator: 'In', values: ['shop'] }] }, false],
    [
      'In: label missing, empty value listed',
      { matchExpressions: [{ key: 'team', operator: 'In', values: [''] }] },
      false,
    ],
    [
      'In: empty label, empty value listed',
      { matchExpressions: [{ key: 'version', operator: 'In', values: [''] }] },
      true,
    ],
    [
      'NotIn: value not listed',
      { matchExpressions: [{ key: 'app', operator: 'NotIn', values: ['cart'] }] },
      true,
    ],
    [
      'NotIn: value listed',
      { matchExpressions: [{ key: 'app', operator: 'NotIn', values: ['orders'] }] },
      false,
    ],
    [
      'NotIn: label missing matches',
      { matchExpressions: [{ key: 'team', operator: 'NotIn', values: ['shop'] }] },
      true,
    ],
    ['Exists: present', { matchExpressions: [{ key: 'tier', operator: 'Exists' }] }, true],
    [
      'Exists: present with an empty value',
      { matchExpressions: [{ key: 'version', operator: 'Exists' }] },
      true,
    ],
    ['Exists: missing', { matchExpressions: [{ key: 'team', operator: 'Exists' }] }, false],
    ['DoesNotExist: missing', { matchExpressions: [{ key: 'team', operator: 'DoesNotExist' }] }, true],
    ['DoesNotExist: present', { matchExpressions: [{ key: 'app', operator: 'DoesNotExist' }] }, false],
    [
      'all requirements must hold (AND)',
      {
        matchLabels: { app: 'orders' },
        matchExpressions: [
          { key: 'tier', operator: 'In', values: ['backend'] },
          { key: 'team', operator: 'DoesNotExist' },
        ],
      },
      true,
    ],
    [
      'matchLabels hold but one expression fails',
      {
        matchLabels: { app: 'orders' },
        matchExpressions: [
          { key: 'tier', operator: 'Exists' },
          { key: 'tier', operator: 'NotIn', values: ['backend'] },
        ],
      },
      false,
    ],
    [
      'inherited object keys are not labels',
      { matchExpressions: [{ key: 'constructor', operator: 'Exists' }] },
      false,
    ],
  ];
  for (const [name, selector, expected] of cases) {
    it(`${name} → ${expected}`, () => {
      assert.equal(selectorMatches(selector, labels), expected);
    });
  }
});
