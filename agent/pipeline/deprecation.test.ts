import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { CompiledRoute } from '../../policy/compile/bundle.ts';
import { deprecationHeaders } from './deprecation.ts';

type Deprecation = NonNullable<CompiledRoute['deprecation']>;

function dep(overrides: Partial<Deprecation> = {}): Deprecation {
  return {
    since: '2026-06-01',
    sinceMs: Date.UTC(2026, 5, 1),
    sunset: null,
    sunsetMs: null,
    link: null,
    ...overrides,
  };
}

/** RFC 9110 §5.6.7 IMF-fixdate. */
const IMF_FIXDATE =
  /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT$/;

describe('deprecationHeaders', () => {
  const cases: [what: string, d: Deprecation, expected: Record<string, string>][] = [
    ['only since: Deprecation as an RFC 9745 date (@ unix seconds)', dep(), { deprecation: '@1780272000' }],
    [
      'a sub-second since is truncated to whole seconds',
      dep({ since: '2026-06-01T00:00:00.900Z', sinceMs: Date.UTC(2026, 5, 1) + 900 }),
      { deprecation: '@1780272000' },
    ],
    [
      'sunset as an RFC 8594 HTTP-date',
      dep({ sunset: '2027-01-01', sunsetMs: Date.UTC(2027, 0, 1) }),
      { deprecation: '@1780272000', sunset: 'Fri, 01 Jan 2027 00:00:00 GMT' },
    ],
    [
      'link with rel="deprecation"',
      dep({ link: 'https://docs.example.com/migrate-v1' }),
      { deprecation: '@1780272000', link: '<https://docs.example.com/migrate-v1>; rel="deprecation"' },
    ],
    [
      'a link with characters that would break the header is made safe (CR/LF dropped as URL parsing does)',
      dep({ link: 'https://docs.example.com/a b>c\r\nx: y' }),
      {
        deprecation: '@1780272000',
        link: '<https://docs.example.com/a%20b%3Ecx:%20y>; rel="deprecation"',
      },
    ],
    [
      'non-ASCII in a link is UTF-8 percent-encoded',
      dep({ link: 'https://docs.example.com/über' }),
      { deprecation: '@1780272000', link: '<https://docs.example.com/%C3%BCber>; rel="deprecation"' },
    ],
  ];
  for (const [what, d, expected] of cases) {
    test(what, () => {
      assert.deepEqual(deprecationHeaders(d), expected);
    });
  }

  test('Sunset is an IMF-fixdate for any instant (two-digit day, GMT)', () => {
    for (const ms of [
      Date.UTC(2027, 0, 1),
      Date.UTC(2030, 1, 3, 4, 5, 6),
      Date.UTC(2026, 11, 31, 23, 59, 59),
    ]) {
      const { sunset } = deprecationHeaders(dep({ sunset: 'x', sunsetMs: ms }));
      assert.match(sunset ?? '', IMF_FIXDATE);
      assert.equal(Date.parse(sunset ?? ''), ms);
    }
  });

  test('an already percent-encoded link is not encoded twice', () => {
    assert.equal(
      deprecationHeaders(dep({ link: 'https://x.example/a%20b?q=%2F' })).link,
      '<https://x.example/a%20b?q=%2F>; rel="deprecation"',
    );
  });
});
