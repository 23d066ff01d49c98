import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isJsonMediaType, mediaTypeMatches, mediaTypeOf } from './media-type.ts';

describe('mediaTypeOf', () => {
  test('lowercase, parameters dropped', () => {
    assert.equal(mediaTypeOf('application/json'), 'application/json');
    assert.equal(mediaTypeOf('Application/JSON; charset=utf-8'), 'application/json');
    assert.equal(mediaTypeOf('  text/plain  ;format=flowed'), 'text/plain');
    assert.equal(mediaTypeOf('application/vnd.api+json'), 'application/vnd.api+json');
  });

  test('absent or malformed → null', () => {
    for (const v of [undefined, '', 'json', '/json', 'application/', 'a b/c', 'text/plain/x', ';charset=x']) {
      assert.equal(mediaTypeOf(v), null, String(v));
    }
  });
});

describe('mediaTypeMatches', () => {
  test('exact types, type/* and */* ranges', () => {
    assert.equal(mediaTypeMatches('application/json', ['application/json']), true);
    assert.equal(mediaTypeMatches('text/csv', ['application/json', 'text/*']), true);
    assert.equal(mediaTypeMatches('image/png', ['*/*']), true);
    assert.equal(mediaTypeMatches('text/plain', ['application/json']), false);
    assert.equal(mediaTypeMatches('application/json', ['text/*']), false);
    assert.equal(mediaTypeMatches('application/jsonx', ['application/json']), false);
    assert.equal(mediaTypeMatches('application/json', []), false);
  });
});

test('isJsonMediaType: application/json and +json suffixes only', () => {
  assert.equal(isJsonMediaType('application/json'), true);
  assert.equal(isJsonMediaType('application/merge-patch+json'), true);
  assert.equal(isJsonMediaType('text/json'), false);
  assert.equal(isJsonMediaType('application/x-www-form-urlencoded'), false);
});
