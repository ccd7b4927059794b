/** What every fault case reports: sessions lost, bytes intact, descriptors and memory around it, metric accounting. */
import { readdirSync } from 'node:fs';

export interface FaultResult {
  readonly name: string;
  /** What the case did, in a line. */
  readonly scenario: string;
  /** Sessions that should have survived (or logins that should have succeeded) but did not. */
  readonly sessionsLost: number;
  /** Byte streams checked by sha256 end to end, and how many differed. */
  readonly streamsChecked: number;
  readonly streamsCorrupt: number;
  readonly fdsBefore: number;
  readonly fdsAfter: number;
  readonly rssBeforeMiB: number;
  readonly rssAfterMiB: number;
  /** Whether the proxy's own counters agree with what the case observed. */
  readonly accountingOk: boolean;
  /** Case-specific figures (direct vs proxy, counts by reason, ...). */
  readonly figures: Readonly<Record<string, unknown>>;
  readonly ok: boolean;
}

export function openDescriptors(): number {
  return readdirSync('/proc/self/fd').length;
}

export function rssMiB(): number {
  return Math.round((process.memoryUsage().rss / 1024 / 1024) * 10) / 10;
}

/** Runs `body` between two readings of this process's descriptors and memory (after a GC when exposed). */
export async function measured(
  name: string,
  scenario: string,
  body: () => Promise<Omit<FaultResult, 'name' | 'scenario' | 'fdsBefore' | 'fdsAfter' | 'rssBeforeMiB' | 'rssAfterMiB' | 'ok'>>,
): Promise<FaultResult> {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const fdsBefore = openDescriptors();
  const rssBeforeMiB = rssMiB();
  const outcome = await body();
  // Closes already under way land asynchronously and no event says "all closed": look
  // again (bounded, 5 s) until the count is back, and report what it is then.
  let fdsAfter = openDescriptors();
  for (let look = 0; look < 50 && fdsAfter > fdsBefore; look += 1) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    fdsAfter = openDescriptors();
  }
  gc?.();
  const ok = outcome.sessionsLost === 0 && outcome.streamsCorrupt === 0 && outcome.accountingOk && fdsAfter <= fdsBefore;
  return { name, scenario, ...outcome, fdsBefore, fdsAfter, rssBeforeMiB, rssAfterMiB: rssMiB(), ok };
}

/** A loopback source address for client `index` of `sources` (127.0.1.10 … 127.0.1.109; 127.0.0.1 for one). */
export function sourceAddress(index: number, sources: number): string {
  return sources <= 1 ? '127.0.0.1' : `127.0.1.${10 + (index % sources)}`;
}
