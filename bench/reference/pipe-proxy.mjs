// The simplest Node proxy: accept, connect, pipe both ways. A reference point for
// what Node itself costs (`npm run bench -- --pipe`); no banner check, no health checks.
// Usage: node pipe-proxy.mjs <listenPort>:<backendPort> [...]   prints "ready" when listening.
import { createServer, connect } from 'node:net';

let open = 0;
const pairs = process.argv.slice(2).map((pair) => pair.split(':').map(Number));
for (const [listenPort, backendPort] of pairs) {
  createServer((client) => {
    const backend = connect({ host: '127.0.0.1', port: backendPort });
    client.on('error', () => backend.destroy());
    backend.on('error', () => client.destroy());
    client.pipe(backend);
    backend.pipe(client);
  }).listen(listenPort, '127.0.0.1', () => {
    open += 1;
    if (open === pairs.length) process.stdout.write('ready\n');
  });
}
process.on('SIGTERM', () => process.exit(0));
