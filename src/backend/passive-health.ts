import type { AttemptFailureCode } from '../errors.js';
import type { BackendServer } from './server.js';

/**
 * Passive health (outlier detection, as Envoy calls it): every session attempt is
 * evidence. `threshold` consecutive failed attempts on a server mark it DOWN early,
 * without waiting for `fall` active checks; active checks (`rise` successes) bring
 * it back. Any attempt failure counts (refused, timeout, reset, throttled, not SSH)
 * but the proxy's own resource errors (LOCAL_RESOURCE); one success resets the count. Returns true when the threshold was just reached.
 */
export function recordAttemptOutcome(server: BackendServer, failure: AttemptFailureCode | undefined, threshold: number): boolean {
  // The proxy ran out of descriptors or ports: nothing was learnt about the server.
  if (failure === 'LOCAL_RESOURCE') return false;
  if (failure === undefined) {
    server.consecutiveFailures = 0;
    return false;
  }
  server.consecutiveFailures += 1;
  return threshold > 0 && server.consecutiveFailures >= threshold && server.health === 'UP';
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
