import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Metrics, otelNameOf } from './metrics.ts';

/** The sample lines of a render (comments dropped). */
const samples = (text: string) => text.split('\n').filter((l) => l !== '' && !l.startsWith('#'));

describe('Metrics: counters and gauges', () => {
  test('a counter starts at 0, adds 1 by default, or `by`', () => {
    const m = new Metrics();
    assert.equal(m.get('c'), 0);
    m.inc('c');
    m.inc('c');
    m.inc('c', {}, 5);
    assert.equal(m.get('c'), 7);
  });

  test('label sets are series of their own, whatever the key order', () => {
    const m = new Metrics();
    m.inc('req', { route: 'a', code: 'OK' });
    m.inc('req', { code: 'OK', route: 'a' });
    m.inc('req', { route: 'b', code: 'OK' });
    m.inc('req');
    assert.equal(m.get('req', { code: 'OK', route: 'a' }), 2);
    assert.equal(m.get('req', { route: 'a', code: 'OK' }), 2);
    assert.equal(m.get('req', { route: 'b', code: 'OK' }), 1);
    assert.equal(m.get('req'), 1);
    assert.equal(m.get('req', { route: 'a' }), 0, 'a subset of the labels is another series');
    assert.equal(samples(m.render()).length, 3);
  });

  test('the caller may reuse its labels object: the series keeps a copy', () => {
    const m = new Metrics();
    const labels: Record<string, string> = { route: 'a' };
    m.inc('c', labels);
    labels.route = 'b';
    assert.equal(m.get('c', { route: 'a' }), 1);
    assert.match(m.render(), /^c\{route="a"\} 1$/m);
  });

  test('a gauge is set, not added; setting again replaces the value', () => {
    const m = new Metrics();
    m.set('g', { v: '1' }, 3);
    m.set('g', { v: '1' }, 1);
    m.set('g', { v: '2' }, 0);
    assert.equal(m.get('g', { v: '1' }), 1);
    assert.equal(m.get('g', { v: '2' }), 0);
    assert.match(m.render(), /# TYPE g gauge/);
  });

  test('reset drops every series of a metric but keeps it declared', () => {
    const m = new Metrics();
    m.set('info', { version: 'a' }, 1, 'Loaded bundle');
    m.reset('info');
    m.set('info', { version: 'b' }, 1);
    assert.equal(m.get('info', { version: 'a' }), 0);
    assert.equal(m.get('info', { version: 'b' }), 1);
    assert.equal(m.render(), '# HELP info Loaded bundle\n# TYPE info gauge\ninfo{version="b"} 1\n');
    m.reset('never-seen');
  });

  test('label keys cannot collide through commas or equals signs in values', () => {
    const m = new Metrics();
    m.inc('m', { a: 'x,b=y' });
    m.inc('m', { a: 'x', b: 'y' });
    assert.equal(m.get('m', { a: 'x,b=y' }), 1);
    assert.equal(m.get('m', { a: 'x', b: 'y' }), 1);
    assert.equal(samples(m.render()).length, 2);
  });
});

describe('Metrics.render: Prometheus text format 0.0.4', () => {
  test('HELP and TYPE lines, families sorted by name, one sample per series, trailing newline', () => {
    const m = new Metrics();
    m.inc('tollgate_requests_total', { route: 'get', decision: 'allow' }, 2, 'Requests by decision');
    m.set('tollgate_a_gauge', {}, 1.5, 'A gauge');
    assert.equal(
      m.render(),
      [
        '# HELP tollgate_a_gauge A gauge',
        '# TYPE tollgate_a_gauge gauge',
        'tollgate_a_gauge 1.5',
        '# HELP tollgate_requests_total Requests by decision',
        '# TYPE tollgate_requests_total counter',
        'tollgate_requests_total{route="get",decision="allow"} 2',
        '',
      ].join('\n'),
    );
  });

  test('without a help text, HELP repeats the name; the first help given is kept', () => {
    const m = new Metrics();
    m.inc('c');
    m.inc('c', {}, 1, 'later help');
    assert.match(m.render(), /^# HELP c c$/m);
  });

  test('an empty registry renders a single newline', () => {
    assert.equal(new Metrics().render(), '\n');
  });

  test('declare lists a metric (HELP and TYPE) before its first event', () => {
    const m = new Metrics();
    m.declare('tollgate_policy_reloads_total', 'counter', 'Policy reloads');
    assert.match(m.render(), /^# HELP tollgate_policy_reloads_total Policy reloads$/m);
    assert.match(m.render(), /^# TYPE tollgate_policy_reloads_total counter$/m);
  });

  test('a declared label-less metric shows a 0 sample, as declare() documents', () => {
    const m = new Metrics();
    m.declare('d', 'counter', 'declared');
    assert.match(m.render(), /^d 0$/m);
  });

  const escapes: [what: string, value: string, rendered: string][] = [
    ['a double quote', 'say "hi"', 'say \\"hi\\"'],
    ['a backslash', 'C:\\path', 'C:\\\\path'],
    ['a newline', 'two\nlines', 'two\\nlines'],
    ['all of them, backslash first', '\\"\n', '\\\\\\"\\n'],
    ['nothing to escape', 'plain value', 'plain value'],
  ];
  for (const [what, value, rendered] of escapes) {
    test(`label values escape ${what}`, () => {
      const m = new Metrics();
      m.inc('c', { v: value });
      assert.equal(samples(m.render())[0], `c{v="${rendered}"} 1`);
      assert.equal(m.render().split('\n').length, 4, 'HELP, TYPE, one sample, final newline');
    });
  }

  test('HELP text escapes backslash and newline', () => {
    const m = new Metrics();
    m.inc('h', {}, 1, 'line1\nline2 back\\slash');
    assert.match(m.render(), /^# HELP h line1\\nline2 back\\\\slash$/m);
  });
});

describe('Metrics: histograms, computed gauges, OTLP names', () => {
  test('a histogram counts each value in its first bucket whose bound is >= it, renders cumulative buckets', () => {
    const m = new Metrics();
    const h = m.histogram('d_seconds', { 'http.route': '/a/{id}' }, [0.1, 1]);
    for (const v of [0.05, 0.1, 0.5, 3]) h.observe(v);
    assert.deepEqual(h.counts, [2, 1, 1]);
    assert.equal(h.count, 4);
    assert.equal(m.get('d_seconds', { 'http.route': '/a/{id}' }), 4);
    assert.deepEqual(samples(m.render()), [
      'd_seconds_bucket{http_route="/a/{id}",le="0.1"} 2',
      'd_seconds_bucket{http_route="/a/{id}",le="1"} 3',
      'd_seconds_bucket{http_route="/a/{id}",le="+Inf"} 4',
      'd_seconds_sum{http_route="/a/{id}"} 3.65',
      'd_seconds_count{http_route="/a/{id}"} 4',
    ]);
    assert.match(m.render(), /^# TYPE d_seconds histogram$/m);
  });

  test('a histogram series is resolved once; a family keeps the bounds it was first given', () => {
    const m = new Metrics();
    const a = m.histogram('h', { k: 'a' }, [1, 2]);
    assert.equal(m.histogram('h', { k: 'a' }, [5]), a);
    assert.deepEqual(m.histogram('h', { k: 'b' }, [5]).bounds, [1, 2]);
  });

  test('a computed gauge is read at each render and each families() call', () => {
    const m = new Metrics();
    let age = 1;
    m.gauge('age_seconds', {}, () => age, 'Age');
    assert.match(m.render(), /^age_seconds 1$/m);
    age = 2.5;
    assert.match(m.render(), /^age_seconds 2.5$/m);
    assert.equal(m.get('age_seconds'), 2.5);
    m.gauge('nan', {}, () => Number.NaN);
    assert.match(m.render(), /^nan NaN$/m);
    m.reset('age_seconds');
    assert.doesNotMatch(m.render(), /^age_seconds /m);
  });

  test('families(): type, help, unit and OTLP name of every family, series split by kind', () => {
    const m = new Metrics();
    m.inc('tollgate_authn_failures_total', { reason: 'expired' }, 1, 'Auth failures');
    m.histogram('http_server_request_duration_seconds', {}, [1], {
      otelName: 'http.server.request.duration',
    });
    m.set('tollgate_ratelimit_store_up', {}, 1);
    const views = m.families();
    assert.deepEqual(
      views.map((f) => [f.name, f.type, f.otelName, f.unit, f.scalars.length, f.histograms.length]),
      [
        ['http_server_request_duration_seconds', 'histogram', 'http.server.request.duration', 's', 0, 1],
        ['tollgate_authn_failures_total', 'counter', 'tollgate.authn.failures', '', 1, 0],
        ['tollgate_ratelimit_store_up', 'gauge', 'tollgate.ratelimit.store.up', '', 1, 0],
      ],
    );
  });

  const names: [prometheus: string, otel: string][] = [
    ['tollgate_requests_total', 'tollgate.requests'],
    ['tollgate_policy_bundle_age_seconds', 'tollgate.policy.bundle.age'],
    ['tollgate_body_bytes_total', 'tollgate.body'],
    ['tollgate_operator_connected_sidecars', 'tollgate.operator.connected.sidecars'],
  ];
  for (const [prometheus, otel] of names) {
    test(`otelNameOf(${prometheus}) = ${otel}`, () => assert.equal(otelNameOf(prometheus), otel));
  }
});
