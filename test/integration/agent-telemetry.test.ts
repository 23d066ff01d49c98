/**
 * Telemetry of the real `tollgate agent` process: OTLP export to a real
 * receiver (test/support/otlp-receiver.ts, decoding the protobuf with the
 * official proto definitions) over http/protobuf and gRPC — the spans,
 * metrics and log records of an allowed and a denied request with their
 * attributes, and the W3C `traceparent` reaching the app — the JSON access
 * and security logs, and /metrics parsed by a Prometheus text parser.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import parsePrometheus from 'parse-prometheus-text-format';
import { eventually, send, startAgent, startUpstream } from '../support/agent-process.ts';
import { type JwksServer, startJwksServer } from '../support/jwks-server.ts';
import { type OtlpReceiver, startOtlpReceiver } from '../support/otlp-receiver.ts';

type Agent = Awaited<ReturnType<typeof startAgent>>;

function policyYaml(jwks: JwksServer): string {
  return `apiVersion: tollgate.dev/v1alpha1
kind: ApiPolicy
metadata: {name: orders, namespace: shop}
spec:
  jwt:
    - {name: corp, issuer: ${jwks.issuer}, jwksUri: ${jwks.jwksUri}, audiences: [orders-api]}
  rateLimits:
    - {name: per-ip, key: {ip: {}}, limit: 1, period: 1m}
  routes:
    - name: get-order
      methods: [GET]
      path: /v1/users/{userId}/orders/{orderId}
      allow:
        - {jwt: corp, when: params.userId == claims.sub}
    - name: limited
      methods: [GET]
      path: /v1/limited
      public: true
      rateLimit: per-ip
`;
}

const CLIENT_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const CLIENT_SPAN = '00f067aa0ba902b7';
const traceparent = `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01`;
const ALLOWED = '/v1/users/alice/orders/7';
const DENIED = '/v1/users/bob/orders/7';
const TEMPLATE = '/v1/users/{userId}/orders/{orderId}';

/** The agent's stdout as parsed JSON lines, collected as they come. */
function jsonLines(agent: Agent): Record<string, unknown>[] {
  const lines: Record<string, unknown>[] = [];
  let rest = '';
  agent.proc.stdout?.on('data', (chunk: string) => {
    const parts = (rest + chunk).split('\n');
    rest = parts.pop() ?? '';
    for (const p of parts) if (p.startsWith('{')) lines.push(JSON.parse(p) as Record<string, unknown>);
  });
  return lines;
}

function otelEnv(endpoint: string, protocol: string): Record<string, string> {
  return {
    OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
    OTEL_EXPORTER_OTLP_PROTOCOL: protocol,
    OTEL_SERVICE_NAME: 'orders',
    OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=test,team=shop%2Fcore',
    POD_NAME: 'orders-7d9f8-x2x4q',
    POD_NAMESPACE: 'shop',
    OTEL_BSP_SCHEDULE_DELAY: '50',
    OTEL_BLRP_SCHEDULE_DELAY: '50',
    OTEL_METRIC_EXPORT_INTERVAL: '200',
  };
}

async function stop(agent: Agent | undefined): Promise<void> {
  if (!agent || agent.proc.exitCode !== null) return;
  agent.proc.kill('SIGTERM');
  await new Promise((r) => agent.proc.once('exit', r));
}

