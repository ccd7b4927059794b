/**
 * Measurement aid: a TCP relay that prints, per connection, each direction's flights
 * (consecutive chunks one way) after both NEWKEYS, with byte counts. Used to find the
 * end-of-authentication rule (docs/penalties.md).
 *   node --import tsx scripts/flight-tap.ts <listenPort> <targetPort>
 */
import net from 'node:net';
import { NewKeysWatcher } from '../src/protocol/ssh-packets.js';

const [listenPort, targetPort] = process.argv.slice(2).map(Number);
if (!Number.isInteger(listenPort) || !Number.isInteger(targetPort)) {
  console.error('usage: node --import tsx scripts/flight-tap.ts <listenPort> <targetPort>  (both on 127.0.0.1)');
  process.exit(2);
}
net.createServer((client) => {
  const server = net.connect(targetPort as number, '127.0.0.1');
  const watchers = { c: new NewKeysWatcher({ identLine: 'skip' }), s: new NewKeysWatcher({ identLine: 'skip' }) };
  const flights: string[] = [];
  let last = '';
  let chunks: number[] = [];
  const started = Date.now();
  const note = (dir: 'c' | 's', chunk: Buffer): void => {
    const watcher = watchers[dir];
    if (watcher.state === 'watching') {
      watcher.push(chunk);
      return;
    }
    if (watchers.c.state !== 'newkeys' || watchers.s.state !== 'newkeys') return;
    if (dir !== last && last !== '') {
      flights.push(`${last}${chunks.join('+')}`);
      chunks = [];
    }
    last = dir;
    chunks.push(chunk.length);
  };
  client.on('data', (chunk: Buffer) => { note('c', chunk); server.write(chunk); });
  server.on('data', (chunk: Buffer) => { note('s', chunk); client.write(chunk); });
  let printed = false;
  const done = (): void => {
    if (printed) return;
    printed = true;
    if (last !== '') flights.push(`${last}${chunks.join('+')}`);
    last = '';
    console.log(`${Date.now() - started}ms ${flights.join(' ')}`);
    client.destroy();
    server.destroy();
  };
  client.once('close', done);
  server.once('close', done);
  client.on('error', () => {});
  server.on('error', () => {});
}).listen(listenPort, '127.0.0.1');
