import type { Socket } from 'node:net';
import type { SplicedCloseCode } from '../errors.js';

export interface SpliceOptions {
  /** Idle timeout on the client side (covers both directions); 0 = off. */
  readonly idleTimeoutMs: number;
  /** After one side half-closes, how long the other may keep going. */
  readonly finTimeoutMs: number;
}

export interface SpliceResult {
  readonly reason: SplicedCloseCode;
  readonly bytesClientToServer: number;
  readonly bytesServerToClient: number;
}

/**
 * Joins two sockets both ways with backpressure, passing FIN through (half-close),
 * and reports once when both are gone. `close(reason)` ends it early.
 */
export class Splice {
  private readonly client: Socket;
  private readonly backend: Socket;
  private readonly options: SpliceOptions;
  private readonly onDone: (result: SpliceResult) => void;
  private reason: SplicedCloseCode | undefined;
  private finTimer: NodeJS.Timeout | undefined;
  private closedSockets = 0;
  private done = false;

  constructor(client: Socket, backend: Socket, options: SpliceOptions, onDone: (result: SpliceResult) => void) {
    this.client = client;
    this.backend = backend;
    this.options = options;
    this.onDone = onDone;
  }

  /** `clientEnded`: the client already sent FIN before the splice. */
  start(clientEnded: boolean): void {
    const { client, backend } = this;
    client.on('error', (error: NodeJS.ErrnoException) => this.fail(resetOr(error, 'CLIENT_RESET', 'CLIENT_CLOSED')));
    backend.on('error', (error: NodeJS.ErrnoException) => this.fail(resetOr(error, 'SERVER_RESET', 'SERVER_CLOSED')));
    client.on('end', () => this.halfClosed('CLIENT_CLOSED'));
    backend.on('end', () => this.halfClosed('SERVER_CLOSED'));
    client.on('close', () => this.socketClosed(backend));
    backend.on('close', () => this.socketClosed(client));
    if (this.options.idleTimeoutMs > 0) {
      client.setTimeout(this.options.idleTimeoutMs, () => this.close('IDLE_TIMEOUT'));
    }
    backend.pipe(client);
    if (clientEnded) {
      backend.end();
      this.halfClosed('CLIENT_CLOSED');
    } else {
      client.pipe(backend);
    }
    client.resume();
    backend.resume();
  }

  /** Ends the splice now (idle/fin/drain timeout, shutdown). */
  close(reason: SplicedCloseCode): void {
    this.reason ??= reason;
    this.client.destroy();
    this.backend.destroy();
  }

  private fail(reason: SplicedCloseCode): void {
    this.close(reason);
  }

  private halfClosed(reason: SplicedCloseCode): void {
    this.reason ??= reason;
    if (this.finTimer || this.options.finTimeoutMs === 0) return;
    this.finTimer = setTimeout(() => this.close('FIN_TIMEOUT'), this.options.finTimeoutMs);
  }

  private socketClosed(other: Socket): void {
    this.closedSockets += 1;
    if (this.closedSockets === 1) {
      // Let the other side flush what it has queued, then finish its half; the fin timer bounds it.
      if (!other.destroyed) other.end();
      this.halfClosed(other === this.backend ? 'CLIENT_CLOSED' : 'SERVER_CLOSED');
      return;
    }
    this.finish();
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    if (this.finTimer) clearTimeout(this.finTimer);
    this.finTimer = undefined;
    this.client.setTimeout(0);
    this.onDone({
      reason: this.reason ?? 'CLIENT_CLOSED',
      bytesClientToServer: this.backend.bytesWritten,
      bytesServerToClient: this.client.bytesWritten,
    });
  }
}

function resetOr<T extends SplicedCloseCode>(error: NodeJS.ErrnoException, reset: T, closed: T): T {
  return error.code === 'ECONNRESET' || error.code === 'EPIPE' ? reset : closed;
}
