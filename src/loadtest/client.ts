/**
 * One load-test client: connect and read the identification (attemptBackend, as the probe
 * does), then in kex/auth mode continue on the same socket with ssh2. Failures carry the
 * probe's verdicts (reset-before-banner, throttled, ...) or the ssh2 step's code.
 */
import type { AttemptOutcome } from '../backend/attempt.js';
import { attemptOnce } from '../diagnose/probe.js';
import { continueWithSsh2, type Ssh2FailureCode } from '../diagnose/ssh2-handshake.js';
import { verdictForOutcome, type ProbeVerdict } from '../diagnose/verdicts.js';
import type { HostPort } from '../net/address.js';

import type { LoadMode } from './modes.js';

export { LOAD_MODES, type LoadMode } from './modes.js';

/** Probe verdicts for the identification phase, then the ssh2 phases. */
export type LoadFailureReason = Exclude<ProbeVerdict, 'ok' | 'slow-banner'> | 'kex-failed' | 'auth-failed' | 'command-failed' | 'handshake-timeout' | 'ssh-closed';

export interface LoadClientOptions {
  readonly mode: LoadMode;
  readonly connectTimeoutMs: number;
  readonly bannerTimeoutMs: number;
  /** kex/auth: budget for everything after the identification. */
  readonly handshakeTimeoutMs: number;
  readonly username?: string;
  readonly privateKey?: Buffer;
  readonly command?: string;
  readonly holdMs?: number;
}

export interface LoadAttemptRecord {
  readonly target: string;
  readonly index: number;
  /** When the attempt started, ms since the run started. */
  readonly startMs: number;
  readonly ok: boolean;
  readonly reason: LoadFailureReason | null;
  readonly connectMs: number | null;
  /** Connect to identification. */
  readonly bannerMs: number | null;
  /** Identification to keys exchanged (kex/auth). */
  readonly handshakeMs: number | null;
  /** Identification to authenticated (auth). */
  readonly authMs: number | null;
  readonly totalMs: number;
}

const SSH2_REASONS: Readonly<Record<Ssh2FailureCode, LoadFailureReason>> = {
  KEX_FAILED: 'kex-failed',
  AUTH_FAILED: 'auth-failed',
  COMMAND_FAILED: 'command-failed',
  HANDSHAKE_TIMEOUT: 'handshake-timeout',
  SSH_CLOSED: 'ssh-closed',
};

export async function runLoadClient(target: HostPort & { readonly label: string }, index: number, startMs: number, options: LoadClientOptions): Promise<LoadAttemptRecord> {
  const startedAt = performance.now();
  const probeOptions = {
    host: target.host,
    port: target.port,
    connectTimeoutMs: options.connectTimeoutMs,
    timeoutMs: options.bannerTimeoutMs,
    slowMs: Number.POSITIVE_INFINITY,
  };
  // Banner mode identifies itself like a client would; ssh2 sends its own identification.
  const outcome: AttemptOutcome = await attemptOnce(probeOptions, options.mode === 'banner');
  const base = { target: target.label, index, startMs: round(startMs) };
  if (!outcome.ok) {
    const verdict = verdictForOutcome(outcome, Number.POSITIVE_INFINITY);
    return {
      ...base,
      ok: false,
      reason: verdict as LoadFailureReason,
      connectMs: outcome.connectMs === undefined ? null : round(outcome.connectMs),
      bannerMs: null,
      handshakeMs: null,
      authMs: null,
      totalMs: round(performance.now() - startedAt),
    };
  }
  const connectMs = round(outcome.connectMs);
  const bannerMs = round(outcome.bannerMs);
  if (options.mode === 'banner') {
    outcome.socket.destroy();
    return { ...base, ok: true, reason: null, connectMs, bannerMs, handshakeMs: null, authMs: null, totalMs: round(performance.now() - startedAt) };
  }
  const step = await continueWithSsh2(outcome, {
    until: options.mode,
    timeoutMs: options.handshakeTimeoutMs,
    ...(options.username === undefined ? {} : { username: options.username }),
    ...(options.privateKey === undefined ? {} : { privateKey: options.privateKey }),
    ...(options.command === undefined ? {} : { command: options.command }),
    ...(options.holdMs === undefined ? {} : { holdMs: options.holdMs }),
  });
  const totalMs = round(performance.now() - startedAt);
  if (!step.ok) {
    const handshakeMs = step.handshakeMs === undefined ? null : round(step.handshakeMs);
    return { ...base, ok: false, reason: SSH2_REASONS[step.code], connectMs, bannerMs, handshakeMs, authMs: null, totalMs };
  }
  return {
    ...base,
    ok: true,
    reason: null,
    connectMs,
    bannerMs,
    handshakeMs: round(step.handshakeMs),
    authMs: step.authMs === undefined ? null : round(step.authMs),
    totalMs,
  };
}


function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}
