import type { Socket } from 'node:net';
import type { BackendServer } from '../backend/server.js';
import type { PoolConfig } from '../config/schema.js';
import { addReadTap, removeReadTap, usesReusedReads } from '../net/reused-reads.js';
import { HandshakeJudge, type AuthOutcome, type HandshakeJudgeHost, type HandshakeJudgeOptions, type SlotRelease } from '../protocol/handshake-judge.js';

export type { AuthOutcome, HandshakeEnd, SlotRelease } from '../protocol/handshake-judge.js';

/** Told once, when the handshake slot may be released; an object, not a closure (see SpliceOwner). */
export interface HandshakeOwner {
  handshakeEnded(): void;
  /**
   * The client's identification line has ended (`line` undefined: it was not `SSH-…`); told
   * once, if it comes while watching, and only when `start` was told the line was not known yet.
   */
  clientIdentified(line: string | undefined): void;
}

type HandshakeSettings = PoolConfig['handshake'];

export interface HandshakeTrackerOptions extends HandshakeJudgeOptions {
  readonly graceMs: number;
  readonly maxHoldMs: number;
}

/**
 * A server's tracker options, made once per server and pool settings (a reload makes new
 * ones) and shared by its sessions: not an object per session.
 */
const optionsByServer = new WeakMap<BackendServer, { readonly settings: HandshakeSettings; readonly options: HandshakeTrackerOptions }>();
export function trackerOptionsFor(settings: HandshakeSettings, server: BackendServer): HandshakeTrackerOptions {
  const cached = optionsByServer.get(server);
  if (cached?.settings === settings) return cached.options;
  const options = { endsAt: settings.endsAt, graceMs: settings.grace, maxHoldMs: settings.maxHold, authFlights: settings.authFlights, successShapes: server.successShapes };
  optionsByServer.set(server, { settings, options });
  return options;
}

/**
 * The tracker watching a socket, stored on the socket so that the listeners at the end
 * of this file are module functions shared by every session (`this` is the socket),
 * not closures made per session and side.
 */
const kTracker = Symbol('handshakeTracker');
interface TrackedSocket extends Socket {
  [kTracker]?: HandshakeTracker | undefined;
}

/**
 * A spliced session's handshake judge (src/protocol/handshake-judge.ts) on live sockets:
 * taps both sides' reads into it, runs its hold and grace timers, and tells the session
 * when the handshake slot may go. What it decides is the judge's.
 */
export class HandshakeTracker implements HandshakeJudgeHost {
  private readonly options: HandshakeTrackerOptions;
  /** Dropped once told: a session past its handshake is not referenced from here. */
  private owner: HandshakeOwner | undefined;
  private judge: HandshakeJudge | undefined;
  private holdTimer: NodeJS.Timeout | undefined;
  private graceTimer: NodeJS.Timeout | undefined;
  /** The sockets tapped, until the watch ends. */
  private server: Socket | undefined;
  private client: Socket | undefined;

  constructor(options: HandshakeTrackerOptions, owner: HandshakeOwner) {
    this.options = options;
    this.owner = owner;
  }

  /** How the slot was released; undefined while the handshake runs. */
  get released(): SlotRelease | undefined {
    return this.judge?.released;
  }

  /** How authentication ended, so far (final once the session has ended). */
  get outcome(): AuthOutcome {
    return this.judge?.outcome ?? 'noauth';
  }

  /**
   * Starts watching both directions; `serverRest` / `clientBuffered` are bytes already seen past
   * the server's identification. `clientLineKnown`: the owner already has the client's line (it
   * came before the splice): it is skipped, not read again.
   */
  start(client: Socket, backend: Socket, serverRest: Buffer, clientBuffered: readonly Buffer[], clientLineKnown: boolean): void {
    const judge = new HandshakeJudge(this.options, this, clientLineKnown);
    this.judge = judge;
    this.holdTimer = setTimeout(() => judge.holdExpired(), this.options.maxHoldMs);
    judge.begin(serverRest, clientBuffered);
    if (!judge.watching) return;
    // Tapped from now on even if a side is already at NEWKEYS: its next bytes open a flight.
    this.server = backend;
    this.client = client;
    tap(backend, this, SERVER_LISTENERS);
    tap(client, this, CLIENT_LISTENERS);
  }

  /** The session ended; `by`: which side closed, if the slot was still held. */
  stop(by: 'client-gone' | 'server-gone' = 'client-gone'): void {
    this.judge?.end(by);
    this.owner = undefined;
    clearTimeout(this.graceTimer);
    this.graceTimer = undefined;
    this.watchEnded();
  }

  serverBytes(chunk: Buffer, borrowed: boolean): void {
    this.judge?.bytes('server', chunk, borrowed);
  }

  clientBytes(chunk: Buffer, borrowed: boolean): void {
    this.judge?.bytes('client', chunk, borrowed);
  }

  slotReleased(): void {
    clearTimeout(this.graceTimer);
    this.graceTimer = undefined;
    const owner = this.owner;
    this.owner = undefined;
    owner?.handshakeEnded();
  }

  clientIdentified(line: string | undefined): void {
    this.owner?.clientIdentified(line);
  }

  startGrace(): void {
    const judge = this.judge;
    if (judge === undefined || this.graceTimer !== undefined) return;
    this.graceTimer = setTimeout(() => {
      this.graceTimer = undefined;
      judge.graceEnded();
    }, this.options.graceMs);
  }

  holdLifted(): void {
    clearTimeout(this.holdTimer);
    this.holdTimer = undefined;
  }

  watchEnded(): void {
    this.holdLifted();
    if (this.server !== undefined) untap(this.server, SERVER_LISTENERS);
    if (this.client !== undefined) untap(this.client, CLIENT_LISTENERS);
    this.server = undefined;
    this.client = undefined;
  }
}

interface SideListeners {
  /** For a socket reading into reused buffers: a view valid only during the call. */
  readonly tap: (this: TrackedSocket, chunk: Buffer) => void;
  readonly data: (this: TrackedSocket, chunk: Buffer) => void;
}

const SERVER_LISTENERS: SideListeners = {
  tap(chunk) {
    this[kTracker]?.serverBytes(chunk, true);
  },
  data(chunk) {
    this[kTracker]?.serverBytes(chunk, false);
  },
};

const CLIENT_LISTENERS: SideListeners = {
  tap(chunk) {
    this[kTracker]?.clientBytes(chunk, true);
  },
  data(chunk) {
    this[kTracker]?.clientBytes(chunk, false);
  },
};

/** Hands every chunk the socket reads to `tracker`, whichever way the socket reads. */
function tap(socket: TrackedSocket, tracker: HandshakeTracker, listeners: SideListeners): void {
  socket[kTracker] = tracker;
  if (usesReusedReads(socket)) addReadTap(socket, listeners.tap);
  else socket.on('data', listeners.data);
}

function untap(socket: TrackedSocket, listeners: SideListeners): void {
  socket[kTracker] = undefined;
  if (usesReusedReads(socket)) removeReadTap(socket, listeners.tap);
  else socket.off('data', listeners.data);
}
