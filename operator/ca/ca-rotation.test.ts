import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  nextRotationStep,
  ROTATE_REQUEST,
  ROTATION_SINCE,
  ROTATION_STAGE,
  type RotationStep,
  type RotationTiming,
} from './ca-rotation.ts';

const H = 3_600_000;
const T0 = Date.parse('2030-01-01T00:00:00Z');
const timing: RotationTiming = { rotateBeforeMs: 1000 * H, propagationMs: 1 * H, workloadTtlMs: 24 * H };
const at = (stage: string, since: number) => ({
  [ROTATION_STAGE]: stage,
  [ROTATION_SINCE]: new Date(since).toISOString(),
});

test('nextRotationStep: table', () => {
  const notAfter = T0 + 2000 * H;
  const cases: Array<[string, Record<string, string>, number, RotationTiming, RotationStep | null]> = [
    ['a young CA', {}, T0, timing, null],
    ['a CA inside rotateBefore', {}, notAfter - 999 * H, timing, 'start'],
    ['rotateBefore 0: never on its own', {}, notAfter - 1 * H, { ...timing, rotateBeforeMs: 0 }, null],
    ['asked for', { [ROTATE_REQUEST]: 'now' }, T0, { ...timing, rotateBeforeMs: 0 }, 'start'],
    ['stage 1, propagating', at('trust-both', T0), T0 + 59 * 60_000, timing, null],
    ['stage 1, propagated', at('trust-both', T0), T0 + 1 * H, timing, 'sign-new'],
    ['stage 2, old leaves alive', at('signing-new', T0), T0 + 24 * H, timing, null],
    ['stage 2, old leaves expired', at('signing-new', T0), T0 + 25 * H, timing, 'finish'],
    [
      'a stage with an unreadable time',
      { [ROTATION_STAGE]: 'trust-both', [ROTATION_SINCE]: 'x' },
      T0,
      timing,
      'repair',
    ],
    ['an unknown stage is none', { [ROTATION_STAGE]: 'what' }, T0, timing, null],
    [
      'a request during a rotation changes nothing',
      { ...at('trust-both', T0), [ROTATE_REQUEST]: '' },
      T0,
      timing,
      null,
    ],
  ];
  for (const [name, annotations, now, t, step] of cases)
    assert.equal(nextRotationStep(annotations, notAfter, t, now), step, name);
});
