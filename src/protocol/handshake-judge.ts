import { parseKexInit } from './kexinit.js';
import { NewKeysWatcher } from './ssh-packets.js';
import { holdsSeveralPackets, negotiateServerToClient, packetShape, type PacketShape } from './smallest-packet.js';
import type { SuccessShapes } from './success-shapes.js';

/**
 * How a session's handshake slot was released, for the summary and a metric, so an
 * operator can see whether the end-of-handshake rule works for their clients:
 * `auth` (USERAUTH_SUCCESS seen, or the authFlights-th reply), `newkeys`, `grace` (the grace
 * period after NEWKEYS ran out first), `maxHold` (no NEWKEYS seen in time), `unreadable` (not
 * cleartext SSH framing: released after the grace period), `splice` (endsAt: splice),
 * `client-gone` / `server-gone` (the session ended before the handshake did).
 */
export type SlotRelease = 'auth' | 'newkeys' | 'grace' | 'maxHold' | 'unreadable' | 'splice' | 'client-gone' | 'server-gone';
/**
 * How a session's authentication ended, as sshd's PerSourcePenalties would charge it:
 * `ok` (USERAUTH_SUCCESS seen), `authfail` (the server answered authentication requests,
 * none succeeded), `noauth` (left before trying), `grace-exceeded` (no success within
 * maxHold), `unknown` (not readable as SSH, or algorithms whose sizes are not known here:
 * never charged).
 */
export type AuthOutcome = 'ok' | 'authfail' | 'noauth' | 'grace-exceeded' | 'unknown';
export type HandshakeEnd = 'auth' | 'newkeys' | 'newkeys+grace' | 'splice';
export type Side = 'client' | 'server';

export interface HandshakeJudgeOptions {
  readonly endsAt: HandshakeEnd;
  /** `auth` with algorithms whose packet sizes are not known here: server replies after NEWKEYS that end the handshake. */
  readonly authFlights: number;
  /** This backend's SUCCESS-plus-next-packet sizes, learnt across its sessions. */
  readonly successShapes?: SuccessShapes;
}

/**
 * What the judge asks of whoever feeds it: it keeps no timers and reads no sockets. Its
 * host runs the hold timer (from `begin` until `holdLifted` or `watchEnded`, then calls
 * `holdExpired()`) and the grace timer (from `startGrace` until the slot is released, then
 * calls `graceEnded()`), and stops feeding bytes at `watchEnded`.
 */
export interface HandshakeJudgeHost {
  slotReleased(how: SlotRelease): void;
  /** The client's identification line ended (`undefined`: it was not `SSH-…`); once, and only if the line was not known at `begin`. */
  clientIdentified(line: string | undefined): void;
  startGrace(): void;
  /** A lone SUCCESS: what remains is bounded by the grace timer, not the hold timer. */
  holdLifted(): void;
  /** Nothing more can be learnt from the bytes. */
  watchEnded(): void;
}

/**
 * Chunks up to this size are copied before a watcher may keep them (a partial packet).
 * A socket read is a 64 KiB allocation shrunk to the bytes read: keeping a small one
 * alive for the whole handshake pins a hole the next 64 KiB read cannot reuse, which
 * measured as ~60 KB of RSS per idle session. The copy comes from Node's shared pool.
 */
const COPY_BELOW_BYTES = 16 * 1024;
const detached = (chunk: Buffer): Buffer => (chunk.length < COPY_BELOW_BYTES ? Buffer.from(chunk) : chunk);

/** Counted per flight (consecutive chunks from one side) once both sides are past NEWKEYS. */
interface Flights {
  readonly shape: PacketShape | undefined;
  serverReplies: number;
  clientFlights: number;
  /** A chunk from the other side opens a new flight; a failed login ends with the server's answer. */
  lastSpeaker: Side | undefined;
  /**
   * The first answer to authentication held several packets: SUCCESS with the packet after
   * it, or a USERAUTH_BANNER with a FAILURE (sshd sends its banner with the first answer
   * only). Unless something later decides, the outcome is not known.
   */
  firstAnswerSeveral: boolean;
}

type JudgeState =
  | { readonly phase: 'watching'; readonly server: NewKeysWatcher; readonly client: NewKeysWatcher }
  | ({ readonly phase: 'flights' } & Flights)
  /** A lone USERAUTH_SUCCESS: the slot goes at the server's next flight or the grace timer. */
  | { readonly phase: 'success-pending'; readonly shape: PacketShape }
  | { readonly phase: 'decided'; readonly outcome: AuthOutcome };

