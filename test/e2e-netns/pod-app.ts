/**
 * The "app" of an e2e pod: HTTP on 8080 (captured, behind the policy) and on
 * 9090 (listening on every address, but not captured: it must be unreachable
 * from outside the pod). Every request it receives is appended to LOG as one
 * JSON line; each answer echoes the port, path and headers it saw.
 * Usage: node pod-app.ts LOG
 */
import { appendFileSync } from 'node:fs';
import { createServer } from 'node:http';

const log = process.argv[2] ?? '/dev/null';
let listening = 0;
for (const port of [8080, 9090]) {
  const server = createServer((req, res) => {
    const seen = { port, method: req.method, url: req.url, headers: req.headers };
    appendFileSync(log, `${JSON.stringify(seen)}\n`);
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(seen));
    });
  });
  server.listen(port, '0.0.0.0', () => {
    listening += 1;
    if (listening === 2) console.log('app listening');
  });
}
