import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import type { Lease } from '../../src/backend/pool.js';
import { validateConfig } from '../../src/config/load.js';
import type { SessionSummary } from '../../src/events/bus.js';
import { Session } from '../../src/proxy/session.js';
import { spliceOptionsFor } from '../../src/proxy/splice.js';
import { canTransition, SESSION_PHASES, type SessionPhase } from '../../src/proxy/session-state.js';
import { ticket, type Ticket } from '../../src/ticket.js';
import { FakeBackends } from '../fixtures/backends/fake-backends.js';
import { FakeSocket } from '../fixtures/backends/fake-socket.js';
import { acquire, makePool, type PoolServerSpec } from '../fixtures/proxy/pool-helpers.js';

const CLIENT_IDENT = 'SSH-2.0-UnitClient_1.0\r\n';

/** Lets stream events queued with process.nextTick (close, end) run. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

interface Harness {
  readonly session: Session;
  readonly client: FakeSocket;
  readonly backends: FakeBackends;
  readonly pool: ReturnType<typeof makePool>['pool'];
  readonly events: ReturnType<typeof makePool>['events'];
  readonly summaries: SessionSummary[];
  readonly admission: Ticket;
  /** Order in which the listener's bookkeeping and the summary happened. */
  readonly order: string[];
  advance(ms: number): void;
}

function harness(
  t: TestContext,
  options: { servers?: readonly PoolServerSpec[]; pool?: Record<string, unknown>; timeouts?: Record<string, unknown> } = {},
): Harness {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  let clock = 1000;
  const { pool, events } = makePool(
    options.servers ?? [{ name: 'a', maxStartups: 1 }],
    {
      handshake: { endsAt: 'splice' },
      retry: { maxAttempts: 4, backoff: 100, maxBackoff: 100 },
      // The fake attempts hand over sockets that never send a KEXINIT: the phases are tested at
      // the banner (verify: kexinit against real servers is test/integration/verify-kexinit).
      verify: 'banner',
      ...options.pool,
    },
    () => clock,
  );
  const config = validateConfig(
    { listeners: [{ name: 'ssh', bind: '127.0.0.1:0', pool: 'main' }], pools: [{ name: 'main', servers: [{ name: 'x', address: '127.0.0.1:1' }] }], timeouts: options.timeouts ?? {} },
    'test',
  );
  const summaries: SessionSummary[] = [];
  const order: string[] = [];
  events.on('session-closed', (summary) => {
    order.push('summary');
    summaries.push(summary);
  });
  const admission = ticket(() => order.push('admission released'));
  const client = new FakeSocket();
  const backends = new FakeBackends();
  const session = new Session(
    client.asSocket(),
    '192.0.2.7',
    { listener: 'ssh', pool, timeouts: config.timeouts, splice: spliceOptionsFor(config.timeouts), clientBufferBytes: 65536, events, attempt: backends.attempt, now: () => clock },
    admission,
    () => order.push('left listener'),
  );
  return {
    session,
    client,
    backends,
    pool,
    events,
    summaries,
    admission,
    order,
    advance(ms) {
      clock += ms;
      t.mock.timers.tick(ms);
    },
  };
}

/** Brings a fresh session to `phase` the way real events would. */
function reach(h: Harness, phase: SessionPhase): { held?: Lease } {
  const result: { held?: Lease } = {};
  if (phase === 'accepted') return result;
  if (phase === 'queued') {
    // Another session holds the only slot.
    acquire(h.pool, { clientKey: 'other', exclude: new Set() }, (granted) => {
      if (granted.ok) result.held = granted.lease;
    });
  }
  h.session.start();
  h.client.receive(CLIENT_IDENT);
  if (phase === 'queued' || phase === 'connecting') return result;
  if (phase === 'backoff') {
    h.backends.latest.fail('THROTTLED');
    return result;
  }
  h.backends.latest.connect();
  if (phase === 'spliced') h.backends.latest.succeed();
  return result;
}

function assertNothingHeld(h: Harness): void {
  const server = h.pool.servers[0];
  assert.ok(server);
  assert.equal(server.handshakesActive, 0, 'handshake slot released');
  assert.equal(server.activeSessions, 0, 'session count released');
  assert.equal(h.pool.queueLength, 0, 'no queue place left behind');
  assert.equal(h.admission.held, false, 'admission released');
  assert.equal(h.session.phase, 'closed');
  for (const attempt of h.backends.attempts) assert.ok(attempt.settled || attempt.cancelled, `attempt on ${attempt.target} cancelled`);
}

describe('session transition table', () => {
  it('allows exactly these moves, written out here rather than read from the implementation', () => {
    const expected: Readonly<Record<SessionPhase, readonly SessionPhase[]>> = {
      accepted: ['admitted', 'closed'],
      admitted: ['queued', 'closed'],
      // A prefetched connection splices straight from the queue.
      queued: ['connecting', 'spliced', 'closed'],
      backoff: ['queued', 'closed'],
      connecting: ['awaiting-banner', 'queued', 'backoff', 'closed'],
      'awaiting-banner': ['spliced', 'queued', 'backoff', 'closed'],
      // No failover once the client has seen backend bytes.
      spliced: ['closed'],
      closed: [],
    };
    for (const from of SESSION_PHASES) {
      for (const to of SESSION_PHASES) assert.equal(canTransition(from, to), expected[from].includes(to), `${from} → ${to}`);
    }
  });
});