/**
 * Decides when a spliced session's SSH handshake is over, and how its authentication
 * ended, from what a proxy can see: the transport is cleartext until both sides send
 * SSH_MSG_NEWKEYS, and both KEXINITs say which cipher and MAC follow. sshd counts a
 * connection against MaxStartups until user authentication succeeds. Authentication
 * is lock-step (the client asks, the server answers), and the server's one-byte
 * USERAUTH_SUCCESS is the smallest packet the negotiated algorithms can make: a server
 * flight of exactly that size is the end (smallest-packet.ts). It holds for any number
 * of keys or methods tried first. With algorithms not known here, `authFlights` server
 * replies stand in. The grace period after NEWKEYS bounds the slot for logins that take
 * long (a person typing); `newkeys+grace` always waits it. The hold timer bounds it all;
 * past it without success, the outcome is `grace-exceeded`.
 *
 * sshd tells its listener that a login succeeded (the MaxStartups count drops) only after
 * its pre-authentication process has sent USERAUTH_SUCCESS and handed over: the slot is
 * released at the server's next flight (which the post-authentication process sends: its
 * host keys, or the answer to the client's next request), or when the grace period ends
 * for a client that asks for nothing more.
 *
 * Pure: fed bytes per side and timer events, it tells its host what follows. Its tests
 * replay recorded sessions (test/fixtures/flights/).
 */
export class HandshakeJudge {
  private readonly options: HandshakeJudgeOptions;
  /** Dropped once the session has ended: nothing is told after that. */
  private host: HandshakeJudgeHost | undefined;
  private state: JudgeState;
  private clientIdentReported = false;
  /** What the grace timer's end releases the slot as: the usual bound, or a stream that could not be read. */
  private graceRelease: 'grace' | 'unreadable' = 'grace';
  /** How the slot was released; undefined while the handshake runs. */
  released: SlotRelease | undefined;

  /**
   * `clientLineKnown`: the host has the client's identification line already (it came
   * before the splice): it is skipped, not read again.
   */
  constructor(options: HandshakeJudgeOptions, host: HandshakeJudgeHost, clientLineKnown: boolean) {
    this.options = options;
    this.host = host;
    this.state = { phase: 'watching', server: new NewKeysWatcher({ identLine: 'none' }), client: new NewKeysWatcher({ identLine: clientLineKnown ? 'skip' : 'read' }) };
    this.clientIdentReported = clientLineKnown;
  }

  get phase(): JudgeState['phase'] {
    return this.state.phase;
  }

  /** How authentication ended, so far (final once the session has ended). */
  get outcome(): AuthOutcome {
    const state = this.state;
    switch (state.phase) {
      case 'watching':
        return 'noauth';
      case 'success-pending':
        return 'ok';
      case 'decided':
        return state.outcome;
      case 'flights':
        return flightsOutcome(state);
    }
  }

  /** The splice starts: `serverRest` / `clientBuffered` are the bytes already seen past the server's identification. */
  begin(serverRest: Buffer, clientBuffered: readonly Buffer[]): void {
    if (this.options.endsAt === 'splice') this.release('splice');
    const state = this.state;
    if (state.phase !== 'watching') return;
    if (serverRest.length > 0) state.server.push(detached(serverRest));
    for (const chunk of clientBuffered) state.client.push(detached(chunk));
    this.reportClientIdentification(state.client);
    this.judgeWatchers(state.server, state.client);
  }

  /** Whether bytes still matter: false once the watch is over (the host stops feeding them). */
  get watching(): boolean {
    return this.state.phase !== 'decided';
  }

  /** One chunk from `side`. `borrowed`: only valid during the call (reused reads): copied if kept. */
  bytes(side: Side, chunk: Buffer, borrowed = false): void {
    const state = this.state;
    if (state.phase === 'watching') {
      const watcher = side === 'server' ? state.server : state.client;
      if (watcher.state !== 'watching') return;
      const now = watcher.push(borrowed ? Buffer.from(chunk) : detached(chunk));
      if (side === 'client') this.reportClientIdentification(watcher);
      if (now !== 'watching') this.judgeWatchers(state.server, state.client);
    } else if (state.phase === 'success-pending') {
      // The post-authentication process speaks (its host keys): sshd's listener has counted the login.
      if (side === 'server') {
        this.options.successShapes?.learn(state.shape.smallest, chunk.length);
        this.succeeded();
      }
    } else if (state.phase === 'flights') {
      if (side === 'server') this.serverFlight(state, chunk.length);
      else if (state.lastSpeaker !== 'client') {
        state.lastSpeaker = 'client';
        state.clientFlights += 1;
      }
    }
  }

  /** The hold timer ran out. */
  holdExpired(): void {
    const state = this.state;
    if (state.phase !== 'watching' && state.phase !== 'flights') return;
    // Without known packet sizes a success could not have been seen: no verdict.
    const exceeded = state.phase === 'watching' || (state.shape !== undefined && !state.firstAnswerSeveral);
    this.decide(exceeded ? 'grace-exceeded' : 'unknown');
    this.release('maxHold');
  }

