import type { AuthOutcome, SlotRelease } from '../events/contract.js';
import type { Socket } from 'node:net';
import { parseKexInit } from '../protocol/kexinit.js';
import { NewKeysWatcher } from '../protocol/ssh-packets.js';
import { holdsSeveralPackets, negotiateServerToClient, packetShape, type PacketShape } from '../protocol/smallest-packet.js';
import { addReadTap, removeReadTap, usesReusedReads } from '../net/reused-reads.js';
import type { SuccessShapes } from '../protocol/success-shapes.js';

export type { AuthOutcome, SlotRelease } from '../events/contract.js';

/**
 * Chunks up to this size are copied before a watcher may keep them (a partial packet).
 * A socket read is a 64 KiB allocation shrunk to the bytes read: keeping a small one
 * alive for the whole handshake pins a hole the next 64 KiB read cannot reuse, which
 * measured as ~60 KB of RSS per idle session. The copy comes from Node's shared pool.
 */
const COPY_BELOW_BYTES = 16 * 1024;

/**
 * sshd tells its listener that a login succeeded (the MaxStartups count drops) only after
 * its pre-authentication process has sent USERAUTH_SUCCESS and handed over: the slot is
 * released at the server's next flight (which the post-authentication process sends: its
 * host keys, or the answer to the client's next request), or when the grace period after
 * NEWKEYS ends for a client that asks for nothing more. A fixed 250 ms here was shorter
 * than the hand-over of an sshd starved of CPU, and sshd dropped the next connection.
 */

const detached = (chunk: Buffer): Buffer => (chunk.length < COPY_BELOW_BYTES ? Buffer.from(chunk) : chunk);

/** Told once, when the handshake slot may be released; an object, not a closure (see SpliceOwner). */
export interface HandshakeOwner {
  handshakeEnded(): void;
  /**
   * The client's identification line has ended (`line` undefined: it was not `SSH-…`); told
   * once, if it comes while watching, and only when `start` was told the line was not known yet.
   */
  clientIdentified(line: string | undefined): void;
}

export type HandshakeEnd = 'auth' | 'newkeys' | 'newkeys+grace' | 'splice';


export interface HandshakeTrackerOptions {
  readonly endsAt: HandshakeEnd;
  readonly graceMs: number;
  readonly maxHoldMs: number;
  /** `auth` with algorithms whose packet sizes are not known here: server replies after NEWKEYS that end the handshake. */
  readonly authFlights: number;
  /** This backend's SUCCESS-plus-next-packet sizes, learnt across its sessions. */
  readonly successShapes?: SuccessShapes;
}


type Direction = 'client' | 'server';

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
 * Decides when a spliced session's SSH handshake is over, and how its authentication
 * ended, from what a proxy can see: the transport is cleartext until both sides send
 * SSH_MSG_NEWKEYS, and both KEXINITs say which cipher and MAC follow. sshd counts a
 * connection against MaxStartups until user authentication succeeds. Authentication
 * is lock-step (the client asks, the server answers), and the server's one-byte
 * USERAUTH_SUCCESS is the smallest packet the negotiated algorithms can make: a server
 * flight of exactly that size is the end (src/protocol/smallest-packet.ts). It holds
 * for any number of keys or methods tried first. With algorithms not known here,
 * `authFlights` server replies stand in. `graceMs` after NEWKEYS bounds the slot for
 * logins that take long (a person typing); `newkeys+grace` always waits it.
 * `maxHoldMs` bounds it all; past it without success, the outcome is `grace-exceeded`.
 */
export class HandshakeTracker {
  private readonly options: HandshakeTrackerOptions;
  /** Dropped once told: a session past its handshake is not referenced from here. */
  private owner: HandshakeOwner | undefined;
  private holdTimer: NodeJS.Timeout | undefined;
  private graceTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  /**
   * What each side's bytes are for now: `watching` (framing, until both NEWKEYS), `flights`
   * (chunk sizes), or nothing (detached). One listener per side for the whole handshake.
   */
  private phase: 'watching' | 'flights' | undefined;
  private serverWatcher: NewKeysWatcher | undefined;
  private clientWatcher: NewKeysWatcher | undefined;
  private clientIdentReported = false;
  /** The sockets listened to, until detached. */
  private server: Socket | undefined;
  private client: Socket | undefined;
  private newKeys = false;
  private unreadable = false;
  private authSucceeded = false;
  private holdExpired = false;
  private shape: PacketShape | undefined;
  /**
   * The first answer to authentication held several packets: SUCCESS with the packet after
   * it, or a USERAUTH_BANNER with a FAILURE (sshd sends its banner with the first answer
   * only). Unless something later decides, the outcome is not known.
   */
  private firstAnswerSeveral = false;
  private serverReplies = 0;
  private clientFlights = 0;
  /**
   * Who spoke last after NEWKEYS: a chunk from the other side opens a new flight, and a
   * failed login ends with the server's answer.
   */
  private lastSpeaker: Direction | undefined;

