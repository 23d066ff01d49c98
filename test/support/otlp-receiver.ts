/**
 * A real OTLP receiver for tests: HTTP (`/v1/traces`, `/v1/metrics`,
 * `/v1/logs`, protobuf or JSON bodies) and gRPC (the three collector
 * services), decoding protobuf with the official OpenTelemetry proto
 * definitions as compiled in `@opentelemetry/otlp-transformer` (installed as
 * the dev dependency `otlp-proto`, 0.214: the last release that ships the
 * request decoders). What arrives is flattened into plain spans, data points
 * and log records.
 */
import { createServer, type Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';

export type Value = string | number | boolean | null | Value[] | { [k: string]: Value };
export type Attrs = Record<string, Value>;

export interface ReceivedSpan {
  name: string;
  kind: number;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  attributes: Attrs;
  status: number;
  resource: Attrs;
  scope: string;
}

export interface ReceivedLog {
  eventName: string;
  severityText: string;
  severityNumber: number;
  body: Value;
  attributes: Attrs;
  traceId: string;
  spanId: string;
  resource: Attrs;
}

export interface ReceivedPoint {
  metric: string;
  unit: string;
  type: 'sum' | 'gauge' | 'histogram';
  attributes: Attrs;
  value: number;
  /** Histograms: bucket counts and bounds. */
  buckets?: { bounds: number[]; counts: number[] };
  resource: Attrs;
}

export interface OtlpReceiver {
  /** http://127.0.0.1:PORT */
  httpEndpoint: string;
  /** http://127.0.0.1:PORT of the gRPC server */
  grpcEndpoint: string;
  spans: ReceivedSpan[];
  logs: ReceivedLog[];
  points: ReceivedPoint[];
  /** Export requests received, by transport and signal (`http traces`, `grpc logs`, ...). */
  requests: Map<string, number>;
  close(): Promise<void>;
}

// biome-ignore lint/suspicious/noExplicitAny: the generated protobufjs root is untyped here
type Decoded = any;

const root: Decoded = createRequire(import.meta.url)('otlp-proto/build/src/generated/root.js');
const collector = root.opentelemetry.proto.collector;
const TYPES: Record<string, Decoded> = {
  traces: collector.trace.v1.ExportTraceServiceRequest,
  metrics: collector.metrics.v1.ExportMetricsServiceRequest,
  logs: collector.logs.v1.ExportLogsServiceRequest,
};
const SERVICES: Record<string, string> = {
  traces: '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
  metrics: '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export',
  logs: '/opentelemetry.proto.collector.logs.v1.LogsService/Export',
};

const hex = (b: unknown): string =>
  b instanceof Uint8Array ? Buffer.from(b).toString('hex') : typeof b === 'string' ? b : '';

function anyValue(v: Decoded): Value {
  if (v === null || v === undefined) return null;
  if (v.stringValue !== undefined && v.stringValue !== null) return v.stringValue;
  if (v.boolValue !== undefined && v.boolValue !== null) return v.boolValue;
  if (v.intValue !== undefined && v.intValue !== null) return Number(v.intValue);
  if (v.doubleValue !== undefined && v.doubleValue !== null) return v.doubleValue;
  if (v.arrayValue) return (v.arrayValue.values ?? []).map(anyValue);
  if (v.kvlistValue) return attrs(v.kvlistValue.values);
  return null;
}

function attrs(list: Decoded[] | undefined): Attrs {
  const out: Attrs = {};
  for (const kv of list ?? []) out[kv.key] = anyValue(kv.value);
  return out;
}

function decode(signal: string, body: Buffer, json: boolean): Decoded {
  const type = TYPES[signal];
  if (json) return type.fromObject(JSON.parse(body.toString('utf8')));
  return type.decode(body);
}

function collect(r: OtlpReceiver, signal: string, message: Decoded): void {
  if (signal === 'traces') {
    for (const rs of message.resourceSpans ?? []) {
      const resource = attrs(rs.resource?.attributes);
      for (const ss of rs.scopeSpans ?? [])
        for (const s of ss.spans ?? [])
          r.spans.push({
            name: s.name,
            kind: s.kind,
            traceId: hex(s.traceId),
            spanId: hex(s.spanId),
            parentSpanId: hex(s.parentSpanId),
            attributes: attrs(s.attributes),
            status: s.status?.code ?? 0,
            resource,
            scope: ss.scope?.name ?? '',
          });
    }
  } else if (signal === 'logs') {
    for (const rl of message.resourceLogs ?? []) {
      const resource = attrs(rl.resource?.attributes);
      for (const sl of rl.scopeLogs ?? [])
        for (const l of sl.logRecords ?? [])
          r.logs.push({
            eventName: l.eventName ?? '',
            severityText: l.severityText ?? '',
            severityNumber: l.severityNumber ?? 0,
            body: anyValue(l.body),
            attributes: attrs(l.attributes),
            traceId: hex(l.traceId),
            spanId: hex(l.spanId),
            resource,
          });
    }
  } else {
    for (const rm of message.resourceMetrics ?? []) {
      const resource = attrs(rm.resource?.attributes);
      for (const sm of rm.scopeMetrics ?? [])
        for (const m of sm.metrics ?? []) {
          const base = { metric: m.name, unit: m.unit ?? '', resource };
          for (const p of m.sum?.dataPoints ?? [])
            r.points.push({ ...base, type: 'sum', attributes: attrs(p.attributes), value: num(p) });
          for (const p of m.gauge?.dataPoints ?? [])
            r.points.push({ ...base, type: 'gauge', attributes: attrs(p.attributes), value: num(p) });
          for (const p of m.histogram?.dataPoints ?? [])
            r.points.push({
              ...base,
              type: 'histogram',
              attributes: attrs(p.attributes),
              value: Number(p.count),
              buckets: { bounds: [...(p.explicitBounds ?? [])], counts: (p.bucketCounts ?? []).map(Number) },
            });
        }
    }
  }
}

function num(p: Decoded): number {
  return p.asDouble !== undefined && p.asDouble !== null ? p.asDouble : Number(p.asInt ?? 0);
}

function count(r: OtlpReceiver, key: string): void {
  r.requests.set(key, (r.requests.get(key) ?? 0) + 1);
}

function httpServer(r: OtlpReceiver): Server {
  return createServer((req, res) => {
    const signal = /^\/v1\/(traces|metrics|logs)$/.exec(req.url ?? '')?.[1];
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (!signal || req.method !== 'POST') {
        res.writeHead(404).end();
        return;
      }
      const json = (req.headers['content-type'] ?? '').includes('json');
      try {
        collect(r, signal, decode(signal, Buffer.concat(chunks), json));
        count(r, `http ${signal}`);
        res.writeHead(200, { 'content-type': json ? 'application/json' : 'application/x-protobuf' });
        res.end(json ? '{}' : Buffer.alloc(0));
      } catch (e) {
        res.writeHead(400, { 'content-type': 'text/plain' }).end(String(e));
      }
    });
  });
}

