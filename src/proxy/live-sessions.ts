import { normaliseAddress } from '../net/address.js';

/** A spliced session as the admin lookup tells it: who the client is, for the port sshd logged. */
export interface LiveSession {
  readonly sessionId: number;
  readonly listener: string;
  readonly pool: string;
  readonly server: string;
  readonly client: string;
  readonly clientPort: number | undefined;
  /** The backend connection's own end: what sshd logs as `from <address> port <port>`. */
  readonly backendLocalAddress: string;
  readonly backendLocalPort: number;
  /** Date.now() at the splice (formatted only when asked for). */
  readonly splicedAtMs: number;
}

const keyOf = (address: string, port: number): string => `${normaliseAddress(address) ?? address}|${port}`;

/**
 * Spliced sessions by their backend connection's local address and port, so an operator
 * holding sshd's `from A port P` line finds the client behind it (GET /api/session). One
 * map entry per spliced session, gone when it closes: the index is bounded by the
 * connection limit and a lookup costs one map read.
 */
export class LiveSessions {
  private readonly byBackendEnd = new Map<string, LiveSession>();

  get size(): number {
    return this.byBackendEnd.size;
  }

  add(session: LiveSession): void {
    this.byBackendEnd.set(keyOf(session.backendLocalAddress, session.backendLocalPort), session);
  }

  /** Removes `session` (not a newer one that reused the same address and port). */
  remove(session: LiveSession): void {
    const key = keyOf(session.backendLocalAddress, session.backendLocalPort);
    if (this.byBackendEnd.get(key) === session) this.byBackendEnd.delete(key);
  }

  find(address: string, port: number): LiveSession | undefined {
    return this.byBackendEnd.get(keyOf(address, port));
  }
}