  /** How the slot was released; undefined while the handshake runs. */
  released: SlotRelease | undefined;

  constructor(options: HandshakeTrackerOptions, owner: HandshakeOwner) {
    this.options = options;
    this.owner = owner;
  }

  /** How authentication ended, so far (final once the session has ended). */
  get outcome(): AuthOutcome {
    if (this.authSucceeded) return 'ok';
    if (this.holdExpired) return 'grace-exceeded';
    if (this.unreadable) return 'unknown';
    if (!this.newKeys) return 'noauth';
    if (this.shape === undefined || this.firstAnswerSeveral) return 'unknown';
    // The service request's answer alone is not an attempt: a second server reply is (some
    // clients send the service request inside their NEWKEYS segment, unseen as a flight).
    if (this.clientFlights < 1 || this.serverReplies < 2) return 'noauth';
    // A failed login ends with the server's last answer (OpenSSH's ssh and paramiko close on
    // it). A client that spoke after an answer and then left was most likely past a success
    // the proxy could not see (docs/penalties.md, limits): not charged.
    return this.lastSpeaker === 'server' ? 'authfail' : 'unknown';
  }

  /**
   * Starts watching both directions; `serverRest` / `clientBuffered` are bytes already seen past
   * the server's identification. `clientLineKnown`: the owner already has the client's line (it
   * came before the splice): it is skipped, not read again.
   */
  start(client: Socket, backend: Socket, serverRest: Buffer, clientBuffered: readonly Buffer[], clientLineKnown: boolean): void {
    if (this.options.endsAt === 'splice') this.releaseSlot('splice');
    this.holdTimer = setTimeout(() => this.expireHold(), this.options.maxHoldMs);
    this.serverWatcher = new NewKeysWatcher({ identLine: 'none' });
    this.clientWatcher = new NewKeysWatcher({ identLine: clientLineKnown ? 'skip' : 'read' });
    this.clientIdentReported = clientLineKnown;
    if (serverRest.length > 0) this.serverWatcher.push(detached(serverRest));
    for (const chunk of clientBuffered) this.clientWatcher.push(detached(chunk));
    this.phase = 'watching';
    this.reportClientIdentification();
    this.checkWatchers();
    if (this.phase === undefined) return;
    // Listening from now on even if a side is already at NEWKEYS: its next bytes open a flight.
    this.server = backend;
    this.client = client;
    listen(backend, this, SERVER_LISTENERS);
    listen(client, this, CLIENT_LISTENERS);
  }

  /** The session ended; `by`: which side closed, if the slot was still held. */
  stop(by: 'client-gone' | 'server-gone' = 'client-gone'): void {
    if (this.released === undefined) this.released = by;
    this.stopped = true;
    this.stopWatching();
  }

  /** A chunk from the server (`view`: only valid during the call, for reused reads); called by the socket's listener. */
  serverBytes(chunk: Buffer, view: boolean): void {
    if (this.phase === 'flights') this.serverFlight(chunk.length);
    else if (this.phase === 'watching') this.watchFraming(this.serverWatcher, chunk, view);
  }

  clientBytes(chunk: Buffer, view: boolean): void {
    if (this.phase === 'flights') this.clientFlight();
    else if (this.phase === 'watching') this.watchFraming(this.clientWatcher, chunk, view);
  }

  /** Once the client's identification line has gone by, its owner hears of it (the line is logged, its slot counts as spoken for). */
  private reportClientIdentification(): void {
    const watcher = this.clientWatcher;
    if (this.clientIdentReported || watcher === undefined || !watcher.identificationEnded) return;
    this.clientIdentReported = true;
    this.owner?.clientIdentified(watcher.identification);
  }

  /** Feeds one side's watcher (it may keep part of the chunk: a view is copied) until it is done. */
  private watchFraming(watcher: NewKeysWatcher | undefined, chunk: Buffer, view: boolean): void {
    if (watcher === undefined || watcher.state !== 'watching') return;
    const state = watcher.push(view ? Buffer.from(chunk) : detached(chunk));
    this.reportClientIdentification();
    if (state !== 'watching') this.checkWatchers();
  }

  private checkWatchers(): void {
    const server = this.serverWatcher;
    const client = this.clientWatcher;
    if (server === undefined || client === undefined) return;
    // Not cleartext SSH framing: the end cannot be seen, so assume it comes after the grace period.
    if (server.state === 'unreadable' || client.state === 'unreadable') this.afterUnreadable();
    else if (server.state === 'newkeys' && client.state === 'newkeys') this.afterNewKeys(shapeFor(client.kexinit, server.kexinit));
  }

  private afterUnreadable(): void {
    if (this.unreadable || this.stopped) return;
    this.unreadable = true;
    // Nothing more can be learnt from this stream.
    this.stopWatching();
    this.releaseSlotAfterGrace('unreadable');
  }

