import type { Socket } from 'node:net';
import { SshPacketReader } from '../protocol/ssh-packets.js';
import type { Ticket } from '../ticket.js';
import type { AttemptSuccess } from './attempt.js';
import type { BackendServer } from './server.js';

/** Why a ready connection was discarded as unusable. */
export type PrefetchDiscardReason = 'BACKEND_CLOSED' | 'BACKEND_RESET' | 'INVALID_DATA' | 'TOO_MUCH_DATA';

/** Bytes a server may send after its identification while the connection waits (a KEXINIT is ~1-2 KiB). */
const MAX_IDLE_BYTES = 64 * 1024;

/**
 * One prefetched connection waiting for a client: identification verified, its
 * handshake slot held. It is read while it waits: bytes after the identification are
 * kept byte-exact (some servers send KEXINIT at once) as long as they frame as SSH
 * packets; a close, a reset, a DISCONNECT or anything else makes it unusable.
 */
export class ReadyConnection {
  readonly server: BackendServer;
  readonly socket: Socket;
  readonly slot: Ticket;
  /** performance.now() when the TCP connect started: the backend's view of the connection's age. */
  readonly openedAt: number;
  retireTimer: NodeJS.Timeout | undefined;
  private readonly success: AttemptSuccess;
  private readonly idleChunks: Buffer[] = [];
  private idleBytes = 0;
  private readonly reader = new SshPacketReader();
  private readonly onUnusable: (connection: ReadyConnection, reason: PrefetchDiscardReason) => void;

  constructor(
    server: BackendServer,
    success: AttemptSuccess,
    slot: Ticket,
    openedAt: number,
    onUnusable: (connection: ReadyConnection, reason: PrefetchDiscardReason) => void,
  ) {
    this.server = server;
    this.success = success;
    this.socket = success.socket;
    this.slot = slot;
    this.openedAt = openedAt;
    this.onUnusable = onUnusable;
  }

  get ageMs(): number {
    return performance.now() - this.openedAt;
  }

  get usable(): boolean {
    return !this.socket.destroyed && !this.socket.readableEnded;
  }

  /** Starts watching; returns false (and watches nothing) if the bytes that came with the identification are already unusable. */
  watch(): boolean {
    this.socket.on('data', this.onData);
    this.socket.on('end', this.onEnd);
    this.socket.on('close', this.onEnd);
    this.socket.on('error', this.onError);
    this.success.releaseErrorGuard();
    const rest = this.success.received.subarray(this.success.identEndOffset);
    if (rest.length > 0 && !this.acceptable(rest)) {
      this.detach();
      return false;
    }
    this.socket.resume();
    return true;
  }

  detach(): void {
    this.socket.off('data', this.onData);
    this.socket.off('end', this.onEnd);
    this.socket.off('close', this.onEnd);
    this.socket.off('error', this.onError);
  }

  /** Hands the connection to a session: paused, with a placeholder error listener until the splice attaches its own. */
  handOver(): AttemptSuccess {
    this.detach();
    clearTimeout(this.retireTimer);
    this.socket.pause();
    const guard = (): void => {};
    this.socket.on('error', guard);
    const { success } = this;
    const received = this.idleBytes === 0 ? success.received : Buffer.concat([success.received, ...this.idleChunks]);
    return { ...success, received, releaseErrorGuard: () => this.socket.off('error', guard) };
  }

  /** Frames bytes as SSH packets; false for anything else, or a DISCONNECT (the server gave up on us). */
  private acceptable(chunk: Buffer): boolean {
    const read = this.reader.push(chunk);
    return read.state !== 'error' && !read.payloads.some((payload) => payload[0] === 1);
  }

  private readonly onData = (chunk: Buffer): void => {
    this.idleChunks.push(chunk);
    this.idleBytes += chunk.length;
    if (this.idleBytes > MAX_IDLE_BYTES) this.onUnusable(this, 'TOO_MUCH_DATA');
    else if (!this.acceptable(chunk)) this.onUnusable(this, 'INVALID_DATA');
  };

  private readonly onEnd = (): void => this.onUnusable(this, 'BACKEND_CLOSED');

  private readonly onError = (error: NodeJS.ErrnoException): void => {
    this.onUnusable(this, error.code === 'ECONNRESET' ? 'BACKEND_RESET' : 'BACKEND_CLOSED');
  };
}