describe('session phases', () => {
  it('walks accepted → admitted → queued → connecting → awaiting-banner → spliced → closed, timing each phase', async (t) => {
    const h = harness(t);
    assert.equal(h.session.phase, 'accepted');
    h.session.start();
    h.client.receive(CLIENT_IDENT);
    assert.equal(h.session.phase, 'connecting', 'a free slot is granted at once');
    h.advance(5);
    h.backends.latest.connect();
    assert.equal(h.session.phase, 'awaiting-banner');
    h.advance(7);
    const backend = h.backends.latest.succeed('SSH-2.0-FakeBackend_1.0', 'after');
    assert.equal(h.session.phase, 'spliced');
    await settle();
    assert.equal(h.client.text, 'SSH-2.0-FakeBackend_1.0\r\nafter', 'the client sees the backend bytes, byte-exact');
    assert.equal(backend.text, CLIENT_IDENT, 'the backend gets the buffered client bytes');
    assert.equal(h.client.keepAliveMs, 60_000, 'TCP keepalive on the client socket (timeouts.tcpKeepalive)');
    assert.equal(backend.keepAliveMs, 60_000, 'and on the backend socket');
    h.advance(11);
    h.session.close('SHUTDOWN');
    await settle();
    assert.equal(h.summaries.length, 1);
    const summary = h.summaries[0] as SessionSummary;
    assert.equal(summary.reason, 'SHUTDOWN');
    assert.equal(summary.phase, 'spliced');
    assert.deepEqual(summary.phaseMs, { accepted: 0, admitted: 0, queued: 0, connecting: 5, 'awaiting-banner': 7, spliced: 11 });
    assert.equal(summary.bannerMs, 7);
    assert.equal(summary.setupMs, 12);
    assert.equal(summary.durationMs, 23);
    assert.deepEqual(
      summary.attempts.map(({ result, connectMs, bannerMs }) => ({ result, connectMs, bannerMs })),
      [{ result: 'ok', connectMs: 5, bannerMs: 7 }],
    );
    assertNothingHeld(h);
    assert.deepEqual(h.order, ['admission released', 'left listener', 'summary'], 'bookkeeping before notification');
  });

  for (const phase of ['accepted', 'queued', 'backoff', 'connecting', 'awaiting-banner', 'spliced'] as const) {
    it(`close() in ${phase} releases what the phase held and emits one summary`, async (t) => {
      const h = harness(t);
      const { held } = reach(h, phase);
      assert.equal(h.session.phase, phase);
      h.session.close('SHUTDOWN', 'test');
      h.session.close('SHUTDOWN', 'twice');
      await settle();
      held?.close();
      assert.equal(h.summaries.length, 1);
      assert.equal(h.summaries[0]?.phase, phase);
      assert.equal(h.summaries[0]?.reason, 'SHUTDOWN');
      assert.ok(h.client.destroyed, 'the client connection is closed');
      assertNothingHeld(h);
      // No timer of the session is left to fire: nothing starts, nothing is emitted twice.
      const attempts = h.backends.attempts.length;
      h.advance(60_000);
      assert.equal(h.backends.attempts.length, attempts, 'no attempt started after close');
      assert.equal(h.summaries.length, 1);
    });
  }

  for (const phase of ['queued', 'backoff', 'connecting', 'awaiting-banner'] as const) {
    it(`a client FIN in ${phase} ends the session as CLIENT_CLOSED before any backend is used for nobody`, async (t) => {
      const h = harness(t);
      const { held } = reach(h, phase);
      assert.equal(h.session.phase, phase);
      const attempts = h.backends.attempts.length;
      h.client.peerEnds();
      await settle();
      held?.close();
      assert.equal(h.summaries[0]?.reason, 'CLIENT_CLOSED');
      assert.equal(h.summaries[0]?.phase, phase);
      assertNothingHeld(h);
      h.advance(60_000);
      assert.equal(h.backends.attempts.length, attempts, 'the queued client got no backend connection');
    });
  }

  for (const phase of ['queued', 'connecting', 'awaiting-banner'] as const) {
    it(`a client reset in ${phase} ends the session as CLIENT_RESET`, async (t) => {
      const h = harness(t);
      const { held } = reach(h, phase);
      h.client.peerResets();
      await settle();
      held?.close();
      assert.equal(h.summaries[0]?.reason, 'CLIENT_RESET');
      assertNothingHeld(h);
    });
  }

  it('fails over from awaiting-banner back to queued for the next server, and records both attempts', async (t) => {
    const h = harness(t, { servers: [{ name: 'a', maxStartups: 1 }, { name: 'b', maxStartups: 1 }], pool: { balance: 'roundrobin', handshake: { endsAt: 'splice' } } });
    const failovers: string[] = [];
    h.events.on('failover', ({ from, reason }) => failovers.push(`${from}:${reason}`));
    reach(h, 'awaiting-banner');
    const first = h.backends.latest;
    h.advance(8000);
    first.fail('BANNER_TIMEOUT');
    assert.equal(h.session.phase, 'connecting', 'straight to the next server');
    const second = h.backends.latest;
    assert.notEqual(second.target, first.target);
    second.connect();
    second.succeed();
    h.session.close('SHUTDOWN');
    await settle();
    assert.deepEqual(failovers, [`${first.options.port === 20000 ? 'a' : 'b'}:BANNER_TIMEOUT`]);
    assert.deepEqual(h.summaries[0]?.attempts.map((attempt) => attempt.result), ['BANNER_TIMEOUT', 'ok']);
    assert.equal(h.summaries[0]?.phaseMs.queued, 0);
    for (const server of h.pool.servers) assert.equal(server.handshakesActive + server.activeSessions, 0);
  });

  it('backs off after a transient failure on the only server, then queues and retries it', (t) => {
    const h = harness(t);
    reach(h, 'backoff');
    assert.equal(h.session.phase, 'backoff');
    assert.equal(h.pool.servers[0]?.handshakesActive, 0, 'no slot held while backing off');
    // Equal jitter: the delay lies in [backoff/2, backoff].
    h.advance(49);
    assert.equal(h.backends.attempts.length, 1, 'not before the backoff');
    h.advance(51);
    assert.equal(h.backends.attempts.length, 2, 'retried after the backoff');
    assert.equal(h.session.phase, 'connecting');
    h.session.close('SHUTDOWN');
  });

  it('gives up with BACKENDS_EXHAUSTED after retry.maxAttempts, holding nothing', async (t) => {
    // Two servers, so neither refuses three times in a row (which would hold it out: own-penalty.ts).
    const h = harness(t, { servers: [{ name: 'a', maxStartups: 1 }, { name: 'b', maxStartups: 1 }] });
    reach(h, 'connecting');
    for (let attempt = 1; attempt <= 4; attempt += 1) {
      h.backends.latest.fail('BACKEND_RESET');
      h.advance(100);
    }
    await settle();
    assert.equal(h.summaries[0]?.reason, 'BACKENDS_EXHAUSTED');
    assert.equal(h.backends.attempts.length, 4);
    const servers = h.summaries[0]?.attempts.map((attempt) => attempt.server) ?? [];
    assert.deepEqual([...servers].sort(), ['a', 'a', 'b', 'b'], 'tried both, twice each');
    assertNothingHeld(h);
  });

  it('three refusals in a row over a second, with no slot in use: the server is held out (sshd penalising the proxy) and the session ends after 3 attempts, not maxAttempts', async (t) => {
    const h = harness(t);
    const penalties: string[] = [];
    h.events.on('backend-penalty', ({ phase }) => penalties.push(phase));
    reach(h, 'connecting');
    // A second apart: a penalty refuses for long, not for the moment a just-closed connection takes to count.
    for (let attempt = 1; attempt <= 3; attempt += 1) {
      h.backends.latest.fail('THROTTLED');
      h.advance(attempt === 3 ? 100 : 600);
    }
    await settle();
    assert.deepEqual(penalties, ['started']);
    assert.equal(h.backends.attempts.length, 3, 'no fourth attempt on a server that penalises the proxy');
    assert.equal(h.summaries[0]?.reason, 'BACKENDS_EXHAUSTED');
    assert.equal(h.pool.servers.some((server) => h.pool.isHeldOut(server)), true);
    assertNothingHeld(h);
    h.pool.close();
  });

  it('expires the setup budget while queued (SETUP_TIMEOUT) and leaves the queue', async (t) => {
    const h = harness(t, { timeouts: { setup: '1s' } });
    const { held } = reach(h, 'queued');
    h.advance(999);
    assert.equal(h.session.phase, 'queued');
    h.advance(1);
    await settle();
    held?.close();
    assert.equal(h.summaries[0]?.reason, 'SETUP_TIMEOUT');
    assert.equal(h.summaries[0]?.phaseMs.queued, 1000);
    assertNothingHeld(h);
  });

  it('a queued session is granted the slot another session frees, and its queue time is recorded', async (t) => {
    const h = harness(t);
    const { held } = reach(h, 'queued');
    h.advance(250);
    held?.close();
    assert.equal(h.session.phase, 'connecting');
    h.backends.latest.connect();
    h.backends.latest.succeed();
    h.session.close('SHUTDOWN');
    await settle();
    assert.equal(h.summaries[0]?.queueWaitMs, 250);
    assertNothingHeld(h);
  });

  it('a backend that closes a spliced session ends it SERVER_CLOSED once both sides are gone', async (t) => {
    const h = harness(t);
    reach(h, 'spliced');
    const backend = h.backends.latest.backend;
    backend.peerEnds();
    await settle();
    assert.equal(h.client.writableEnded, true, 'the FIN is passed on to the client');
    h.client.peerEnds();
    await settle();
    backend.destroy();
    h.client.destroy();
    await settle();
    assert.equal(h.summaries[0]?.reason, 'SERVER_CLOSED');
    assertNothingHeld(h);
  });
});
