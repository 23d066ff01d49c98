import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { FieldPath } from '../diagnostics.ts';
import { parseYamlSource, type SourceDocument } from './yaml-source.ts';

const POLICY = `# leading comment
apiVersion: tollgate.dev/v1alpha1
kind: ApiPolicy
metadata:
  name: orders
spec:
  selector:
    matchLabels: {app: orders}
  routes:
    - name: health
      path: /healthz
      public: true
    - name: get-order
      path: /v1/orders/{id}
      allow:
        - jwt: corp
          when: params.id == claims.sub
`;

function only(text: string): SourceDocument {
  const parsed = parseYamlSource(text, 'p.yaml');
  assert.deepEqual(parsed.diagnostics, []);
  const [doc] = parsed.documents;
  assert.ok(doc, 'expected one document');
  return doc;
}

describe('parseYamlSource: values', () => {
  it('returns the plain JS value of each document with its index', () => {
    const doc = only(POLICY);
    assert.equal(doc.index, 0);
    assert.deepEqual(doc.value, {
      apiVersion: 'tollgate.dev/v1alpha1',
      kind: 'ApiPolicy',
      metadata: { name: 'orders' },
      spec: {
        selector: { matchLabels: { app: 'orders' } },
        routes: [
          { name: 'health', path: '/healthz', public: true },
          {
            name: 'get-order',
            path: '/v1/orders/{id}',
            allow: [{ jwt: 'corp', when: 'params.id == claims.sub' }],
          },
        ],
      },
    });
  });

  it('keeps dates as strings (YAML 1.2 core schema) and resolves aliases', () => {
    const doc = only('since: 2026-06-01\na: &x [1, 2]\nb: *x\n');
    assert.deepEqual(doc.value, { since: '2026-06-01', a: [1, 2], b: [1, 2] });
  });

  it('returns no document for comment-only text and null for an empty document', () => {
    assert.deepEqual(parseYamlSource('# nothing here\n'), { documents: [], diagnostics: [] });
    const parsed = parseYamlSource('---\n---\na: 1\n');
    assert.deepEqual(parsed.diagnostics, []);
    assert.deepEqual(
      parsed.documents.map((d) => [d.index, d.value]),
      [
        [0, null],
        [1, { a: 1 }],
      ],
    );
  });
});

describe('parseYamlSource: locate', () => {
  const doc = only(POLICY);
  const cases: [name: string, path: FieldPath, line: number, col: number][] = [
    ['the root', [], 2, 1],
    ['a top-level key', ['kind'], 3, 1],
    ['a nested key', ['metadata', 'name'], 5, 3],
    ['a key inside a flow map', ['spec', 'selector', 'matchLabels', 'app'], 8, 19],
    ['a sequence item (its first key)', ['spec', 'routes', 1], 13, 7],
    ['a field deep in the document', ['spec', 'routes', 1, 'allow', 0, 'when'], 17, 11],
    ['a missing field: its parent', ['spec', 'routes', 0, 'allow'], 10, 7],
    ['a missing nested field: the nearest existing ancestor', ['spec', 'mtls', 'mode'], 6, 1],
    ['an index past the end: the sequence key', ['spec', 'routes', 5, 'name'], 9, 3],
    ['a number on a map: the map key', ['spec', 0], 6, 1],
    ['a name on a sequence: the sequence key', ['spec', 'routes', 'name'], 9, 3],
    ['a path through a scalar: the scalar key', ['metadata', 'name', 'x'], 5, 3],
  ];
  for (const [name, path, line, col] of cases) {
    it(`${name} → ${line}:${col}`, () => {
      assert.deepEqual(doc.locate(path), { line, col });
    });
  }
});

