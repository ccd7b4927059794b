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

export type HandshakeEnd = 'newkeys' | 'newkeys+grace' | 'splice';

export interface HandshakeTrackerOptions {
  readonly endsAt: HandshakeEnd;
  readonly graceMs: number;
  readonly maxHoldMs: number;
}

/**
 * Decides when a spliced session's SSH handshake is over, from what a proxy can see:
 * the transport is cleartext until both sides send SSH_MSG_NEWKEYS. `newkeys+grace`
 * adds a grace period for user authentication, which usually needs one or two round
 * trips more. `maxHoldMs` bounds it for streams the watcher cannot read.
 */
export class HandshakeTracker {
  private readonly options: HandshakeTrackerOptions;
  private readonly onEnd: () => void;
  private timer: NodeJS.Timeout | undefined;
  private ended = false;
  private readonly detach: (() => void)[] = [];

  constructor(options: HandshakeTrackerOptions, onEnd: () => void) {
    this.options = options;
    this.onEnd = onEnd;
  }

  /** Starts watching both directions; `serverRest` / `clientBuffered` are bytes already seen past the identification. */
  start(client: Socket, backend: Socket, serverRest: Buffer, clientBuffered: readonly Buffer[]): void {
    if (this.options.endsAt === 'splice') {
      this.finish();
      return;
    }
    this.timer = setTimeout(() => this.finish(), this.options.maxHoldMs);
    const server = new NewKeysWatcher({ skipIdentLine: false });
    const fromClient = new NewKeysWatcher({ skipIdentLine: true });
    const check = (): void => {
      const states = [server.state, fromClient.state];
      // Not cleartext SSH framing: the end cannot be seen, so assume it comes after the grace period.
      if (states.includes('unreadable')) this.afterNewKeys();
      else if (states.every((state) => state === 'newkeys')) this.afterNewKeys();
    };
    if (serverRest.length > 0) server.push(detached(serverRest));
    for (const chunk of clientBuffered) fromClient.push(detached(chunk));
    check();
    if (this.ended) return;
    if (server.state === 'watching') this.watch(backend, server, check);
    if (fromClient.state === 'watching') this.watch(client, fromClient, check);
  }

  stop(): void {
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

  private afterNewKeys(): void {
    if (this.options.endsAt === 'newkeys') {
      this.finish();
      return;
    }
    this.clear();
    this.timer = setTimeout(() => this.finish(), this.options.graceMs);
  }

  private finish(): void {
    if (this.ended) return;
    this.ended = true;
    this.clear();
    this.onEnd();
  }

  private clear(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    for (const detach of this.detach.splice(0)) detach();
  }
}
