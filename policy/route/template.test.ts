import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type PathTemplate, parseTemplate, type Segment, templatesConflict } from './template.ts';

const lit = (value: string): Segment => ({ kind: 'literal', value });
const param = (name: string): Segment => ({ kind: 'param', name });
const rest: Segment = { kind: 'rest' };

function parsed(source: string): PathTemplate {
  const result = parseTemplate(source);
  assert.ok(result.ok, `expected ${source} to parse: ${result.ok ? '' : result.message}`);
  return result.template;
}

describe('parseTemplate: valid templates', () => {
  const cases: [source: string, segments: Segment[], shape: string][] = [
    ['/', [lit('')], '/'],
    ['/healthz', [lit('healthz')], '/healthz'],
    ['/a/', [lit('a'), lit('')], '/a/'],
    ['/**', [rest], '/**'],
    ['/v0/orders/**', [lit('v0'), lit('orders'), rest], '/v0/orders/**'],
    [
      '/v1/users/{userId}/orders',
      [lit('v1'), lit('users'), param('userId'), lit('orders')],
      '/v1/users/{}/orders',
    ],
    [
      '/v1/users/{userId}/orders/{orderId}',
      [lit('v1'), lit('users'), param('userId'), lit('orders'), param('orderId')],
      '/v1/users/{}/orders/{}',
    ],
    ['/{_x1}/{Y}/**', [param('_x1'), param('Y'), rest], '/{}/{}/**'],
    ['/{a}/', [param('a'), lit('')], '/{}/'],
    ['/{__proto__}', [param('__proto__')], '/{}'],
    ['/Users', [lit('Users')], '/Users'],
    // Percent-encoding is normalized: unreserved decoded, the rest uppercased.
    ['/a%7e%2d%41', [lit('a~-A')], '/a~-A'],
    ['/caf%c3%a9', [lit('caf%C3%A9')], '/caf%C3%A9'],
    ['/user@x:1', [lit('user@x:1')], '/user@x:1'],
    ["/!$&'()+,=", [lit("!$&'()+,=")], "/!$&'()+,="],
    ['/...', [lit('...')], '/...'],
    ['/.well-known/jwks.json', [lit('.well-known'), lit('jwks.json')], '/.well-known/jwks.json'],
  ];
  for (const [source, segments, shape] of cases) {
    it(source, () => {
      assert.deepEqual(parseTemplate(source), { ok: true, template: { source, segments, shape } });
    });
  }
});

describe('parseTemplate: invalid templates', () => {
  const cases: [source: string, message: string][] = [
    ['', 'template must start with "/", got ""'],
    ['users', 'template must start with "/", got "users"'],
    ['/a?b=1', 'template must not contain a query ("?")'],
    ['/a#frag', 'template must not contain a fragment ("#")'],
    ['//', 'empty segment ("//") is not allowed'],
    ['/a//b', 'empty segment ("//") is not allowed'],
    ['/a//', 'empty segment ("//") is not allowed'],
    ['/**/a', '"**" is only allowed as the last segment'],
    ['/**/', '"**" is only allowed as the last segment'],
    ['/a/*', '"*" is only allowed in a final "/**", got segment "*"'],
    ['/a/b**', '"*" is only allowed in a final "/**", got segment "b**"'],
    ['/a/***', '"*" is only allowed in a final "/**", got segment "***"'],
    ['/{id}/{id}', 'parameter "id" appears twice'],
    ['/{id}/x/{id}/**', 'parameter "id" appears twice'],
    ['/a{id}', 'parameter must be a whole segment like "{name}", got "a{id}"'],
    ['/{id}.json', 'parameter must be a whole segment like "{name}", got "{id}.json"'],
    ['/{{id}}', 'parameter must be a whole segment like "{name}", got "{{id}}"'],
    ['/{id', 'parameter must be a whole segment like "{name}", got "{id"'],
    ['/id}', 'parameter must be a whole segment like "{name}", got "id}"'],
    ['/{}', 'invalid parameter name "": use letters, digits and "_", not starting with a digit'],
    ['/{1x}', 'invalid parameter name "1x": use letters, digits and "_", not starting with a digit'],
    ['/{a-b}', 'invalid parameter name "a-b": use letters, digits and "_", not starting with a digit'],
    ['/{ a }', 'invalid parameter name " a ": use letters, digits and "_", not starting with a digit'],
    ['/.', 'dot segment "." is not allowed'],
    ['/a/../b', 'dot segment ".." is not allowed'],
    ['/%2e%2E', 'dot segment "%2e%2E" is not allowed'],
    ['/a%2Fb', 'literal segment "a%2Fb" must not contain an encoded "/" (%2F)'],
    ['/a%2fb', 'literal segment "a%2fb" must not contain an encoded "/" (%2F)'],
    ['/a%zz', 'invalid percent-encoding in segment "a%zz"'],
    ['/a%4', 'invalid percent-encoding in segment "a%4"'],
    ['/a b', 'literal segment "a b" must not contain a space'],
    ['/a\\b', 'literal segment "a\\\\b" must not contain "\\\\"'],
    ['/a;v=1', 'literal segment "a;v=1" must not contain ";"'],
    ['/a\tb', 'literal segment "a\\tb" must not contain a control character (U+0009)'],
    ['/a\x7f', 'literal segment "a\\u007F" must not contain a control character (U+007F)'],
    ['/a\x85', 'literal segment "a\\u0085" must not contain a control character (U+0085)'],
    ['/café', 'literal segment "café" must not contain "é" (percent-encode it as %C3%A9)'],
    ['/a|b', 'literal segment "a|b" must not contain "|" (percent-encode it as %7C)'],
    ['/a\ud800', 'literal segment "a\\ud800" must not contain an unpaired surrogate'],
  ];
  for (const [source, message] of cases) {
    it(JSON.stringify(source), () => {
      assert.deepEqual(parseTemplate(source), { ok: false, message });
    });
  }
});

describe('templatesConflict', () => {
  const cases: [a: string, b: string, conflict: boolean][] = [
    ['/v1/users/{userId}', '/v1/users/{id}', true],
    ['/{a}/{b}/**', '/{x}/{y}/**', true],
    ['/a%7E', '/a~', true],
    ['/a', '/a', true],
    ['/a', '/a/', false],
    ['/a/{id}', '/a/**', false],
    ['/a/{id}', '/a/id', false],
    ['/a/**', '/a', false],
    ['/A', '/a', false],
    ['/', '/**', false],
  ];
  for (const [a, b, conflict] of cases) {
    it(`${a} vs ${b} → ${conflict}`, () => {
      assert.equal(templatesConflict(parsed(a), parsed(b)), conflict);
      assert.equal(templatesConflict(parsed(b), parsed(a)), conflict);
    });
  }
});