describe('agent telemetry over OTLP http/protobuf', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-otel-'));
  const policyFile = join(dir, 'policy.yaml');
  let jwks: JwksServer;
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  let receiver: OtlpReceiver;
  let agent: Agent;
  let stdout: Record<string, unknown>[];
  let alice: string;

  before(async () => {
    jwks = await startJwksServer({ alg: 'ES256' });
    upstream = await startUpstream();
    receiver = await startOtlpReceiver();
    writeFileSync(policyFile, policyYaml(jwks));
    agent = await startAgent(
      policyFile,
      upstream.port,
      ['--log-subject', 'hash', '--access-log-otlp', 'on'],
      {
        env: otelEnv(receiver.httpEndpoint, 'http/protobuf'),
      },
    );
    stdout = jsonLines(agent);
    const exp = Math.floor(Date.now() / 1000) + 600;
    alice = await jwks.sign({ iss: jwks.issuer, aud: 'orders-api', exp, sub: 'alice' });
  });

  after(async () => {
    await stop(agent);
    upstream?.server.close();
    await jwks?.close();
    await receiver?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const headers = (id: string) => ({ authorization: `Bearer ${alice}`, traceparent, 'x-request-id': id });

  test('allowed and denied requests: spans, metrics and log records arrive with their attributes', async () => {
    const seenBefore = upstream.seen.length;
    const ok = await send(agent.port, ALLOWED, headers('req-allowed'));
    assert.equal(ok.status, 200, ok.body);
    const denied = await send(agent.port, DENIED, headers('req-denied'));
    assert.equal(denied.status, 403, denied.body);
    const limited = [await send(agent.port, '/v1/limited'), await send(agent.port, '/v1/limited')];
    assert.deepEqual(
      limited.map((r) => r.status),
      [200, 429],
    );

    // traceparent: the app continues the trace, as a child of the agent's server span.
    const app = upstream.seen.slice(seenBefore)[0];
    const forwarded = String(app?.headers.traceparent);
    assert.match(forwarded, new RegExp(`^00-${CLIENT_TRACE}-[0-9a-f]{16}-01$`));
    const serverSpanId = forwarded.split('-')[2];
    assert.notEqual(serverSpanId, CLIENT_SPAN);

    await eventually(async () => receiver.spans.length >= 4 && receiver.logs.length >= 6, 10_000);
    const span = (id: string) => receiver.spans.find((s) => s.attributes['tollgate.request_id'] === id);
    const allowed = span('req-allowed');
    const refused = span('req-denied');
    assert.ok(allowed && refused, JSON.stringify(receiver.spans));
    assert.equal(allowed.name, `GET ${TEMPLATE}`);
    assert.equal(allowed.kind, 2, 'SERVER');
    assert.equal(allowed.traceId, CLIENT_TRACE);
    assert.equal(allowed.parentSpanId, CLIENT_SPAN);
    assert.equal(allowed.spanId, serverSpanId);
    assert.equal(allowed.scope, 'tollgate-agent');
    assert.deepEqual(
      {
        method: allowed.attributes['http.request.method'],
        route: allowed.attributes['http.route'],
        path: allowed.attributes['url.path'],
        status: allowed.attributes['http.response.status_code'],
        scheme: allowed.attributes['url.scheme'],
        decision: allowed.attributes['tollgate.decision'],
        reason: allowed.attributes['tollgate.reason'],
        policy: allowed.attributes['tollgate.policy'],
        tollgateRoute: allowed.attributes['tollgate.route'],
      },
      {
        method: 'GET',
        route: TEMPLATE,
        path: ALLOWED,
        status: 200,
        scheme: 'http',
        decision: 'allow',
        reason: 'OK',
        policy: 'shop/orders',
        tollgateRoute: 'get-order',
      },
    );
    assert.equal(refused.attributes['http.route'], TEMPLATE, 'the template, never the raw path');
    assert.equal(refused.attributes['http.response.status_code'], 403);
    assert.equal(refused.attributes['tollgate.decision'], 'deny');
    assert.equal(refused.attributes['tollgate.reason'], 'ERR_AUTHZ_DENIED');
    assert.equal(refused.status, 0, 'a 4xx is not a server error');
    const limitedSpan = receiver.spans.find((s) => s.attributes['tollgate.reason'] === 'ERR_RATE_LIMITED');
    assert.equal(limitedSpan?.attributes['tollgate.ratelimit.limit'], 'per-ip');
    assert.deepEqual(
      {
        service: allowed.resource['service.name'],
        pod: allowed.resource['k8s.pod.name'],
        namespace: allowed.resource['k8s.namespace.name'],
        environment: allowed.resource['deployment.environment.name'],
        team: allowed.resource.team,
      },
      {
        service: 'orders',
        pod: 'orders-7d9f8-x2x4q',
        namespace: 'shop',
        environment: 'test',
        team: 'shop/core',
      },
    );

    // Log records: the access line of each request, correlated with its span, and the security events.
    const access = (id: string) =>
      receiver.logs.find((l) => l.eventName === 'tollgate.access' && l.attributes.requestId === id);
    const allowedLog = access('req-allowed');
    const deniedLog = access('req-denied');
    assert.ok(allowedLog && deniedLog, JSON.stringify(receiver.logs));
    assert.equal(allowedLog.traceId, CLIENT_TRACE);
    assert.equal(allowedLog.spanId, serverSpanId);
    assert.deepEqual(
      {
        route: deniedLog.attributes.route,
        decision: deniedLog.attributes.decision,
        reason: deniedLog.attributes.reason,
        status: deniedLog.attributes.status,
        clientKey: deniedLog.attributes.clientKey,
        traceId: deniedLog.attributes.traceId,
      },
      {
        route: 'get-order',
        decision: 'deny',
        reason: 'ERR_AUTHZ_DENIED',
        status: 403,
        clientKey: '127.0.0.1',
        traceId: CLIENT_TRACE,
      },
    );
    assert.equal(typeof allowedLog.attributes.latencyMs, 'number');
    assert.match(String(allowedLog.attributes.sub), /^sha256:[0-9a-f]{16}$/);
    const security = receiver.logs.filter((l) => l.eventName.startsWith('tollgate.security.'));
    assert.deepEqual(security.map((l) => l.eventName).sort(), [
      'tollgate.security.authz_denied',
      'tollgate.security.rate_limited',
    ]);
    const denial = security.find((l) => l.eventName === 'tollgate.security.authz_denied');
    assert.equal(denial?.attributes.requestId, 'req-denied');
    assert.equal(denial?.traceId, CLIENT_TRACE);
    assert.equal(denial?.body, 'request not authorized');
    assert.equal(JSON.stringify(receiver.logs).includes(alice), false, 'never a token');
    assert.equal(JSON.stringify(receiver.logs).includes('"alice"'), false, 'sub only hashed');

    // Metrics: the semantic-convention histogram and our counters, over OTLP. Wait for an export made after
    // the last request (the rate-limited one): an earlier one may hold the denial but not the limit.
    await eventually(
      async () =>
        receiver.points.some(
          (p) => p.metric === 'tollgate.authz.denials' && p.attributes.route === 'get-order',
        ) &&
        receiver.points.some(
          (p) => p.metric === 'tollgate.ratelimit.limited' && p.attributes.limit === 'per-ip',
        ),
      10_000,
    );
    const latest = (metric: string, match: Record<string, string | number>) =>
      receiver.points
        .filter((p) => p.metric === metric && Object.entries(match).every(([k, v]) => p.attributes[k] === v))
        .at(-1);
    const duration = latest('http.server.request.duration', {
      'http.route': TEMPLATE,
      'http.response.status_code': '403',
    });
    assert.equal(duration?.type, 'histogram');
    assert.equal(duration?.unit, 's');
    assert.equal(duration?.value, 1);
    assert.equal(latest('tollgate.requests', { route: 'get-order', decision: 'allow' })?.type, 'sum');
    assert.equal(latest('tollgate.authz.denials', { policy: 'shop/orders', route: 'get-order' })?.value, 1);
    assert.equal(latest('tollgate.ratelimit.limited', { limit: 'per-ip' })?.value, 1);
    assert.ok((latest('tollgate.jwks.fetches', {})?.value ?? 0) >= 1);
    assert.equal(latest('tollgate.policy.bundle.age', {})?.type, 'gauge');
    assert.equal(duration?.resource['k8s.pod.name'], 'orders-7d9f8-x2x4q');
  });

  test('the JSON access and security logs: one line per request, trace id, never a token', async () => {
    await send(agent.port, ALLOWED, headers('req-json'));
    await eventually(async () => stdout.some((l) => l.requestId === 'req-json'));
    const line = stdout.find((l) => l.requestId === 'req-json' && l.event === 'tollgate.access');
    assert.equal(line?.msg, 'request');
    assert.equal(line?.traceId, CLIENT_TRACE);
    assert.equal(line?.route, 'get-order');
    assert.equal(line?.decision, 'allow');
    assert.equal(line?.reason, 'OK');
    assert.equal(line?.status, 200);
    assert.equal(line?.clientKey, '127.0.0.1');
    assert.match(String(line?.sub), /^sha256:/);
    const denied = stdout.find((l) => l.event === 'tollgate.security.authz_denied');
    assert.equal(denied?.msg, 'request not authorized');
    assert.equal(denied?.requestId, 'req-denied');
    assert.equal(JSON.stringify(stdout).includes(alice), false);
  });

  test('/metrics parses as Prometheus text, with the request histogram and counters', async () => {
    const text = (await send(agent.admin, '/metrics')).body;
    const families = parsePrometheus(text);
    const family = (name: string) => families.find((f) => f.name === name);
    assert.equal(family('http_server_request_duration_seconds')?.type, 'HISTOGRAM');
    for (const name of [
      'tollgate_requests_total',
      'tollgate_authz_denials_total',
      'tollgate_ratelimit_limited_total',
      'tollgate_jwks_fetches_total',
    ])
      assert.equal(family(name)?.type, 'COUNTER', name);
    assert.equal(family('tollgate_policy_bundle_age_seconds')?.type, 'GAUGE');
    const denials = family('tollgate_authz_denials_total')?.metrics ?? [];
    assert.deepEqual(denials, [{ labels: { policy: 'shop/orders', route: 'get-order' }, value: '1' }]);
    const requests = family('tollgate_requests_total')?.metrics ?? [];
    assert.ok(
      requests.some(
        (m) =>
          m.labels?.route === 'get-order' && m.labels.decision === 'allow' && m.labels.status_class === '2xx',
      ),
    );
    // The parser merges a labelled histogram's series: parse one series at a time.
    const series = text
      .split('\n')
      .filter(
        (l) =>
          l.startsWith('#') ||
          (l.includes('http_route="/v1/users/{userId}/orders/{orderId}"') &&
            l.includes('http_response_status_code="403"')),
      )
      .join('\n');
    const histogram = parsePrometheus(`${series}\n`).find(
      (f) => f.name === 'http_server_request_duration_seconds',
    );
    assert.equal(histogram?.metrics[0]?.buckets?.['+Inf'], '1');
    assert.equal(histogram?.metrics[0]?.buckets?.['10'], '1');
  });
});

describe('agent telemetry over OTLP gRPC, and with OpenTelemetry off', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-otel-'));
  const policyFile = join(dir, 'policy.yaml');
  let jwks: JwksServer;
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  let receiver: OtlpReceiver;
  let grpcAgent: Agent;
  let plain: Agent;

  before(async () => {
    jwks = await startJwksServer({ alg: 'ES256' });
    upstream = await startUpstream();
    receiver = await startOtlpReceiver();
    writeFileSync(policyFile, policyYaml(jwks));
    grpcAgent = await startAgent(policyFile, upstream.port, [], {
      env: otelEnv(receiver.grpcEndpoint, 'grpc'),
    });
    plain = await startAgent(policyFile, upstream.port);
  });

  after(async () => {
    await stop(grpcAgent);
    await stop(plain);
    upstream?.server.close();
    await jwks?.close();
    await receiver?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('gRPC: spans, metrics and log records arrive', async () => {
    const r = await send(grpcAgent.port, DENIED, { traceparent, 'x-request-id': 'grpc-1' });
    assert.equal(r.status, 401);
    await eventually(
      async () =>
        ['traces', 'metrics', 'logs'].every((s) => (receiver.requests.get(`grpc ${s}`) ?? 0) > 0) &&
        receiver.spans.some((s) => s.attributes['tollgate.request_id'] === 'grpc-1'),
      10_000,
    );
    const span = receiver.spans.find((s) => s.attributes['tollgate.request_id'] === 'grpc-1');
    assert.equal(span?.attributes['tollgate.reason'], 'ERR_AUTHN_REQUIRED');
    assert.equal(span?.attributes['tollgate.authn.failure'], 'missing');
    assert.equal(span?.traceId, CLIENT_TRACE);
    const failure = receiver.logs.find((l) => l.eventName === 'tollgate.security.auth_failure');
    assert.equal(failure?.attributes.reason, 'missing');
    assert.equal(
      receiver.logs.some((l) => l.eventName === 'tollgate.access'),
      false,
      'access lines become log records only with --access-log-otlp on',
    );
    assert.equal(receiver.requests.get('http traces'), undefined);
  });

  test('off: no export, and the app receives the client traceparent unchanged', async () => {
    const before = upstream.seen.length;
    const exp = Math.floor(Date.now() / 1000) + 600;
    const token = await jwks.sign({ iss: jwks.issuer, aud: 'orders-api', exp, sub: 'alice' });
    const r = await send(plain.port, ALLOWED, { authorization: `Bearer ${token}`, traceparent });
    assert.equal(r.status, 200, r.body);
    assert.equal(upstream.seen.slice(before)[0]?.headers.traceparent, traceparent);
  });
});
