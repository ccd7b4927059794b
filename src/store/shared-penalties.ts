import type { AuthOutcome } from '../events/contract.js';
import type { PenaltyCharger } from '../proxy/penalty-charger.js';
import type { PenaltyActivation, PenaltyKind, SourcePenalties } from '../proxy/penalties.js';
import { PENALTY_CHARGE, PENALTY_LOAD } from './scripts.js';
import { script } from './store-connection.js';
import type { StoreContext } from './store-context.js';

const CHARGE = script(PENALTY_CHARGE);
const LOAD = script(PENALTY_LOAD);

/**
 * Per-source penalties counted across replicas: every charge goes to one record per
 * source in the store (sshd's arithmetic, src/store/scripts.ts), and every charge that
 * leaves the source refused is published, so each replica refuses it at accept from its
 * own table, with no store call on the accept path. While the store is down, charges
 * are kept locally as without a store.
 */
export class SharedPenalties implements PenaltyCharger {
  private readonly store: StoreContext;
  private readonly penalties: SourcePenalties;

  constructor(store: StoreContext, penalties: SourcePenalties) {
    this.store = store;
    this.penalties = penalties;
  }

  /** Resolves once the charge is recorded (in the store, or here if it did not answer). */
  async charge(address: string, outcome: AuthOutcome | undefined, activated: (activation: PenaltyActivation) => void): Promise<void> {
    const charge = this.penalties.chargeFor(address, outcome);
    if (!charge) return;
    const local = (reason: 'down' | 'timeout' | 'error'): void => {
      this.store.events.emit('store-fallback', { what: 'penalty', reason });
      const activation = this.penalties.charge(address, outcome);
      if (activation) activated(activation);
    };
    if (!this.store.up) {
      local('down');
      return;
    }
    const { keys } = this.store;
    const args = [charge.ms, charge.minMs, charge.maxMs, charge.kind, keys.channel, charge.key];
    const result = await this.store.run<[number, number, number, number]>('penalty-charge', CHARGE, [keys.penalty(charge.key), keys.penalised], args);
    if (!result.ok) {
      local(result.reason);
      return;
    }
    const [activatedNow, active, remainingMs, charges] = result.value;
    if (active !== 1) return;
    this.penalties.adopt(charge.key, charge.kind, remainingMs, charges);
    if (activatedNow === 1) activated({ key: charge.key, kind: charge.kind, remainingMs, charges });
  }

  /** A "penalised" message from the store (any replica's charge). */
  published(fields: readonly string[]): void {
    const [key, remaining, kind, charges] = fields;
    if (key === undefined || !isPenaltyKind(kind)) return;
    const remainingMs = Number(remaining);
    if (this.penalties.adopt(key, kind, remainingMs, Number(charges))) this.store.events.emit('penalty-shared', { key, kind, remainingMs, charges: Number(charges) });
  }

  /** Loads the sources refused now (on connecting: penalties decided while this replica was away). */
  async load(limit: number): Promise<boolean> {
    const { keys } = this.store;
    const result = await this.store.run<(string | number)[]>('penalty-load', LOAD, [keys.penalised], [keys.prefix, limit]);
    if (!result.ok) return false;
    const rows = result.value;
    for (let index = 0; index + 3 < rows.length; index += 4) {
      this.published([String(rows[index]), String(rows[index + 1]), String(rows[index + 2]), String(rows[index + 3])]);
    }
    return true;
  }
}

function isPenaltyKind(kind: string | undefined): kind is PenaltyKind {
  return kind === 'authfail' || kind === 'noauth' || kind === 'grace-exceeded';
}