  /** The grace timer ran out. */
  graceEnded(): void {
    if (this.state.phase === 'success-pending') this.succeeded();
    else this.release(this.graceRelease);
  }

  /** The session ended; `by`: which side closed, if the slot was still held. */
  end(by: 'client-gone' | 'server-gone'): void {
    if (this.released === undefined) this.released = by;
    this.host = undefined;
  }

  private reportClientIdentification(client: NewKeysWatcher): void {
    if (this.clientIdentReported || !client.identificationEnded) return;
    this.clientIdentReported = true;
    this.host?.clientIdentified(client.identification);
  }

  private judgeWatchers(server: NewKeysWatcher, client: NewKeysWatcher): void {
    if (server.state === 'unreadable' || client.state === 'unreadable') {
      // Not cleartext SSH framing: the end cannot be seen, so assume it comes after the grace period.
      this.decide('unknown');
      this.startGrace('unreadable');
    } else if (server.state === 'newkeys' && client.state === 'newkeys') {
      // Flights are counted from the next chunk: what came with the NEWKEYS segments is not one.
      this.state = { phase: 'flights', shape: shapeFor(client.kexinit, server.kexinit), serverReplies: 0, clientFlights: 0, lastSpeaker: undefined, firstAnswerSeveral: false };
      if (this.options.endsAt === 'newkeys') this.release('newkeys');
      else this.startGrace('grace');
    }
  }

  /** A server chunk after NEWKEYS; only its size matters, so nothing is copied or parsed. */
  private serverFlight(flights: Flights, bytes: number): void {
    if (flights.lastSpeaker === 'server') return;
    flights.lastSpeaker = 'server';
    flights.serverReplies += 1;
    const shape = flights.shape;
    if (shape === undefined) {
      if (this.options.endsAt === 'auth' && flights.serverReplies >= this.options.authFlights) {
        this.decide('unknown');
        this.release('auth');
      }
      return;
    }
    // SUCCESS and the post-authentication process's first packet, read together: a shape learnt
    // earlier, or (past the first answer, which may carry a banner) any flight of several packets:
    // during authentication sshd answers each request with one packet.
    const severalPackets = flights.serverReplies >= 2 && holdsSeveralPackets(shape, bytes);
    if (severalPackets && flights.serverReplies === 2) flights.firstAnswerSeveral = true;
    const coalesced = this.options.successShapes?.isCoalescedSuccess(shape.smallest, bytes) === true || (severalPackets && flights.serverReplies > 2);
    if (!coalesced && bytes !== shape.smallest) return;
    if (coalesced || this.options.endsAt !== 'auth' || this.released !== undefined) {
      this.succeeded();
      return;
    }
    this.state = { phase: 'success-pending', shape };
    this.host?.holdLifted();
  }

  private startGrace(release: 'grace' | 'unreadable'): void {
    if (this.released !== undefined) return;
    this.graceRelease = release;
    this.host?.startGrace();
  }

  /** Authentication succeeded and sshd has counted it: the watch is over, and so is the handshake. */
  private succeeded(): void {
    this.decide('ok');
    if (this.options.endsAt === 'auth') this.release('auth');
  }

  private decide(outcome: AuthOutcome): void {
    if (this.state.phase === 'decided') return;
    this.state = { phase: 'decided', outcome };
    this.host?.watchEnded();
  }

  private release(how: SlotRelease): void {
    if (this.released !== undefined || this.host === undefined) return;
    this.released = how;
    this.host.slotReleased(how);
  }
}

/** The outcome of a session that ended while its flights were counted. */
function flightsOutcome(flights: Flights): AuthOutcome {
  if (flights.shape === undefined || flights.firstAnswerSeveral) return 'unknown';
  // The service request's answer alone is not an attempt: a second server reply is (some
  // clients send the service request inside their NEWKEYS segment, unseen as a flight).
  if (flights.clientFlights < 1 || flights.serverReplies < 2) return 'noauth';
  // A failed login ends with the server's last answer (OpenSSH's ssh and paramiko close on
  // it). A client that spoke after an answer and then left was most likely past a success
  // the proxy could not see (docs/penalties.md, limits): not charged.
  return flights.lastSpeaker === 'server' ? 'authfail' : 'unknown';
}

function shapeFor(clientKexinit: Buffer | undefined, serverKexinit: Buffer | undefined): PacketShape | undefined {
  if (!clientKexinit || !serverKexinit) return undefined;
  const client = parseKexInit(clientKexinit);
  const server = parseKexInit(serverKexinit);
  if (!client.ok || !server.ok) return undefined;
  return packetShape(negotiateServerToClient(client.kexinit, server.kexinit));
}
