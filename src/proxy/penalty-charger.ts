import type { AuthOutcome } from '../events/contract.js';
import type { PenaltyActivation, SourcePenalties } from './penalties.js';

/** How a finished session is charged to its source: here alone, or in the shared store. */
export interface PenaltyCharger {
  /** `activated` runs if this charge turned the source penalised. */
  charge(address: string, outcome: AuthOutcome | undefined, activated: (activation: PenaltyActivation) => void): Promise<void> | void;
}

export function localPenaltyCharger(penalties: SourcePenalties): PenaltyCharger {
  return {
    charge: (address, outcome, activated) => {
      const activation = penalties.charge(address, outcome);
      if (activation) activated(activation);
    },
  };
}
