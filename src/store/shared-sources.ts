import type { SourceAdmission } from '../proxy/source-admission.js';
import type { SourceLimits, SourceVerdict } from '../proxy/source-limits.js';
import { CountedTicket, ticket } from '../ticket.js';
import { SOURCE_ADMIT, SOURCE_RELEASE } from './scripts.js';
import { script } from './store-connection.js';
import { countKeyTtlMs, type StoreContext } from './store-context.js';

const ADMIT = script(SOURCE_ADMIT);
const RELEASE = script(SOURCE_RELEASE);

/**
 * Per-source limits counted across replicas: open connections from a source, summed
 * over all live replicas, and one token bucket per source, both in the store. Each
 * replica also counts its own connections locally: that is what it asserts to the store
 * at every renewal, and what it falls back on (scaled by the fallback share) while the store is down.
 */
export class SharedSources implements SourceAdmission {
  private readonly store: StoreContext;
  private readonly limits: SourceLimits;

  constructor(store: StoreContext, limits: SourceLimits) {
    this.store = store;
    this.limits = limits;
  }

  /** A verdict now without limits or with the store down; undefined when the store must be asked. */
  tryAdmit(address: string): SourceVerdict | undefined {
    if (!this.limits.enabled) return this.limits.admit(address);
    if (!this.store.up) return this.fallback(address, 'down');
    return undefined;
  }

  /** Asks the store (one round trip); `done` is called once it answered, or did not in time. */
  admitLater(address: string, done: (verdict: SourceVerdict) => void): void {
    const limits = this.limits;
    const key = limits.keyFor(address);
    const { perSourceConnections, perSourceRate } = limits.settingsInForce;
    const { keys, replica, settings } = this.store;
    const late = (value: [number, string, number, number]): void => {
      if (value[0] === 1) this.giveBack(key);
    };
    const args = [keys.prefix, replica, perSourceConnections, perSourceRate, countKeyTtlMs(settings)];
    void this.store.run<[number, string, number, number]>('source-admit', ADMIT, [keys.source(key), keys.rate(key)], args, late).then((result) => {
      if (!result.ok) {
        done(this.fallback(address, result.reason));
        return;
      }
      const [granted, limit, open, expired] = result.value;
      if (expired > 0) this.store.events.emit('store-leases-expired', { count: expired });
      if (granted === 1) {
        const hold = new CountedTicket(limits.record(key), () => this.giveBack(key), this.store);
        hold.counted = true;
        done({ ok: true, key, release: () => hold.release() });
        return;
      }
      if (limit === 'rate') done({ ok: false, key, code: 'PER_SOURCE_RATE', message: `${key} opened more than ${perSourceRate} connections per second across replicas` });
      else done({ ok: false, key, code: 'PER_SOURCE_LIMIT', message: `${key} already has ${open} connections across replicas (limit ${perSourceConnections})` });
    });
  }

  /** Sources with connections open here, by store key: what this replica asserts to the store. */
  *holdings(): Generator<[string, number]> {
    for (const [key, count] of this.limits.openCounts()) yield [this.store.keys.source(key), count];
  }

  /** No answer: this replica's own count against its share of each limit. */
  private fallback(address: string, reason: 'down' | 'timeout' | 'error'): SourceVerdict {
    this.store.events.emit('store-fallback', { what: 'source', reason });
    const verdict = this.limits.admit(address, this.store.fallbackShare);
    if (!verdict.ok) return verdict;
    // Not counted by the store yet; it will be from the next renewal on, and then given back.
    const hold = new CountedTicket(ticket(verdict.release), () => this.giveBack(verdict.key), this.store);
    return { ok: true, key: verdict.key, release: () => hold.release() };
  }

  private giveBack(key: string): void {
    if (!this.store.up) return;
    void this.store.run('source-release', RELEASE, [this.store.keys.source(key)], [this.store.replica]);
  }
}