  private afterNewKeys(shape: PacketShape | undefined): void {
    if (this.newKeys || this.stopped) return;
    this.newKeys = true;
    this.shape = shape;
    this.serverWatcher = undefined;
    this.clientWatcher = undefined;
    // Flights are counted from the next chunk either way: what came with the NEWKEYS segments is not one.
    this.phase = 'flights';
    if (this.options.endsAt === 'newkeys') this.releaseSlot('newkeys');
    else this.releaseSlotAfterGrace('grace');
  }

  /** A server chunk after NEWKEYS; only its size matters, so nothing is copied or parsed. */
  private serverFlight(bytes: number): void {
    const shape = this.shape;
    if (this.authSucceeded && shape !== undefined) {
      // The post-authentication process speaks (its host keys): sshd's listener has counted the login.
      this.options.successShapes?.learn(shape.smallest, bytes);
      this.endAuthWatch();
      return;
    }
    if (this.lastSpeaker === 'server') return;
    this.lastSpeaker = 'server';
    this.serverReplies += 1;
    if (shape === undefined) {
      if (this.options.endsAt === 'auth' && this.serverReplies >= this.options.authFlights) {
        this.stopWatching();
        this.releaseSlot('auth');
      }
      return;
    }
    // SUCCESS and the post-authentication process's first packet, read together: a shape learnt
    // earlier, or (past the first answer, which may carry a banner) any flight of several packets:
    // during authentication sshd answers each request with one packet.
    const severalPackets = this.serverReplies >= 2 && holdsSeveralPackets(shape, bytes);
    if (severalPackets && this.serverReplies === 2) this.firstAnswerSeveral = true;
    const coalesced = this.options.successShapes?.isCoalescedSuccess(shape.smallest, bytes) === true || (severalPackets && this.serverReplies > 2);
    if (!coalesced && bytes !== shape.smallest) return;
    this.authSucceeded = true;
    if (coalesced || this.options.endsAt !== 'auth' || this.released !== undefined) {
      this.endAuthWatch();
      return;
    }
    // SUCCESS alone: wait for the next server flight, at most until the grace timer (pending: nothing was released) ends.
    clearTimeout(this.holdTimer);
    this.holdTimer = undefined;
  }

  private clientFlight(): void {
    if (this.lastSpeaker === 'client') return;
    this.lastSpeaker = 'client';
    this.clientFlights += 1;
  }

  /** Authentication succeeded and sshd has counted it: the watch is over, and so is the handshake. */
  private endAuthWatch(): void {
    this.stopWatching();
    if (this.options.endsAt === 'auth') this.releaseSlot('auth');
  }

  private releaseSlotAfterGrace(how: 'grace' | 'unreadable'): void {
    if (this.released !== undefined) return;
    this.graceTimer = setTimeout(() => (this.authSucceeded ? this.endAuthWatch() : this.releaseSlot(how)), this.options.graceMs);
  }

  private expireHold(): void {
    this.holdTimer = undefined;
    // Without known packet sizes a success could not have been seen: no verdict.
    this.holdExpired = !this.newKeys || (this.shape !== undefined && !this.firstAnswerSeveral);
    this.stopWatching();
    this.releaseSlot('maxHold');
  }

  private releaseSlot(how: SlotRelease): void {
    if (this.released !== undefined || this.stopped) return;
    this.released = how;
    clearTimeout(this.graceTimer);
    this.graceTimer = undefined;
    const owner = this.owner;
    this.owner = undefined;
    owner?.handshakeEnded();
  }

  private stopWatching(): void {
    clearTimeout(this.holdTimer);
    this.holdTimer = undefined;
    if (this.stopped) clearTimeout(this.graceTimer);
    this.phase = undefined;
    this.serverWatcher = undefined;
    this.clientWatcher = undefined;
    if (this.server !== undefined) unlisten(this.server, SERVER_LISTENERS);
    if (this.client !== undefined) unlisten(this.client, CLIENT_LISTENERS);
    this.server = undefined;
    this.client = undefined;
  }
}

function shapeFor(clientKexinit: Buffer | undefined, serverKexinit: Buffer | undefined): PacketShape | undefined {
  if (!clientKexinit || !serverKexinit) return undefined;
  const client = parseKexInit(clientKexinit);
  const server = parseKexInit(serverKexinit);
  if (!client.ok || !server.ok) return undefined;
  return packetShape(negotiateServerToClient(client.kexinit, server.kexinit));
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
function listen(socket: TrackedSocket, tracker: HandshakeTracker, listeners: SideListeners): void {
  socket[kTracker] = tracker;
  if (usesReusedReads(socket)) addReadTap(socket, listeners.tap);
  else socket.on('data', listeners.data);
}

function unlisten(socket: TrackedSocket, listeners: SideListeners): void {
  socket[kTracker] = undefined;
  if (usesReusedReads(socket)) removeReadTap(socket, listeners.tap);
  else socket.off('data', listeners.data);
}
