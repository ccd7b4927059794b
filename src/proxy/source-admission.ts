import type { SourceLimits, SourceVerdict } from './source-limits.js';

/**
 * How the listener admits a client's source, in the pool's shape: a verdict now (local
 * limits, or the store down), or undefined when the shared store must be asked; then
 * `admitLater` always answers on a later turn.
 */
export interface SourceAdmission {
  tryAdmit(address: string): SourceVerdict | undefined;
  admitLater(address: string, done: (verdict: SourceVerdict) => void): void;
}

/** Per-source limits of this process alone: always a verdict now. */
export function localSourceAdmission(limits: SourceLimits): SourceAdmission {
  return {
    tryAdmit: (address) => limits.admit(address),
    admitLater: (address, done) => setImmediate(() => done(limits.admit(address))),
  };
}
