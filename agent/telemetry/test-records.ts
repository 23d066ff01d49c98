/** Test support: request records as the agent makes them, without a server. */
import type { IncomingMessage } from 'node:http';
import type { RequestInfo } from '../pipeline/decide-request.ts';
import type { RequestRecord } from './channels.ts';
import { RequestTelemetry } from './request-telemetry.ts';

export interface FakeRequest {
  method?: string;
  url?: string;
  headers?: Record<string, string>;
}

/** A RequestTelemetry on fixed clocks (wall 1,000,000 ms; each `mark()` 2.5 ms after the previous). */
export function testTelemetry(): RequestTelemetry {
  let mark = 0;
  return new RequestTelemetry({
    now: () => 1_000_000,
    mark: () => {
      mark += 2.5;
      return mark;
    },
  });
}

/** Begins a record for a fake request from 10.0.0.1. */
export function begin(telemetry: RequestTelemetry, fake: FakeRequest = {}, id = 'req-1'): RequestRecord {
  const req = {
    method: fake.method ?? 'GET',
    url: fake.url ?? '/',
    headers: { host: 'orders:8080', ...fake.headers },
    httpVersion: '1.1',
  } as unknown as IncomingMessage;
  const info: RequestInfo = { req, requestId: id, clientIp: '10.0.0.1', proto: 'http', peerId: null };
  return telemetry.begin(info, '10.0.0.1');
}
