import type { Socket } from 'node:net';
import type { SplicedCloseCode } from '../errors.js';
import { setReadTarget, usesReusedReads } from '../net/reused-reads.js';

export interface SpliceOptions {
  /** Idle timeout on the client side (covers both directions); 0 = off. */
  readonly idleTimeoutMs: number;
  /** After one side half-closes, how long the other may keep going. */
  readonly finTimeoutMs: number;
  /**
   * How long a write may stay blocked (the peer reads nothing, so the reading side is
   * paused and cannot see its own peer leave); 0 = unbounded.
   */
  readonly writeStallMs?: number;
}

/** A listener's splice options from its timeouts: built once per listener (and reload), shared by its sessions. */
export function spliceOptionsFor(timeouts: { readonly clientIdle: number; readonly fin: number; readonly writeStall: number }): SpliceOptions {
  return { idleTimeoutMs: timeouts.clientIdle, finTimeoutMs: timeouts.fin, writeStallMs: timeouts.writeStall };
}

export interface SpliceResult {
  readonly reason: SplicedCloseCode;
  readonly bytesClientToServer: number;
  readonly bytesServerToClient: number;
}

/**
 * Told once, when both sides are gone. An object with a method rather than a callback:
 * the session is its own owner, so an idle splice keeps no closure alive.
 */
export interface SpliceOwner {
  spliceEnded(result: SpliceResult): void;
}

/**
 * The socket's splice, stored on the socket itself. It lets the event listeners below
 * be plain module functions shared by every session (`this` is the emitting socket)
 * instead of closures made per session: with thousands of idle sessions, stream.pipe()
 * and per-session arrow functions cost ~24 closures and their contexts per session.
 */
const kSplice = Symbol('splice');

/** TCP keepalive probes unanswered (ETIMEDOUT), or the route gone: the peer vanished without a FIN or RST. */
const LOST_PEER_ERRNOS: ReadonlySet<string> = new Set(['ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN']);
interface SplicedSocket extends Socket {
  [kSplice]?: Splice | undefined;
}

/**
 * Joins two sockets both ways with backpressure, passing FIN through (half-close),
 * and reports once when both are gone. `close(reason)` ends it early.
 */
export class Splice {
  readonly client: Socket;
  readonly backend: Socket;
  private readonly options: SpliceOptions;
  private readonly owner: SpliceOwner;
  /** What ended the splice: a timeout, a shutdown, a reset. Wins over a half-close. */
  private endReason: SplicedCloseCode | undefined;
  /** The first FIN seen: the reason when both sides simply closed. */
  private halfCloseReason: SplicedCloseCode | undefined;
  private finTimer: NodeJS.Timeout | undefined;
  /** Per stalled socket (the one whose writes are blocked): the timer bounding the stall. Made on the first stall. */
  private stallTimers: Map<Socket, NodeJS.Timeout> | undefined;
  private closedSockets = 0;
  private done = false;

  constructor(client: Socket, backend: Socket, options: SpliceOptions, owner: SpliceOwner) {
    this.client = client;
    this.backend = backend;
    this.options = options;
    this.owner = owner;
  }

  start(): void {
    const client = this.client as SplicedSocket;
    const backend = this.backend as SplicedSocket;
    client[kSplice] = this;
    backend[kSplice] = this;
    for (const socket of [client, backend]) {
      socket.on('error', onSocketError);
      socket.on('close', onSocketClose);
      socket.on('drain', onSocketDrain);
    }
    // A backend reading into a reused buffer (reused-reads.ts) has no 'data' events.
    if (usesReusedReads(backend)) setReadTarget(backend, onBackendRead);
    else backend.on('data', onSocketData);
    backend.on('end', onSocketEnd);
    if (this.options.idleTimeoutMs > 0) {
      client.setTimeout(this.options.idleTimeoutMs);
      client.on('timeout', onClientIdle);
    }
    client.on('data', onSocketData);
    client.on('end', onSocketEnd);
    client.resume();
    backend.resume();
  }

  /** Ends the splice now (idle/fin/drain timeout, write stall, shutdown). */
  close(reason: SplicedCloseCode): void {
    this.endReason ??= reason;
    this.client.destroy();
    this.backend.destroy();
  }

  /** A write to `socket` did not complete: the reading side pauses until it drains, for writeStallMs at most. */
  stalled(socket: Socket): void {
    const limitMs = this.options.writeStallMs ?? 0;
    if (limitMs <= 0 || this.stallTimers?.has(socket) === true || this.done) return;
    const reason = socket === this.client ? 'CLIENT_WRITE_STALL' : 'SERVER_WRITE_STALL';
    this.stallTimers ??= new Map();
    this.stallTimers.set(socket, setTimeout(() => this.close(reason), limitMs));
  }

