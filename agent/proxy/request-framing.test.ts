/**
 * Framing: the unit rules, then raw bytes over a socket against the inbound
 * server. The raw table pins the answer (400 and a closed connection) whichever
 * layer catches the request: Node's strict parser ("parser") or
 * checkRequestFraming ("framing"); the layer seen is reported as a diagnostic.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createInboundServer } from './inbound-server.ts';
import { sendProblem } from './problem-response.ts';
import { announcesBody, checkRequestFraming } from './request-framing.ts';
import { bodyOf, rawExchange, statusOf } from './test-clients.ts';
import { closeServer, listen } from './test-support.ts';

describe('checkRequestFraming', () => {
  const cases: Array<[string, string[], string, boolean]> = [
    ['plain GET', ['Host', 'a'], '1.1', true],
    ['HTTP/1.0 without Host', [], '1.0', true],
    ['chunked body', ['Host', 'a', 'Transfer-Encoding', 'chunked'], '1.1', true],
    [
      'chunked in capitals (codings are case-insensitive)',
      ['Host', 'a', 'Transfer-Encoding', 'CHUNKED'],
      '1.1',
      true,
    ],
    ['tab and obs-text in a value', ['Host', 'a', 'X-A', 'a\tb\u00e9'], '1.1', true],
    ['HTTP/2 pseudo-headers', [':authority', 'a', ':path', '/'], '2.0', true],
    ['missing Host on 1.1', [], '1.1', false],
    ['Host twice', ['Host', 'a', 'host', 'b'], '1.1', false],
    ['Authorization twice', ['Host', 'a', 'Authorization', 'x', 'AUTHORIZATION', 'y'], '1.1', false],
    ['Content-Length twice', ['Host', 'a', 'Content-Length', '1', 'content-length', '1'], '1.1', false],
    [
      'Content-Length and Transfer-Encoding',
      ['Host', 'a', 'Content-Length', '3', 'Transfer-Encoding', 'chunked'],
      '1.1',
      false,
    ],
    ['Transfer-Encoding gzip, chunked', ['Host', 'a', 'Transfer-Encoding', 'gzip, chunked'], '1.1', false],
    [
      'Transfer-Encoding twice',
      ['Host', 'a', 'Transfer-Encoding', 'chunked', 'Transfer-Encoding', 'chunked'],
      '1.1',
      false,
    ],
    ['Transfer-Encoding on HTTP/1.0', ['Transfer-Encoding', 'chunked'], '1.0', false],
    ['NUL in a value', ['Host', 'a', 'X-A', 'a\u0000b'], '1.1', false],
    ['DEL in a value', ['Host', 'a', 'X-A', 'a\u007fb'], '1.1', false],
    ['bare LF in a value', ['Host', 'a', 'X-A', 'a\nb'], '1.1', false],
    ['pseudo-header on HTTP/1.1', ['Host', 'a', ':path', '/'], '1.1', false],
    ['separator in a name', ['Host', 'a', 'X(A)', 'b'], '1.1', false],
  ];
  for (const [name, rawHeaders, httpVersion, ok] of cases) {
    test(name, () => {
      const error = checkRequestFraming({ rawHeaders, httpVersion });
      if (ok) assert.equal(error, null);
      else assert.equal(error?.code, 'ERR_REQUEST_MALFORMED');
    });
  }

  test('announcesBody', () => {
    assert.equal(announcesBody({}), false);
    assert.equal(announcesBody({ 'content-length': '0' }), false);
    assert.equal(announcesBody({ 'content-length': '5' }), true);
    assert.equal(announcesBody({ 'transfer-encoding': 'chunked' }), true);
  });
});

describe('malformed requests on the wire', () => {
  let port = 0;
  let framingRejections = 0;
  const server = createInboundServer({
    onRequest(req, res) {
      const error = checkRequestFraming(req);
      if (error) {
        framingRejections += 1;
        return sendProblem(req, res, error, 'rid');
      }
      req.resume();
      req.on('end', () => res.end('ok'));
    },
    onUpgrade(_req, socket) {
      socket.destroy();
    },
  });
  before(async () => {
    port = await listen(server);
  });
  after(() => closeServer(server));

  const H = 'Host: a\r\n';
  const rejected: Array<[string, string]> = [
    ['Host twice', `GET / HTTP/1.1\r\n${H}Host: b\r\n\r\n`],
    ['Authorization twice', `GET / HTTP/1.1\r\n${H}Authorization: a\r\nauthorization: b\r\n\r\n`],
    [
      'Content-Length twice (same value)',
      `POST / HTTP/1.1\r\n${H}Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc`,
    ],
    [
      'Content-Length twice (different)',
      `POST / HTTP/1.1\r\n${H}Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd`,
    ],
    [
      'Content-Length and Transfer-Encoding',
      `POST / HTTP/1.1\r\n${H}Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
    ],
    [
      'Transfer-Encoding gzip, chunked',
      `POST / HTTP/1.1\r\n${H}Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n`,
    ],
    [
      'Transfer-Encoding chunked, gzip',
      `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n`,
    ],
    ['Transfer-Encoding identity', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: identity\r\n\r\n`],
    [
      'Transfer-Encoding twice',
      `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
    ],
    ['Transfer-Encoding on HTTP/1.0', `POST / HTTP/1.0\r\n${H}Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n`],
    ['missing Host', 'GET / HTTP/1.1\r\n\r\n'],
    ['NUL in a value', `GET / HTTP/1.1\r\n${H}X-A: a\x00b\r\n\r\n`],
    ['BEL in a value', `GET / HTTP/1.1\r\n${H}X-A: a\x07b\r\n\r\n`],
    ['DEL in a value', `GET / HTTP/1.1\r\n${H}X-A: a\x7fb\r\n\r\n`],
    ['bare CR in a value', `GET / HTTP/1.1\r\n${H}X-A: a\rb\r\n\r\n`],
    ['bare LF line ending', 'GET / HTTP/1.1\nHost: a\n\n'],
    ['obs-fold', `GET / HTTP/1.1\r\n${H}X-A: a\r\n b\r\n\r\n`],
    ['space before colon', `GET / HTTP/1.1\r\n${H}X-A : b\r\n\r\n`],
    ['negative Content-Length', `POST / HTTP/1.1\r\n${H}Content-Length: -1\r\n\r\n`],
    ['Content-Length list', `POST / HTTP/1.1\r\n${H}Content-Length: 3, 3\r\n\r\nabc`],
    ['bad chunk size line', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n`],
    ['control character in the target', 'GET /a\x01b HTTP/1.1\r\nHost: a\r\n\r\n'],
  ];
  for (const [name, bytes] of rejected) {
    test(`${name} → 400, connection closed`, async (t) => {
      const before = framingRejections;
      const answer = await rawExchange(port, bytes);
      assert.equal(statusOf(answer.text), 400, answer.text);
      assert.equal(answer.closed, true);
      t.diagnostic(`caught by ${framingRejections > before ? 'checkRequestFraming' : 'the parser'}`);
    });
  }

  test('a parser rejection is problem+json', async () => {
    const answer = await rawExchange(
      port,
      `POST / HTTP/1.1\r\n${H}Content-Length: 1\r\nContent-Length: 2\r\n\r\n`,
    );
    assert.match(answer.text, /content-type: application\/problem\+json/i);
    assert.equal(JSON.parse(bodyOf(answer.text)).code, 'ERR_REQUEST_MALFORMED');
  });

  test('a framing rejection is problem+json', async () => {
    const answer = await rawExchange(port, `GET / HTTP/1.1\r\n${H}Host: b\r\n\r\n`);
    assert.match(answer.text, /connection: close/i);
    assert.equal(JSON.parse(bodyOf(answer.text)).code, 'ERR_REQUEST_MALFORMED');
  });

  const accepted: Array<[string, string]> = [
    ['tab in a value', `GET / HTTP/1.1\r\n${H}X-A: a\tb\r\n\r\n`],
    ['obs-text in a value', `GET / HTTP/1.1\r\n${H}X-A: a\xe9b\r\n\r\n`],
    ['chunked body', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n`],
  ];
  for (const [name, bytes] of accepted) {
    test(`${name} → 200`, async () => {
      const answer = await rawExchange(port, bytes, 300);
      assert.equal(statusOf(answer.text), 200, answer.text);
    });
  }
});
