import type { SourceLimits, SourceVerdict } from './source-limits.js';

/** How the listener admits a client's source: at once (local limits), or once the shared store has answered. */
export interface SourceAdmission {
  admit(address: string, done: (verdict: SourceVerdict) => void): void;
}

/** Per-source limits of this process alone. */
export function localSourceAdmission(limits: SourceLimits): SourceAdmission {
  return { admit: (address, done) => done(limits.admit(address)) };
}
