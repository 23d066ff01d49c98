import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type Diagnostic,
  error,
  type FieldPath,
  formatDiagnostic,
  formatPath,
  hasErrors,
  warning,
} from './diagnostics.ts';

describe('formatPath', () => {
  const cases: [path: FieldPath, text: string][] = [
    [[], '(root)'],
    [['spec'], 'spec'],
    [['spec', 'routes', 1, 'when'], 'spec.routes[1].when'],
    [['spec', 'routes', 0, 'allow', 2, 'claims', 'roles'], 'spec.routes[0].allow[2].claims.roles'],
    [['spec', 'rateLimits', 0, 'key', 'header'], 'spec.rateLimits[0].key.header'],
    [['metadata', 'x-kubernetes-thing'], 'metadata.x-kubernetes-thing'],
    [['_private'], '_private'],
    // keys that are not identifiers are quoted
    [['spec', 'allow', 0, 'claims', 'https://x.io/roles'], 'spec.allow[0].claims["https://x.io/roles"]'],
    [['a', 'user.name'], 'a["user.name"]'],
    [['a', '0abc'], 'a["0abc"]'],
    [['a', ''], 'a[""]'],
    [['a', 'with "quote"'], 'a["with \\"quote\\""]'],
    [[3], '[3]'],
    [[0, 'x'], '[0].x'],
    [['has space'], '["has space"]'],
  ];
  for (const [path, text] of cases) {
    it(`${JSON.stringify(path)} → ${text}`, () => {
      assert.equal(formatPath(path), text);
    });
  }
});

describe('formatDiagnostic', () => {
  const cases: [name: string, d: Diagnostic, text: string][] = [
    ['error without a file', error(['spec', 'port'], 'must be >= 1'), 'spec.port: must be >= 1'],
    ['warning without a file', warning(['spec', 'routes', 0], 'is odd'), 'spec.routes[0]: warning: is odd'],
    [
      'error with file and position',
      { ...error(['spec', 'routes', 1, 'when'], 'invalid CEL'), file: 'p.yaml', line: 12, col: 9 },
      'p.yaml:12:9: spec.routes[1].when: invalid CEL',
    ],
    [
      'warning with file and position',
      { ...warning(['spec'], 'w'), file: 'p.yaml', line: 3, col: 1 },
      'p.yaml:3:1: spec: warning: w',
    ],
    [
      'file without a position defaults to 1:1',
      { ...error([], 'YAML: bad'), file: 'x.yaml' },
      'x.yaml:1:1: (root): YAML: bad',
    ],
    ['a position without a file is not printed', { ...error(['spec'], 'm'), line: 4, col: 2 }, 'spec: m'],
  ];
  for (const [name, d, text] of cases) {
    it(name, () => {
      assert.equal(formatDiagnostic(d), text);
    });
  }
});

describe('error, warning, hasErrors', () => {
  it('builds diagnostics of the right severity', () => {
    assert.deepEqual(error(['a', 1], 'm'), { severity: 'error', path: ['a', 1], message: 'm' });
    assert.deepEqual(warning(['b'], 'w'), { severity: 'warning', path: ['b'], message: 'w' });
  });

  const cases: [name: string, list: Diagnostic[], expected: boolean][] = [
    ['empty', [], false],
    ['only warnings', [warning([], 'a'), warning([], 'b')], false],
    ['one error', [error([], 'a')], true],
    ['warning and error', [warning([], 'a'), error([], 'b')], true],
  ];
  for (const [name, list, expected] of cases) {
    it(`hasErrors: ${name} → ${expected}`, () => {
      assert.equal(hasErrors(list), expected);
    });
  }
});
