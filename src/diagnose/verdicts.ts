/**
 * Probe verdicts: what an operator should call the outcome of one connection attempt.
 * Derived from attemptBackend's reason codes (src/errors.ts), never from message text.
 */
import type { AttemptOutcome } from '../backend/attempt.js';

export const PROBE_VERDICTS = [
  'ok',
  'slow-banner',
  'refused',
  'connect-timeout',
  'connect-error',
  'dns-error',
  'reset-before-banner',
  'closed-before-banner',
  'throttled',
  /**
   * Refused every time with one connection at a time (probe --count, --concurrency 1) with a line
   * sshd 9.8+ writes for penalties and MaxStartups alike, or a bare close or reset: the probe cannot
   * tell a penalised source from other clients holding MaxStartups.
   */
  'refused-repeatedly',
  'banner-timeout',
  'not-ssh',
  'ssh1-only',
  'invalid-banner',
  /** Identified, then no KEXINIT: a garbled stream, or an sshd-session that dies after the banner (PAM, SELinux, no usable host key). */
  'fails-after-banner',
  /** The server's algorithms have nothing in common with the client's (never from the probe alone: it has no client's list). */
  'no-common-algorithms',
] as const;
export type ProbeVerdict = (typeof PROBE_VERDICTS)[number];

/** Verdicts for which the probe exits 0. */
export function isHealthyVerdict(verdict: ProbeVerdict): boolean {
  return verdict === 'ok' || verdict === 'slow-banner';
}

/** Resolver failures as libuv reports them. */
const DNS_ERRNOS: ReadonlySet<string> = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'EAI_NONAME', 'EAI_NODATA']);

export function verdictForOutcome(outcome: AttemptOutcome, slowMs: number): ProbeVerdict {
  if (outcome.ok) return outcome.bannerMs > slowMs ? 'slow-banner' : 'ok';
  switch (outcome.code) {
    case 'CONNECT_REFUSED':
      return 'refused';
    case 'CONNECT_TIMEOUT':
      return 'connect-timeout';
    case 'CONNECT_ERROR':
      return outcome.errno !== undefined && DNS_ERRNOS.has(outcome.errno) ? 'dns-error' : 'connect-error';
    case 'BACKEND_RESET':
      return 'reset-before-banner';
    case 'BACKEND_CLOSED':
    case 'SOURCE_REFUSED':
      return 'closed-before-banner';
    case 'THROTTLED':
      return 'throttled';
    case 'BANNER_TIMEOUT':
      return 'banner-timeout';
    case 'NOT_SSH':
      return 'not-ssh';
    case 'SSH_VERSION_UNSUPPORTED':
      return sshVersionSent(outcome.received)?.startsWith('1.') ? 'ssh1-only' : 'invalid-banner';
    case 'BANNER_INVALID':
      return 'invalid-banner';
    case 'LOCAL_RESOURCE':
    case 'SOURCE_UNUSABLE':
      return 'connect-error';
    case 'KEXINIT_TIMEOUT':
    case 'KEXINIT_INVALID':
      return 'fails-after-banner';
    case 'NO_COMMON_ALGORITHMS':
      return 'no-common-algorithms';
  }
}

/** The protocol version of the first `SSH-x-` line in the received bytes, if any. */
export function sshVersionSent(received: Buffer): string | undefined {
  const text = received.toString('latin1');
  const match = /(?:^|\n)SSH-([^-\s]+)-/.exec(text);
  return match?.[1];
}
