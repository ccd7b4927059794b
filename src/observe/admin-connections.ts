import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/**
 * The admin endpoint's connection limit, kept so that probes are always answered. At the
 * limit a new connection is not refused (a refused kubelet probe restarts the pod and drops
 * every SSH session): the oldest connection that is not being answered goes instead, a
 * client still trickling its headers (a slowloris) or an idle keep-alive one. Only when every
 * connection is in the middle of its answer is the new one closed. A probe sends its request
 * at once and is answered at once, so a flood of slow clients cannot starve it.
 */
export class AdminConnections {
  /** In accept order: the first not-busy one is the oldest to evict. */
  private readonly open = new Set<Socket>();
  private readonly answering = new Set<Socket>();
  /** Connections evicted to make room, and new ones closed at a full house (for tests and logs). */
  evicted = 0;
  refused = 0;

  constructor(private readonly max: number) {}

  get size(): number {
    return this.open.size;
  }

  accept(socket: Socket): void {
    if (this.open.size >= this.max && !this.evictOne()) {
      this.refused += 1;
      socket.destroy();
      return;
    }
    this.open.add(socket);
    socket.once('close', () => {
      this.open.delete(socket);
      this.answering.delete(socket);
    });
  }

  /** A request on `socket` is being answered until its response finishes (or the socket goes). */
  busy(socket: Socket, response: ServerResponse): void {
    this.answering.add(socket);
    const done = (): void => {
      this.answering.delete(socket);
    };
    response.once('finish', done);
    response.once('close', done);
  }

  private evictOne(): boolean {
    for (const socket of this.open) {
      if (this.answering.has(socket)) continue;
      this.open.delete(socket);
      this.evicted += 1;
      socket.destroy();
      return true;
    }
    return false;
  }
}
