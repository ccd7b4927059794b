import type { Socket } from 'node:net';
import { parseKexInit } from '../protocol/kexinit.js';
import { NewKeysWatcher } from '../protocol/ssh-packets.js';
import { negotiateServerToClient, smallestPacketBytes } from '../protocol/smallest-packet.js';
import { addReadTap, usesReusedReads } from './reused-reads.js';
import type { SuccessShapes } from '../protocol/success-shapes.js';

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
 * released at the server's next flight (which the post-authentication process sends), or
 * this long after SUCCESS for a client that asks for nothing more.
 */
const AFTER_SUCCESS_MS = 250;

const detached = (chunk: Buffer): Buffer => (chunk.length < COPY_BELOW_BYTES ? Buffer.from(chunk) : chunk);

export type HandshakeEnd = 'auth' | 'newkeys' | 'newkeys+grace' | 'splice';

/**
 * How a session's handshake slot was released, for the summary and a metric, so an
 * operator can see whether the end-of-handshake rule works for their clients:
 * `auth` (USERAUTH_SUCCESS seen, or the authFlights-th reply), `newkeys`, `grace` (the grace period after NEWKEYS ran
 * out first), `maxHold` (no NEWKEYS seen in time), `unreadable` (not cleartext SSH framing:
 * released after the grace period), `splice` (endsAt: splice), `client-gone` / `server-gone`
 * (the session ended before the handshake did).
 */
export type SlotRelease = 'auth' | 'newkeys' | 'grace' | 'maxHold' | 'unreadable' | 'splice' | 'client-gone' | 'server-gone';

export interface HandshakeTrackerOptions {
  readonly endsAt: HandshakeEnd;
  readonly graceMs: number;
  readonly maxHoldMs: number;
  /** `auth` with algorithms whose packet sizes are not known here: server replies after NEWKEYS that end the handshake. */
  readonly authFlights: number;
  /** This backend's SUCCESS-plus-next-packet sizes, learnt across its sessions. */
  readonly successShapes?: SuccessShapes;
}

/**
 * How a session's authentication ended, as sshd's PerSourcePenalties would charge it:
 * `ok` (USERAUTH_SUCCESS seen), `authfail` (the server answered authentication requests,
 * none succeeded), `noauth` (left before trying), `grace-exceeded` (no success within
 * maxHold), `unknown` (not readable as SSH, or algorithms whose sizes are not known here:
 * never charged).
 */
export type AuthOutcome = 'ok' | 'authfail' | 'noauth' | 'grace-exceeded' | 'unknown';