describe('parseYamlSource: multi-document files', () => {
  const text = `apiVersion: tollgate.dev/v1alpha1
kind: ApiPolicy
---
# second
apiVersion: tollgate.dev/v1alpha1
kind: ApiPolicy
spec:
  port: 8080
`;

  it('indexes documents in file order with positions in the whole file', () => {
    const parsed = parseYamlSource(text, 'multi.yaml');
    assert.deepEqual(parsed.diagnostics, []);
    assert.deepEqual(
      parsed.documents.map((d) => d.index),
      [0, 1],
    );
    const second = parsed.documents[1];
    assert.ok(second);
    assert.deepEqual(second.locate(['spec', 'port']), { line: 8, col: 3 });
    assert.deepEqual(second.locate([]), { line: 5, col: 1 });
  });

  it('reports a syntax error in one document and still returns the others', () => {
    const parsed = parseYamlSource('a: 1\n---\nb: [1\nc: 2\n---\nd: 4\n', 'm.yaml');
    assert.deepEqual(
      parsed.documents.map((d) => [d.index, d.value]),
      [
        [0, { a: 1 }],
        [2, { d: 4 }],
      ],
    );
    assert.ok(parsed.diagnostics.length > 0);
    for (const d of parsed.diagnostics) {
      assert.equal(d.severity, 'error');
      assert.equal(d.file, 'm.yaml');
      assert.deepEqual(d.path, []);
      assert.match(d.message, /^YAML: /);
      assert.ok((d.line ?? 0) >= 3 && (d.line ?? 0) <= 5, `line ${d.line} is in the second document`);
    }
  });
});

describe('parseYamlSource: errors', () => {
  it('reports a syntax error with its position and file', () => {
    const parsed = parseYamlSource('spec:\n  routes: [a, b\n  port: 1\n', 'bad.yaml');
    assert.deepEqual(parsed.documents, []);
    const [first] = parsed.diagnostics;
    assert.ok(first);
    assert.equal(first.severity, 'error');
    assert.equal(first.file, 'bad.yaml');
    assert.match(first.message, /^YAML: .*\]/);
    assert.ok(!first.message.includes('\n'), 'only the first line of the parser message');
    assert.equal(typeof first.line, 'number');
    assert.equal(typeof first.col, 'number');
    assert.ok((first.line ?? 0) >= 2);
  });

  it('reports a duplicate key at the second occurrence', () => {
    const parsed = parseYamlSource('spec:\n  port: 1\n  port: 2\n', 'dup.yaml');
    assert.deepEqual(parsed.documents, []);
    assert.deepEqual(parsed.diagnostics, [
      {
        severity: 'error',
        path: [],
        message: 'YAML: Map keys must be unique',
        file: 'dup.yaml',
        line: 3,
        col: 3,
      },
    ]);
  });

  it('leaves out the file when none is given', () => {
    const parsed = parseYamlSource('a: 1\na: 2\n');
    const [first] = parsed.diagnostics;
    assert.ok(first);
    assert.equal('file' in first, false);
    assert.equal(first.line, 2);
  });

  it('refuses an alias bomb instead of expanding it', () => {
    const lines = ['a0: &a0 [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 8; i++)
      lines.push(
        `a${i}: &a${i} [${Array(10)
          .fill(`*a${i - 1}`)
          .join(', ')}]`,
      );
    const parsed = parseYamlSource(lines.join('\n'), 'bomb.yaml');
    assert.deepEqual(parsed.documents, []);
    assert.equal(parsed.diagnostics.length, 1);
    const [d] = parsed.diagnostics;
    assert.ok(d);
    assert.match(d.message, /^YAML: .*alias/i);
    assert.equal(d.file, 'bomb.yaml');
    assert.deepEqual([d.line, d.col], [1, 1]);
  });

  it('reports an alias bomb without a file as well', () => {
    const lines = ['a0: &a0 [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 6; i++)
      lines.push(
        `a${i}: &a${i} [${Array(10)
          .fill(`*a${i - 1}`)
          .join(', ')}]`,
      );
    const [d] = parseYamlSource(lines.join('\n')).diagnostics;
    assert.ok(d);
    assert.equal('file' in d, false);
  });
});
