import type { Socket } from 'node:net';
import { NewKeysWatcher } from '../protocol/ssh-packets.js';
import { addReadTap, usesReusedReads } from './reused-reads.js';

/**
 * Chunks up to this size are copied before a watcher may keep them (a partial packet).
 * A socket read is a 64 KiB allocation shrunk to the bytes read: keeping a small one
 * alive for the whole handshake pins a hole the next 64 KiB read cannot reuse, which
 * measured as ~60 KB of RSS per idle session. The copy comes from Node's shared pool.
 */
const COPY_BELOW_BYTES = 16 * 1024;

const detached = (chunk: Buffer): Buffer => (chunk.length < COPY_BELOW_BYTES ? Buffer.from(chunk) : chunk);

export type HandshakeEnd = 'auth' | 'newkeys' | 'newkeys+grace' | 'splice';

/**
 * How a session's handshake slot was released, for the summary and a metric, so an
 * operator can see whether the end-of-handshake rule works for their clients:
 * `auth` (the authFlights-th reply), `newkeys`, `grace` (the grace period after NEWKEYS ran
 * out first), `maxHold` (no NEWKEYS seen in time), `unreadable` (not cleartext SSH framing:
 * released after the grace period), `splice` (endsAt: splice), `client-gone` / `server-gone`
 * (the session ended before the handshake did).
 */
export type SlotRelease = 'auth' | 'newkeys' | 'grace' | 'maxHold' | 'unreadable' | 'splice' | 'client-gone' | 'server-gone';

export interface HandshakeTrackerOptions {
  readonly endsAt: HandshakeEnd;
  readonly graceMs: number;
  readonly maxHoldMs: number;
  /** `auth`: server replies after NEWKEYS that end the handshake. */
  readonly authFlights: number;
}

type Direction = 'client' | 'server';

/**
 * Decides when a spliced session's SSH handshake is over, from what a proxy can see:
 * the transport is cleartext until both sides send SSH_MSG_NEWKEYS. sshd counts a
 * connection against MaxStartups until user authentication succeeds, which takes a few
 * encrypted round trips more. `auth` counts them: each server reply (a flight of server
 * bytes after client bytes) after NEWKEYS is one step (SERVICE_ACCEPT, then one per
 * authentication message; publickey with OpenSSH is none → FAILURE, query → PK_OK,
 * signature → SUCCESS: 4), bounded by `graceMs` after NEWKEYS for logins that take
 * longer (a person typing a password). `newkeys+grace` waits the grace period always.
 * `maxHoldMs` bounds it all for streams the watcher cannot read.
 */
export class HandshakeTracker {
  private readonly options: HandshakeTrackerOptions;
  private readonly onEnd: () => void;
  private timer: NodeJS.Timeout | undefined;
  private ended = false;
  private readonly detach: (() => void)[] = [];

  /** How the slot was released; undefined while the handshake runs. */
  released: SlotRelease | undefined;

  constructor(options: HandshakeTrackerOptions, onEnd: () => void) {
    this.options = options;
    this.onEnd = onEnd;
  }

  /** Starts watching both directions; `serverRest` / `clientBuffered` are bytes already seen past the identification. */
  start(client: Socket, backend: Socket, serverRest: Buffer, clientBuffered: readonly Buffer[]): void {
    if (this.options.endsAt === 'splice') {
      this.finish('splice');
      return;
    }
    this.timer = setTimeout(() => this.finish('maxHold'), this.options.maxHoldMs);
    const server = new NewKeysWatcher({ skipIdentLine: false });
    const fromClient = new NewKeysWatcher({ skipIdentLine: true });
    const check = (completedBy: Direction): void => {
      const states = [server.state, fromClient.state];
      // Not cleartext SSH framing: the end cannot be seen, so assume it comes after the grace period.
      if (states.includes('unreadable')) this.afterNewKeys(undefined);
      else if (states.every((state) => state === 'newkeys')) this.afterNewKeys({ client, backend, completedBy });
    };
    if (serverRest.length > 0) server.push(detached(serverRest));
    for (const chunk of clientBuffered) fromClient.push(detached(chunk));
    check('client');
    if (this.ended) return;
    if (server.state === 'watching') this.watch(backend, server, () => check('server'));
    if (fromClient.state === 'watching') this.watch(client, fromClient, () => check('client'));
  }

  /** The session ended; `by`: which side closed, if the handshake had not ended yet. */
  stop(by: 'client-gone' | 'server-gone' = 'client-gone'): void {
    if (!this.ended) this.released = by;
    this.ended = true;
    this.clear();
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
    this.detach.push(stop);
  }

  /** `sockets`: present when both NEWKEYS were seen (absent for an unreadable stream). */
  private afterNewKeys(sockets: { client: Socket; backend: Socket; completedBy: Direction } | undefined): void {
    if (this.options.endsAt === 'newkeys' && sockets) {
      this.finish('newkeys');
      return;
    }
    this.clear();
    this.timer = setTimeout(() => this.finish(sockets ? 'grace' : 'unreadable'), this.options.graceMs);
    if (this.options.endsAt === 'auth' && sockets) this.countAuthFlights(sockets.client, sockets.backend, sockets.completedBy);
  }

  /** Counts server replies; only chunk arrival matters, so nothing is copied or parsed. */
  private countAuthFlights(client: Socket, backend: Socket, completedBy: Direction): void {
    let last = completedBy;
    let flights = 0;
    const fromServer = (): void => {
      if (last === 'server') return;
      last = 'server';
      flights += 1;
      if (flights >= this.options.authFlights) this.finish('auth');
    };
    const fromClient = (): void => {
      last = 'client';
    };
    this.detach.push(onChunk(backend, fromServer), onChunk(client, fromClient));
  }

  private finish(how: SlotRelease): void {
    if (this.ended) return;
    this.ended = true;
    this.released = how;
    this.clear();
    this.onEnd();
  }

  private clear(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    for (const detach of this.detach.splice(0)) detach();
  }
}

/** Calls `seen` for every chunk the socket reads, whichever way it reads; returns the detach. */
function onChunk(socket: Socket, seen: () => void): () => void {
  if (usesReusedReads(socket)) return addReadTap(socket, seen);
  socket.on('data', seen);
  return () => void socket.off('data', seen);
}