function grpcServer(r: OtlpReceiver): grpc.Server {
  const server = new grpc.Server();
  for (const [signal, path] of Object.entries(SERVICES)) {
    const definition: grpc.ServiceDefinition = {
      Export: {
        path,
        requestStream: false,
        responseStream: false,
        requestSerialize: (v: Buffer) => v,
        requestDeserialize: (b: Buffer) => TYPES[signal].decode(b),
        responseSerialize: () => Buffer.alloc(0),
        responseDeserialize: (b: Buffer) => b,
      },
    };
    server.addService(definition, {
      Export: (call: grpc.ServerUnaryCall<Decoded, Buffer>, done: grpc.sendUnaryData<Buffer>) => {
        collect(r, signal, call.request);
        count(r, `grpc ${signal}`);
        done(null, Buffer.alloc(0));
      },
    });
  }
  return server;
}

/** Starts the HTTP and gRPC receivers on loopback ephemeral ports. */
export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const r: OtlpReceiver = {
    httpEndpoint: '',
    grpcEndpoint: '',
    spans: [],
    logs: [],
    points: [],
    requests: new Map(),
    close: async () => {},
  };
  const http = httpServer(r);
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  r.httpEndpoint = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  const g = grpcServer(r);
  const port = await new Promise<number>((resolve, reject) =>
    g.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) =>
      e ? reject(e) : resolve(p),
    ),
  );
  r.grpcEndpoint = `http://127.0.0.1:${port}`;
  r.close = async () => {
    http.closeAllConnections();
    await new Promise((resolve) => http.close(resolve));
    await new Promise<void>((resolve) => g.tryShutdown(() => resolve()));
  };
  return r;
}
