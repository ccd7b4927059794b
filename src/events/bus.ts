import { EventEmitter } from 'node:events';
import type { ProxyEventMap } from './contract.js';

export type * from './contract.js';

type Listener = (...args: unknown[]) => unknown;

/**
 * The core's event bus: metrics and logs subscribe; the core imports neither.
 *
 * An observer is a guest: `emit` calls each listener inside its own try/catch, so a
 * listener that throws (prom-client rejecting a label, a log transport failing) never
 * reaches the socket handler that emitted, and the listeners after it still run. The
 * error goes to `onObserverError` and is counted. (node:diagnostics_channel isolates
 * the publisher too, but rethrows a subscriber's error on the next tick as an uncaught
 * exception, which would end the process: the opposite of what we want here.)
 */
export class ProxyEvents extends EventEmitter<ProxyEventMap> {
  /** Listener errors caught so far (exported as sshproxy_observer_errors_total). */
  observerErrors = 0;
  /** Where a caught listener error goes (the runtime logs it); must not throw. */
  onObserverError: (event: string, error: unknown) => void = () => {};

  override emit<K extends keyof ProxyEventMap>(name: K, ...args: ProxyEventMap[K]): boolean {
    // Most events have one or two observers, or none: no array is made for none.
    if (this.listenerCount(name) === 0) return false;
    const listeners = (this as EventEmitter).rawListeners(name) as Listener[];
    for (const listener of listeners) {
      try {
        listener.apply(this, args);
      } catch (error) {
        this.observerErrors += 1;
        try {
          this.onObserverError(name, error);
        } catch {
          // The error sink itself failed: the count above still records it.
        }
      }
    }
    return listeners.length > 0;
  }
}

/** Subscribes and returns the matching unsubscribe. */
export function subscribe<K extends keyof ProxyEventMap>(events: ProxyEvents, name: K, handler: (...args: ProxyEventMap[K]) => void): () => void {
  const emitter = events as EventEmitter;
  const listener = handler as Listener;
  emitter.on(name, listener);
  return () => emitter.off(name, listener);
}
