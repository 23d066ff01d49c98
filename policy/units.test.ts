import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseByteQuantity, parseDuration, parseInstant } from './units.ts';

describe('parseDuration', () => {
  const cases: [text: string, ms: number | null][] = [
    ['30s', 30_000],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['1h30m', 5_400_000],
    ['1.5h', 5_400_000],
    ['250ms', 250],
    ['0.5s', 500],
    ['1000us', 1],
    ['1000µs', 1],
    ['2000000ns', 2],
    ['1m30s500ms', 90_500],
    ['0s', 0],
    // malformed
    ['', null],
    ['30', null],
    ['s', null],
    ['1d', null],
    ['-1s', null],
    ['+1s', null],
    ['1 s', null],
    [' 1s', null],
    ['1s ', null],
    ['1.s', null],
    ['.5s', null],
    ['1S', null],
    ['1h-30m', null],
    [`${'1'.repeat(64)}s`, null],
  ];
  for (const [text, ms] of cases) {
    it(`${JSON.stringify(text.length > 20 ? `${text.slice(0, 20)}…` : text)} → ${ms}`, () => {
      assert.equal(parseDuration(text), ms);
    });
  }

  it('rejects text longer than 64 characters even when well-formed', () => {
    const long = '1s'.repeat(33);
    assert.equal(long.length, 66);
    assert.equal(parseDuration(long), null);
    assert.equal(parseDuration('1s'.repeat(32)), 32_000);
  });

  it('is not confused by a previous call (the sticky regex is reset)', () => {
    assert.equal(parseDuration('1h30m'), 5_400_000);
    assert.equal(parseDuration('x1s'), null);
    assert.equal(parseDuration('2s'), 2000);
  });
});

describe('parseByteQuantity', () => {
  const cases: [value: number | string, bytes: number | null][] = [
    [0, 0],
    [1000, 1000],
    ['1000', 1000],
    ['64Ki', 65_536],
    ['1Mi', 1_048_576],
    ['2Gi', 2 * 2 ** 30],
    ['1Ti', 2 ** 40],
    ['1Pi', 2 ** 50],
    ['1k', 1000],
    ['1M', 1_000_000],
    ['3G', 3e9],
    ['1T', 1e12],
    ['2P', 2e15],
    ['1e3', 1000],
    ['1E3', 1000],
    ['1e+3', 1000],
    ['0.5Ki', 512],
    ['.5Ki', 512],
    ['5.', 5],
    // fractions round up, as the API server does
    ['1.5', 2],
    ['1e-3', 1],
    ['0.0001k', 1],
    // malformed or out of range
    [-1, null],
    [1.5, null],
    [Number.MAX_SAFE_INTEGER + 1, null],
    ['-1', null],
    ['1MB', null],
    ['1mi', null],
    ['100m', null],
    ['1Ki1', null],
    ['', null],
    ['Ki', null],
    ['1e', null],
    ['8Ei', null],
    ['10P', 1e16 > Number.MAX_SAFE_INTEGER ? null : 1e16],
  ];
  for (const [value, bytes] of cases) {
    it(`${JSON.stringify(value)} → ${bytes}`, () => {
      assert.equal(parseByteQuantity(value), bytes);
    });
  }

  it('treats the E suffix as exa (10^18), not as an exponent without digits', () => {
    assert.equal(parseByteQuantity('0.001E'), 1e15);
    assert.equal(parseByteQuantity('1E'), null);
  });
});

describe('parseInstant', () => {
  const cases: [text: string, ms: number | null][] = [
    ['2026-06-01', Date.UTC(2026, 5, 1)],
    ['2024-02-29', Date.UTC(2024, 1, 29)],
    ['2026-06-01T00:00:00Z', Date.UTC(2026, 5, 1)],
    ['2026-06-01t12:30:00z', Date.UTC(2026, 5, 1, 12, 30)],
    ['2026-06-01T12:00:00+02:00', Date.UTC(2026, 5, 1, 10)],
    ['2026-06-01T12:00:00-01:30', Date.UTC(2026, 5, 1, 13, 30)],
    ['2026-06-01T00:00:00.250Z', Date.UTC(2026, 5, 1, 0, 0, 0, 250)],
    // malformed
    ['2026-02-30', null],
    ['2025-02-29', null],
    ['2026-13-01', null],
    ['2026-00-10', null],
    ['2026-6-1', null],
    ['20260601', null],
    ['2026-06-01T00:00:00', null],
    ['2026-06-01 00:00:00Z', null],
    ['2026-06-01T99:00:00Z', null],
    ['June 1, 2026', null],
    ['', null],
  ];
  for (const [text, ms] of cases) {
    it(`${JSON.stringify(text)} → ${ms}`, () => {
      assert.equal(parseInstant(text), ms);
    });
  }
});
