/**
 * `npm start`: the quick start. Runs the demo app (127.0.0.1:8080), a local
 * development token issuer (127.0.0.1:15080) and the real `tollgate agent`
 * (127.0.0.1:15006, admin 127.0.0.1:15020) on examples/quickstart/policy.yaml,
 * then prints curl lines that show an allow, a 401, a 403, a 405, a 429 and a 400.
 */
import { spawn } from 'node:child_process';
import type { Server } from 'node:http';
import { createDemoApp } from './demo-app.ts';
import { createDevIssuer } from './dev-issuer.ts';

const root = new URL('../..', import.meta.url).pathname;
const ISSUER = 'http://127.0.0.1:15080/';
const AGENT = 'http://127.0.0.1:15006';

function listen(server: Server, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
}

async function waitReady(url: string, attempts = 100): Promise<void> {
  for (let i = 0; i < attempts; i++) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} did not become ready`);
}

const app = createDemoApp();
const issuer = await createDevIssuer(ISSUER, 'orders-api');
await listen(app, 8080);
await listen(issuer.server, 15080);
const agent = spawn(
  `${root}bin/tollgate`,
  [
    'agent',
    '--policy',
    `${root}examples/quickstart/policy.yaml`,
    '--upstream',
    'http://127.0.0.1:8080',
    '--listen',
    '127.0.0.1:15006',
    '--log-level',
    'warn',
  ],
  { stdio: 'inherit' },
);
agent.on('exit', (code) => {
  console.error(`tollgate agent exited (${code})`);
  process.exit(code ?? 1);
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => agent.kill(signal));
await waitReady('http://127.0.0.1:15020/readyz');

const alice = await issuer.sign({ sub: 'alice', scope: 'orders:read orders:write' });
const bob = await issuer.sign({ sub: 'bob', scope: 'orders:read' });
console.log(`
Tollgate is running: agent ${AGENT} → demo app http://127.0.0.1:8080 (admin http://127.0.0.1:15020/config)
Tokens from the local dev issuer (${ISSUER}), valid for 1h:

  export ALICE=${alice}
  export BOB=${bob}

Try (in another terminal, after the two export lines above):

  # 200: alice reads her own order; the app sees x-user-id: alice
  curl -i -H "Authorization: Bearer $ALICE" ${AGENT}/v1/users/alice/orders/7
  # 401: no token
  curl -i ${AGENT}/v1/users/alice/orders/7
  # 403: bob reads alice's order (object-level authorization, BOLA)
  curl -i -H "Authorization: Bearer $BOB" ${AGENT}/v1/users/alice/orders/7
  # 405: the method is not declared (Allow lists what is)
  curl -i -X DELETE -H "Authorization: Bearer $ALICE" ${AGENT}/v1/users/alice/orders/7
  # 429: the public catalog allows 5 requests a minute per client IP
  for i in 1 2 3 4 5 6; do curl -s -o /dev/null -w '%{http_code}\\n' ${AGENT}/v1/catalog/shoes; done
  # 400: an encoded slash in the path is refused
  curl -i --path-as-is "${AGENT}/v1/users/alice%2F..%2Fbob/orders/7"

Press Ctrl-C to stop.`);
