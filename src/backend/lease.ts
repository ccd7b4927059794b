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

/** Told when a lease has released everything it held (the pool retires drained servers). */
export interface LeaseOwner {
  leaseClosed(server: BackendServer): void;
}

/**
 * A lease made of the tickets it holds; the owner is told once, after all are released.
 * A class rather than an object of closures: a spliced session keeps its lease for its
 * whole life, and an idle proxy holds thousands.
 */
class TicketLease implements Lease {
  readonly server: BackendServer;
  readonly prefetched?: AttemptSuccess;
  private readonly slot: Ticket;
  private readonly session: Ticket;
  private silent: Ticket | undefined;
  private readonly owner: LeaseOwner;
  private open = true;

  constructor(server: BackendServer, tickets: LeaseTickets, prefetched: AttemptSuccess | undefined, owner: LeaseOwner) {
    this.server = server;
    this.slot = tickets.slot;
    this.session = tickets.session;
    this.silent = tickets.silent;
    this.owner = owner;
    if (prefetched) this.prefetched = prefetched;
  }

  releaseSlot(): void {
    this.identified();
    this.slot.release();
  }

  identified(): void {
    this.silent?.release();
    this.silent = undefined;
  }

  close(): void {
    if (!this.open) return;
    this.open = false;
    this.session.release();
    this.releaseSlot();
    this.owner.leaseClosed(this.server);
  }
}

export function createLease(server: BackendServer, tickets: LeaseTickets, prefetched: AttemptSuccess | undefined, owner: LeaseOwner): Lease {
  return new TicketLease(server, tickets, prefetched, owner);
}
