import type { Ticket } from '../ticket.js';
import type { AttemptSuccess } from './attempt.js';
import type { BackendServer } from './server.js';

/** A connection prefetch opened earlier, handed to a lease with the slot it holds. */
export interface PrefetchedConnection {
  readonly success: AttemptSuccess;
  /** The handshake slot the connection held while it waited: the lease owns it now. */
  readonly slot: Ticket;
}

/** What the pool asks of banner prefetch (src/backend/prefetch.ts): ready connections per server. */
export interface PrefetchSource {
  /** Prefetched connections ready on this server now. */
  available(server: BackendServer): number;
  /** Hands over the oldest ready connection with its slot, or undefined (a miss). */
  take(server: BackendServer): PrefetchedConnection | undefined;
}

/** A session's hold on a server: one handshake slot plus one active-session count. */
export interface Lease {
  readonly server: BackendServer;
  /** Frees the handshake slot (idempotent); the session count stays until close(). */
  releaseSlot(): void;
  /** Frees everything the lease holds (idempotent). */
  close(): void;
  /** The client has sent its identification: the slot no longer counts against the silent share. */
  identified(): void;
  /** A prefetched connection (banner already verified) that comes with this lease's slot: splice it, do not connect. */
  readonly prefetched?: AttemptSuccess;
}

/** What a lease holds: a handshake slot, a session count, and while the client is silent, a place in the silent share. */
export interface LeaseTickets {
  readonly slot: Ticket;
  readonly session: Ticket;
  readonly silent: Ticket | undefined;
}

/** A lease made of the tickets it holds; `onClosed` runs once, after all are released. */
export function createLease(server: BackendServer, tickets: LeaseTickets, prefetched: AttemptSuccess | undefined, onClosed: () => void): Lease {
  let open = true;
  const { slot, session, silent } = tickets;
  return {
    server,
    releaseSlot: () => {
      silent?.release();
      slot.release();
    },
    identified: () => silent?.release(),
    ...(prefetched ? { prefetched } : {}),
    close: () => {
      if (!open) return;
      open = false;
      session.release();
      silent?.release();
      slot.release();
      onClosed();
    },
  };
}
