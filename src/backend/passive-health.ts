import type { AttemptFailureCode } from '../errors.js';
import type { BackendServer } from './server.js';

/**
 * Passive health (outlier detection, as Envoy calls it): every session attempt is
 * evidence. `threshold` consecutive failed attempts on a server mark it DOWN early,
 * without waiting for `fall` active checks; active checks (`rise` successes) bring
 * it back. Any attempt failure counts (refused, timeout, reset, throttled, not SSH)
 * but the proxy's own resource errors (LOCAL_RESOURCE, SOURCE_UNUSABLE), a refusal of one client (SOURCE_REFUSED) and a client whose algorithms the server lacks (NO_COMMON_ALGORITHMS); one success resets the count. Returns true when the threshold was just reached.
 */
export function recordAttemptOutcome(server: BackendServer, failure: AttemptFailureCode | undefined, threshold: number): boolean {
  // The proxy ran out of descriptors or ports, or this one client's algorithms do not suit the
  // server: nothing was learnt about the server's health (nor a success: the count stays).
  if (failure === 'LOCAL_RESOURCE' || failure === 'NO_COMMON_ALGORITHMS' || failure === 'SOURCE_UNUSABLE' || failure === 'SOURCE_REFUSED') return false;
  return server.recordAttempt(failure !== undefined, threshold);
}

/**
 * Servers marked DOWN by passive health while active checks are off: nothing else
 * would bring them back, so each comes back UP after one check interval.
 */
export class PassiveEjections {
  private readonly timers = new Map<BackendServer, NodeJS.Timeout>();

  eject(server: BackendServer, forMs: number, onExpired: (server: BackendServer) => void): void {
    clearTimeout(this.timers.get(server));
    const timer = setTimeout(() => {
      this.timers.delete(server);
      onExpired(server);
    }, forMs);
    this.timers.set(server, timer);
  }

  clear(): void {
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }
}