  /** `socket` drained: its writes flow again. */
  drained(socket: Socket): void {
    const timer = this.stallTimers?.get(socket);
    if (timer === undefined) return;
    clearTimeout(timer);
    this.stallTimers?.delete(socket);
  }

  peerOf(socket: Socket): Socket {
    return socket === this.client ? this.backend : this.client;
  }

  /** A socket errored: ends both sides (reset, lost or closed, by which side). */
  failed(socket: Socket, error: NodeJS.ErrnoException): void {
    const client = socket === this.client;
    if (error.code === 'ECONNRESET' || error.code === 'EPIPE') this.close(client ? 'CLIENT_RESET' : 'SERVER_RESET');
    else if (error.code !== undefined && LOST_PEER_ERRNOS.has(error.code)) this.close(client ? 'CLIENT_LOST' : 'SERVER_LOST');
    else this.close(client ? 'CLIENT_CLOSED' : 'SERVER_CLOSED');
  }

  /** FIN from `socket`: passed on to the other side, which may keep sending until the fin timeout. */
  ended(socket: Socket): void {
    const peer = this.peerOf(socket);
    if (!peer.destroyed) peer.end();
    this.halfClosed(socket === this.client ? 'CLIENT_CLOSED' : 'SERVER_CLOSED');
  }

  /** `hadError`: Node saw the socket fail (a reset noticed on close, not always as an 'error' first). */
  socketClosed(socket: Socket, hadError: boolean): void {
    if (hadError) this.endReason ??= socket === this.client ? 'CLIENT_RESET' : 'SERVER_RESET';
    this.closedSockets += 1;
    if (this.closedSockets === 1) {
      const other = this.peerOf(socket);
      // Let the other side flush what it has queued, then finish its half; the fin timer bounds it.
      if (!other.destroyed) other.end();
      this.halfClosed(socket === this.client ? 'CLIENT_CLOSED' : 'SERVER_CLOSED');
      return;
    }
    this.finish();
  }

  private halfClosed(reason: SplicedCloseCode): void {
    this.halfCloseReason ??= reason;
    if (this.finTimer || this.options.finTimeoutMs === 0) return;
    this.finTimer = setTimeout(() => this.close('FIN_TIMEOUT'), this.options.finTimeoutMs);
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    if (this.finTimer) clearTimeout(this.finTimer);
    this.finTimer = undefined;
    for (const timer of this.stallTimers?.values() ?? []) clearTimeout(timer);
    this.stallTimers = undefined;
    this.client.setTimeout(0);
    this.client.off('timeout', onClientIdle);
    const client = this.client as SplicedSocket;
    const backend = this.backend as SplicedSocket;
    client[kSplice] = undefined;
    backend[kSplice] = undefined;
    if (usesReusedReads(backend)) setReadTarget(backend, undefined);
    this.owner.spliceEnded({
      reason: this.endReason ?? this.halfCloseReason ?? 'CLIENT_CLOSED',
      bytesClientToServer: backend.bytesWritten,
      bytesServerToClient: client.bytesWritten,
    });
  }
}

// Shared listeners (see kSplice): `this` is the socket that emitted.

function onSocketData(this: SplicedSocket, chunk: Buffer): void {
  const peer = this[kSplice]?.peerOf(this);
  if (!peer || peer.destroyed) return;
  // Backpressure: stop reading until the other side's buffer drains.
  if (!peer.write(chunk)) {
    this.pause();
    this[kSplice]?.stalled(peer);
  }
}

/**
 * Backend → client for a backend reading into a reused buffer: the view is only valid
 * now, and a write that did not complete synchronously still references it. If the
 * write asks for backpressure the backend pauses until 'drain', i.e. until everything
 * queued, this view included, is flushed: the buffer is free again by the next read.
 * If the write is queued below the high-water mark, reading goes on, so the reader
 * gets a new buffer next time (returns true) and the old one belongs to the write.
 */
function onBackendRead(this: SplicedSocket, chunk: Buffer): boolean {
  const peer = this[kSplice]?.client;
  if (!peer || peer.destroyed) return false;
  if (!peer.write(chunk)) {
    this.pause();
    this[kSplice]?.stalled(peer);
    return false;
  }
  return peer.writableLength > 0;
}

function onClientIdle(this: SplicedSocket): void {
  this[kSplice]?.close('IDLE_TIMEOUT');
}

function onSocketDrain(this: SplicedSocket): void {
  this[kSplice]?.drained(this);
  const peer = this[kSplice]?.peerOf(this);
  if (peer && !peer.destroyed && !peer.readableEnded) peer.resume();
}

function onSocketEnd(this: SplicedSocket): void {
  this[kSplice]?.ended(this);
}

function onSocketError(this: SplicedSocket, error: NodeJS.ErrnoException): void {
  this[kSplice]?.failed(this, error);
}

function onSocketClose(this: SplicedSocket, hadError: boolean): void {
  this[kSplice]?.socketClosed(this, hadError);
}