type Direction = 'client' | 'server';

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
  /** Dropped once called: a session past its handshake keeps no callback. */
  private onEnd: (() => void) | undefined;
  private holdTimer: NodeJS.Timeout | undefined;
  private graceTimer: NodeJS.Timeout | undefined;
  private settleTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** Replaced, not pushed to (a pushed-to array reserves 17 slots, for at most two). */
  private detach: readonly (() => void)[] = [];
  private newKeys = false;
  private unreadable = false;
  private authSucceeded = false;
  private holdExpired = false;
  private smallest: number | undefined;
  private serverReplies = 0;
  private clientFlights = 0;
  /** Who spoke last after NEWKEYS: a failed login ends with the server's answer. */
  private lastSpeaker: Direction | undefined;

  /** How the slot was released; undefined while the handshake runs. */
  released: SlotRelease | undefined;

  constructor(options: HandshakeTrackerOptions, onEnd: () => void) {
    this.options = options;
    this.onEnd = onEnd;
  }

  /** How authentication ended, so far (final once the session has ended). */
  get outcome(): AuthOutcome {
    if (this.authSucceeded) return 'ok';
    if (this.holdExpired) return 'grace-exceeded';
    if (this.unreadable) return 'unknown';
    if (!this.newKeys) return 'noauth';
    if (this.smallest === undefined) return 'unknown';
    // The service request's answer alone is not an attempt: a second server reply is (some
    // clients send the service request inside their NEWKEYS segment, unseen as a flight).
    if (this.clientFlights < 1 || this.serverReplies < 2) return 'noauth';
    // A failed login ends with the server's last answer; a session whose client spoke last
    // may be a success the proxy did not see (docs/penalties.md, limits): the lesser charge.
    return this.lastSpeaker === 'server' ? 'authfail' : 'noauth';
  }

  /** Starts watching both directions; `serverRest` / `clientBuffered` are bytes already seen past the identification. */
  start(client: Socket, backend: Socket, serverRest: Buffer, clientBuffered: readonly Buffer[]): void {
    if (this.options.endsAt === 'splice') this.releaseSlot('splice');
    this.holdTimer = setTimeout(() => this.expireHold(), this.options.maxHoldMs);
    const server = new NewKeysWatcher({ skipIdentLine: false });
    const fromClient = new NewKeysWatcher({ skipIdentLine: true });
    const check = (): void => {
      const states = [server.state, fromClient.state];
      // Not cleartext SSH framing: the end cannot be seen, so assume it comes after the grace period.
      if (states.includes('unreadable')) this.afterUnreadable();
      else if (states.every((state) => state === 'newkeys')) this.afterNewKeys(client, backend, smallestFor(fromClient.kexinit, server.kexinit));
    };
    if (serverRest.length > 0) server.push(detached(serverRest));
    for (const chunk of clientBuffered) fromClient.push(detached(chunk));
    check();
    if (this.newKeys || this.unreadable) return;
    if (server.state === 'watching') this.watch(backend, server, check);
    if (fromClient.state === 'watching') this.watch(client, fromClient, check);
  }

  /** The session ended; `by`: which side closed, if the slot was still held. */
  stop(by: 'client-gone' | 'server-gone' = 'client-gone'): void {
    if (this.released === undefined) this.released = by;
    this.stopped = true;
    this.stopWatching();
  }

  private watch(socket: Socket, watcher: NewKeysWatcher, check: () => void): void {
    let stop: () => void;
    const push = (chunk: Buffer): void => {
      if (watcher.push(chunk) !== 'watching') {
        stop();
        check();
      }
    };
    if (usesReusedReads(socket)) {
      // The chunk is a view into a reused read buffer: the watcher may keep part of it.
      stop = addReadTap(socket, (view) => push(Buffer.from(view)));
    } else {
      const onData = (chunk: Buffer): void => push(detached(chunk));
      socket.on('data', onData);
      stop = (): void => void socket.off('data', onData);
    }
    this.detach = [...this.detach, stop];
  }

  private afterUnreadable(): void {
    if (this.unreadable || this.stopped) return;
    this.unreadable = true;
    // Nothing more can be learnt from this stream.
    this.stopWatching();
    this.releaseSlotAfterGrace('unreadable');
  }

  private afterNewKeys(client: Socket, backend: Socket, smallest: number | undefined): void {
    if (this.newKeys || this.stopped) return;
    this.newKeys = true;
    this.smallest = smallest;
    this.detachAll();
    if (this.options.endsAt === 'newkeys') this.releaseSlot('newkeys');
    else this.releaseSlotAfterGrace('grace');
    this.watchFlights(client, backend);
  }

  /** Counts flights after NEWKEYS; only chunk sizes matter, so nothing is copied or parsed. */
  private watchFlights(client: Socket, backend: Socket): void {
    // What came with the NEWKEYS segments is not seen again: the next chunk either way opens a flight.
    let last: Direction | undefined;
    const fromServer = (bytes: number): void => {
      if (last === 'server') return;
      last = 'server';
      this.lastSpeaker = 'server';
      this.serverReplies += 1;
      if (this.smallest === undefined) {
        if (this.options.endsAt === 'auth' && this.serverReplies >= this.options.authFlights) {
          this.stopWatching();
          this.releaseSlot('auth');
        }
        return;
      }
      const smallest = this.smallest;
      if (this.authSucceeded) {
        // The post-authentication process speaks: sshd's listener has counted the login.
        this.options.successShapes?.learn(smallest, bytes);
        this.endAuthWatch();
        return;
      }
      // SUCCESS and the post-authentication process's first packet, read together: same as above.
      const coalesced = this.options.successShapes?.isCoalescedSuccess(smallest, bytes) === true;
      if (!coalesced && bytes !== smallest) return;
      this.authSucceeded = true;
      if (coalesced || this.options.endsAt !== 'auth' || this.released !== undefined) {
        this.endAuthWatch();
        return;
      }
      // SUCCESS alone: wait for the next server flight, at most AFTER_SUCCESS_MS.
      clearTimeout(this.holdTimer);
      this.holdTimer = undefined;
      this.settleTimer = setTimeout(() => this.endAuthWatch(), AFTER_SUCCESS_MS);
    };
    const fromClient = (): void => {
      if (last === 'client') return;
      last = 'client';
      this.lastSpeaker = 'client';
      this.clientFlights += 1;
    };
    this.detach = [...this.detach, onChunk(backend, fromServer), onChunk(client, fromClient)];
  }

  /** Authentication succeeded and sshd has counted it: the watch is over, and so is the handshake. */
  private endAuthWatch(): void {
    this.stopWatching();
    if (this.options.endsAt === 'auth') this.releaseSlot('auth');
  }

  private releaseSlotAfterGrace(how: 'grace' | 'unreadable'): void {
    if (this.released !== undefined) return;
    this.graceTimer = setTimeout(() => this.releaseSlot(how), this.options.graceMs);
  }

  private expireHold(): void {
    this.holdTimer = undefined;
    // Without known packet sizes a success could not have been seen: no verdict.
    this.holdExpired = !this.newKeys || this.smallest !== undefined;
    this.stopWatching();
    this.releaseSlot('maxHold');
  }

  private releaseSlot(how: SlotRelease): void {
    if (this.released !== undefined || this.stopped) return;
    this.released = how;
    clearTimeout(this.graceTimer);
    clearTimeout(this.settleTimer);
    this.graceTimer = undefined;
    this.settleTimer = undefined;
    const onEnd = this.onEnd;
    this.onEnd = undefined;
    onEnd?.();
  }

  private detachAll(): void {
    const detach = this.detach;
    this.detach = [];
    for (const stop of detach) stop();
  }

  private stopWatching(): void {
    clearTimeout(this.holdTimer);
    this.holdTimer = undefined;
    if (this.stopped) {
      clearTimeout(this.graceTimer);
      clearTimeout(this.settleTimer);
    }
    this.detachAll();
  }
}

function smallestFor(clientKexinit: Buffer | undefined, serverKexinit: Buffer | undefined): number | undefined {
  if (!clientKexinit || !serverKexinit) return undefined;
  const client = parseKexInit(clientKexinit);
  const server = parseKexInit(serverKexinit);
  if (!client.ok || !server.ok) return undefined;
  return smallestPacketBytes(negotiateServerToClient(client.kexinit, server.kexinit));
}

/** Calls `seen` with the size of every chunk the socket reads, whichever way it reads; returns the detach. */
function onChunk(socket: Socket, seen: (bytes: number) => void): () => void {
  if (usesReusedReads(socket)) return addReadTap(socket, (view) => seen(view.length));
  const onData = (chunk: Buffer): void => seen(chunk.length);
  socket.on('data', onData);
  return () => void socket.off('data', onData);
}
