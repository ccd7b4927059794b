import { readFileSync } from 'node:fs';

/** Descriptors kept free for listeners, health checks, admin, logs and the runtime itself. */
export const FD_RESERVE = 64;

/**
 * The soft RLIMIT_NOFILE of this process, from /proc/self/limits (Linux);
 * undefined where it cannot be read or is unlimited.
 */
export function readFdLimit(limitsFile = '/proc/self/limits'): number | undefined {
  try {
    const line = readFileSync(limitsFile, 'utf8')
      .split('\n')
      .find((entry) => entry.startsWith('Max open files'));
    const soft = line?.slice('Max open files'.length).trim().split(/\s+/)[0];
    return soft === undefined || !/^\d+$/.test(soft) ? undefined : Number(soft);
  } catch {
    return undefined;
  }
}

export interface ConnectionCap {
  readonly configured: number;
  readonly effective: number;
  readonly fdLimit: number | undefined;
}

/**
 * Each client connection costs two descriptors (client and backend). Node hides
 * EMFILE on accept (libuv accepts and closes the connection silently), so the
 * proxy keeps below the descriptor limit itself and refuses the excess as
 * LIMIT_REACHED, where it is logged and counted. `reserve`: descriptors kept for
 * everything else (FD_RESERVE, plus the admin endpoint's own connection limit).
 */
export function capConnections(configured: number, fdLimit = readFdLimit(), reserve = FD_RESERVE): ConnectionCap {
  if (fdLimit === undefined) return { configured, effective: configured, fdLimit };
  const affordable = Math.max(1, Math.floor((fdLimit - reserve) / 2));
  return { configured, effective: Math.min(configured, affordable), fdLimit };
}
