import { createHash } from 'node:crypto';
import type { BackendServer } from './server.js';

export type BalanceAlgorithm = 'roundrobin' | 'leastconn' | 'source';

/** Picks one server among candidates; candidates are already filtered for health and exclusions. */
export interface Balancer {
  /** True when a client must keep its server: the pool then waits for that server's slot instead of picking another. */
  readonly sticky?: boolean;
  pick(candidates: readonly BackendServer[], clientKey: string): BackendServer | undefined;
  /** The server left the pool: drop what is kept for it. */
  forget?(server: BackendServer): void;
}

/**
 * Smooth weighted round-robin (the nginx algorithm): spreads a server's turns evenly
 * instead of in bursts, and stays fair when the candidate set changes.
 */
export class RoundRobinBalancer implements Balancer {
  private readonly current = new Map<BackendServer, number>();

  pick(candidates: readonly BackendServer[]): BackendServer | undefined {
    let best: BackendServer | undefined;
    let bestScore = -Infinity;
    let total = 0;
    for (const server of candidates) {
      const weight = Math.max(server.weight, 1);
      const score = (this.current.get(server) ?? 0) + weight;
      this.current.set(server, score);
      total += weight;
      if (score > bestScore) {
        bestScore = score;
        best = server;
      }
    }
    if (best) this.current.set(best, bestScore - total);
    return best;
  }

  forget(server: BackendServer): void {
    this.current.delete(server);
  }
}

/** Fewest active sessions per unit of weight; ties go round-robin so equal servers share. */
export class LeastConnBalancer implements Balancer {
  private tieBreak = 0;

  pick(candidates: readonly BackendServer[]): BackendServer | undefined {
    let best: BackendServer[] = [];
    let bestLoad = Infinity;
    for (const server of candidates) {
      const load = server.activeSessions / Math.max(server.weight, 1);
      if (load < bestLoad) {
        bestLoad = load;
        best = [server];
      } else if (load === bestLoad) {
        best.push(server);
      }
    }
    if (best.length === 0) return undefined;
    this.tieBreak = (this.tieBreak + 1) % best.length;
    return best[this.tieBreak];
  }
}

/**
 * Weighted rendezvous (highest random weight) hashing of the client address:
 * a client keeps its server as long as that server stays a candidate, and when
 * a server leaves only its own clients move.
 */
export class SourceHashBalancer implements Balancer {
  readonly sticky = true;

  pick(candidates: readonly BackendServer[], clientKey: string): BackendServer | undefined {
    let best: BackendServer | undefined;
    let bestScore = -Infinity;
    for (const server of candidates) {
      const score = rendezvousScore(clientKey, server);
      if (score > bestScore) {
        bestScore = score;
        best = server;
      }
    }
    return best;
  }
}

function rendezvousScore(clientKey: string, server: BackendServer): number {
  const digest = createHash('sha256').update(clientKey).update('\0').update(server.name).digest();
  // 52 bits mapped into (0, 1); -weight / ln(u) is the weighted HRW score.
  const unit = (Number(digest.readBigUInt64BE(0) >> 12n) + 0.5) / 2 ** 52;
  return -Math.max(server.weight, 1) / Math.log(unit);
}

export function createBalancer(algorithm: BalanceAlgorithm): Balancer {
  switch (algorithm) {
    case 'roundrobin':
      return new RoundRobinBalancer();
    case 'leastconn':
      return new LeastConnBalancer();
    case 'source':
      return new SourceHashBalancer();
  }
}
