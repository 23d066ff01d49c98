import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type CompiledWhen,
  compileWhen,
  WHEN_VARIABLES,
  type WhenContext,
  type WhenInput,
  whenContext,
} from './when.ts';

function compiled(source: string): CompiledWhen {
  const r = compileWhen(source);
  assert.ok(r.ok, `expected ${source} to compile: ${r.ok ? '' : r.message}`);
  return r.when;
}

const ctx: WhenContext = {
  request: {
    method: 'POST',
    path: '/v1/users/alice/orders',
    host: 'orders.shop.svc',
    headers: { 'x-tenant': 'acme', 'content-type': 'application/json' },
    query: { dryRun: 'true' },
  },
  params: { userId: 'alice' },
  claims: { sub: 'alice', roles: ['admin', 'ops'], org: { id: 'o-1', tier: 3 }, email_verified: true },
  peer: { id: 'spiffe://cluster.local/ns/shop/sa/billing', namespace: 'shop', serviceAccount: 'billing' },
  source: { ip: '10.1.2.3' },
};

const anonymous: WhenContext = { ...ctx, claims: {}, peer: null };

describe('compileWhen: evaluation', () => {
  const cases: [source: string, context: WhenContext, value: boolean][] = [
    ['params.userId == claims.sub', ctx, true],
    ['params.userId == claims.sub', { ...ctx, params: { userId: 'bob' } }, false],
    ['request.method == "POST" && request.path.startsWith("/v1/")', ctx, true],
    ['request.host == "orders.shop.svc"', ctx, true],
    ['request.headers["x-tenant"] == "acme"', ctx, true],
    ['"x-missing" in request.headers', ctx, false],
    ['request.query.dryRun == "true"', ctx, true],
    ['"admin" in claims.roles', ctx, true],
    ['claims.org.id == "o-1" && claims.org.tier >= 3', ctx, true],
    ['claims.email_verified', ctx, true],
    ['has(claims.sub)', anonymous, false],
    ['size(claims) == 0', anonymous, true],
    ['peer != null && peer.namespace == "shop" && peer.serviceAccount == "billing"', ctx, true],
    ['peer == null', anonymous, true],
    ['peer.id.endsWith("/sa/billing")', ctx, true],
    ['source.ip.startsWith("10.")', ctx, true],
    ['source.ip == "192.168.0.1"', ctx, false],
    ['has(params.userId) && !has(params.orderId)', ctx, true],
  ];
  for (const [source, context, value] of cases) {
    it(`${source} → ${value}`, () => {
      assert.deepEqual(compiled(source).evaluate(context), { ok: true, value });
    });
  }
});

describe('compileWhen: runtime errors and non-bool results deny', () => {
  const cases: [source: string, context: WhenContext, reason: RegExp][] = [
    ['claims.sub == "alice"', anonymous, /^No such key: sub$/],
    ['peer.namespace == "shop"', anonymous, /namespace/],
    ['params.orderId == "1"', ctx, /orderId/],
    ['claims.org', ctx, /^evaluated to object, not bool$/],
    ['claims.sub', ctx, /^evaluated to string, not bool$/],
    ['claims.org.tier', ctx, /^evaluated to (number|bigint), not bool$/],
  ];
  for (const [source, context, reason] of cases) {
    it(source, () => {
      const r = compiled(source).evaluate(context);
      assert.equal(r.ok, false);
      assert.match(r.ok ? '' : r.reason, reason);
    });
  }
});

describe('compileWhen: compile errors', () => {
  const cases: [source: string, message: RegExp][] = [
    ['claims.sub ==', /^invalid CEL: /],
    ['a b', /^invalid CEL: /],
    ['user.id == "x"', /^invalid CEL: Unknown variable: user$/],
    ['1 + 1', /^CEL expression must be of type bool, not int$/],
    ['"yes"', /^CEL expression must be of type bool, not string$/],
    ['params.userId', /^CEL expression must be of type bool, not string$/],
    ['params.userId == 1', /^invalid CEL: /],
    [`${'true && '.repeat(300)}true`, /^invalid CEL: /],
  ];
  for (const [source, message] of cases) {
    it(source.length > 40 ? `${source.slice(0, 40)}…` : source, () => {
      const r = compileWhen(source);
      assert.equal(r.ok, false);
      assert.match(r.ok ? '' : r.message, message);
      assert.ok(!(r.ok ? '' : r.message).includes('\n'), 'only the first line');
    });
  }
});

describe('compileWhen: paramRefs', () => {
  const cases: [source: string, refs: string[]][] = [
    ['true', []],
    ['params.userId == claims.sub', ['userId']],
    ['params.a == params.b || params.a == "x"', ['a', 'b']],
    ['has(params.orderId)', ['orderId']],
    ['[params.x, params.y].exists(v, v == claims.sub)', ['x', 'y']],
    ['{"k": params.m}["k"] == "v"', ['m']],
    ['claims.params == "x" && request.headers.params == "y"', []],
  ];
  for (const [source, refs] of cases) {
    it(`${source} → [${refs.join(', ')}]`, () => {
      const when = compiled(source);
      assert.deepEqual([...when.paramRefs].sort(), refs);
      assert.equal(when.source, source);
    });
  }
});

describe('WHEN_VARIABLES', () => {
  it('lists what the contract gives a when expression', () => {
    assert.deepEqual([...WHEN_VARIABLES], ['request', 'params', 'claims', 'peer', 'source']);
    const uses = [
      'request.method != ""',
      'size(params) >= 0',
      'size(claims) >= 0',
      'peer == null',
      'source.ip != ""',
    ];
    uses.forEach((source, i) => {
      assert.ok(source.includes(WHEN_VARIABLES[i] ?? '?'));
      assert.ok(compileWhen(source).ok, source);
    });
  });
});

describe('whenContext', () => {
  const input: WhenInput = {
    method: 'GET',
    path: '/v1/x',
    headers: { host: 'api.local', 'x-a': '1, 2' },
    host: 'api.local',
    query: 'a=1&b=x%20y&a=2&c',
    params: { id: '7' },
    claims: { sub: 'alice' },
    peer: null,
    ip: '10.0.0.1',
  };

  it('builds the variables a when expression sees', () => {
    assert.deepEqual(whenContext(input), {
      request: {
        method: 'GET',
        path: '/v1/x',
        host: 'api.local',
        headers: { host: 'api.local', 'x-a': '1, 2' },
        query: { a: '1', b: 'x y', c: '' },
      },
      params: { id: '7' },
      claims: { sub: 'alice' },
      peer: null,
      source: { ip: '10.0.0.1' },
    });
  });

  it('without a query, host or token: empty values, claims {}', () => {
    const ctx = whenContext({ ...input, headers: {}, host: '', query: null, claims: null });
    assert.deepEqual([ctx.request.query, ctx.request.host, ctx.claims], [{}, '', {}]);
  });

  it('computes headers only when read', () => {
    let calls = 0;
    const ctx = whenContext({
      ...input,
      headers: () => {
        calls++;
        return { 'x-a': '1' };
      },
    });
    assert.equal(calls, 0);
    assert.deepEqual(ctx.request.headers, { 'x-a': '1' });
    assert.equal(ctx.request.headers, ctx.request.headers);
    assert.equal(calls, 1);
  });

  it('copies headers and params, so an expression cannot reach the caller’s objects', () => {
    const ctx = whenContext(input);
    assert.notEqual(ctx.request.headers, input.headers);
    assert.notEqual(ctx.params, input.params);
  });
});
