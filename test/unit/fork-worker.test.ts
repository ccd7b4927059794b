import assert from 'node:assert/strict';
import cluster, { type Worker } from 'node:cluster';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import pino from 'pino';
import { forkWorker } from '../../src/cluster/fork-worker.js';

const IDLE_WORKER = fileURLToPath(new URL('../fixtures/proxy/idle-worker.mjs', import.meta.url));
const LARGE_MESSAGE = { kind: 'ssh-banner-proxy:snapshot-request', padding: 'x'.repeat(100_000) };

/** Kills the worker, then sends to it for as long as it still looks connected; resolves once it has exited. */
async function sendToTheDying(worker: Worker): Promise<void> {
  // Not events.once: it rejects on the 'error' this test provokes.
  const exited = new Promise((resolve) => worker.once('exit', resolve));
  process.kill(worker.process.pid as number, 'SIGKILL');
  while (worker.isConnected()) {
    worker.send(LARGE_MESSAGE);
    await new Promise((resolve) => setImmediate(resolve));
  }
  await exited;
}

test('a message to a worker that has just died is logged as lost, not an uncaught error in the primary', { timeout: 60_000 }, async () => {
  cluster.setupPrimary({ exec: IDLE_WORKER, execArgv: [], silent: true });
  const lines: { event?: string; err?: { code?: string } }[] = [];
  const logger = pino({ level: 'warn' }, { write: (line: string) => lines.push(JSON.parse(line) as (typeof lines)[number]) });
  // The EPIPE needs the write to land between the kill and the primary seeing the channel close;
  // it does in most rounds, so a bounded number of rounds finds it.
  for (let round = 0; round < 30 && lines.length === 0; round += 1) {
    const worker = forkWorker({}, logger);
    await once(worker, 'message');
    await sendToTheDying(worker);
  }
  assert.ok(lines.length > 0, 'a send raced a death in 30 rounds');
  assert.equal(lines[0]?.event, 'worker-message-lost');
  assert.equal(lines[0]?.err?.code, 'EPIPE');
});
