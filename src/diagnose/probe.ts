/**
 * One probe: connect like a client, send our identification, read the server's,
 * give a verdict with evidence and a hint; after a good identification read the
 * server's KEXINIT, and optionally complete key exchange for the host key.
 */
import { attemptBackend, type AttemptOutcome } from '../backend/attempt.js';
import type { AttemptFailureCode } from '../errors.js';
import { formatHostPort } from '../net/address.js';
import { VERSION } from '../version.js';
import { reportAlgorithms, type AlgorithmReport } from './algorithms.js';
import { hintFor } from './hints.js';
import { describeHostKey, type HostKeyInfo } from './host-key.js';
import { readKexInit } from './read-kexinit.js';
import { continueWithSsh2 } from './ssh2-handshake.js';
import { isHealthyVerdict, verdictForOutcome, type ProbeVerdict } from './verdicts.js';

export const PROBE_IDENTIFICATION = `SSH-2.0-ssh-banner-proxy-probe_${VERSION}`;

export interface ProbeOptions {
  readonly host: string;
  readonly port: number;
  readonly connectTimeoutMs: number;
  /** Banner timeout: from TCP connect to a complete identification line. */
  readonly timeoutMs: number;
  /** Banners later than this are `slow-banner`. */
  readonly slowMs: number;
  /** Read and report the server's KEXINIT after a good identification. Default true. */
  readonly kexinit?: boolean;
  /** Complete key exchange (second connection, ssh2) and report the host key fingerprint. */
  readonly hostKey?: boolean;
}

export interface ProbeResult {
  readonly target: string;
  readonly verdict: ProbeVerdict;
  readonly ok: boolean;
  /** attemptBackend's reason code, null when identified. */
  readonly code: AttemptFailureCode | null;
  /** Banner latency when identified (connect to identification), else time to the failure. */
  readonly latencyMs: number;
  readonly connectMs: number | null;
  readonly bannerMs: number | null;
  readonly identification: string | null;
  readonly softwareVersion: string | null;
  readonly comments: string | null;
  readonly lineEnding: 'crlf' | 'lf' | null;
  readonly preLines: readonly string[];
  /** For not-ssh: the protocol recognised. */
  readonly protocol: string | null;
  /** For throttled: the notice the server sent. */
  readonly notice: string | null;
  readonly errno: string | null;
  readonly message: string;
  readonly hint: string;
  /** The first bytes received, printable (non-printables as \xNN), for evidence. */
  readonly received: string;
  readonly receivedBytes: number;
  readonly algorithms: (AlgorithmReport & { readonly kexinitMs: number }) | { readonly error: string } | null;
  readonly hostKey: HostKeyInfo | { readonly error: string } | null;
}

const EVIDENCE_BYTES = 200;
/** How long the probe listens before it speaks (an HTTP or TLS server waits for it meanwhile). */
const IDENTIFY_AFTER_SILENCE_MS = 250;

export function attemptOnce(options: ProbeOptions, sendIdentification: boolean): Promise<AttemptOutcome> {
  return new Promise((resolve) => {
    attemptBackend(
      {
        host: options.host,
        port: options.port,
        connectTimeoutMs: options.connectTimeoutMs,
        bannerTimeoutMs: options.timeoutMs,
        // After a short silence: a server that closes at accept must see a FIN from nothing we sent.
        ...(sendIdentification ? { sendOnConnect: Buffer.from(`${PROBE_IDENTIFICATION}\r\n`), sendAfterSilenceMs: IDENTIFY_AFTER_SILENCE_MS } : {}),
      },
      resolve,
    );
  });
}

export async function probe(options: ProbeOptions): Promise<ProbeResult> {
  const outcome = await attemptOnce(options, true);
  const verdict = verdictForOutcome(outcome, options.slowMs);
  const target = formatHostPort(options);
  const base = describeOutcome(outcome, verdict, options, target);
  if (!outcome.ok) return base;

  if (options.kexinit === false) {
    outcome.socket.destroy();
    const hostKey = options.hostKey ? await fetchHostKey(options) : null;
    return { ...base, hostKey };
  }
  const read = await readKexInit(outcome, options, options.timeoutMs);
  if (!read.ok) {
    // Identified, then nothing a client could use: the proxy fails such a server over too.
    return { ...base, verdict: 'fails-after-banner', ok: false, code: read.code, message: read.message, hint: hintFor('fails-after-banner', hintContext(options)), algorithms: { error: `${read.code}: ${read.message}` } };
  }
  const hostKey = options.hostKey ? await fetchHostKey(options) : null;
  return { ...base, algorithms: { ...reportAlgorithms(read.kexinit), kexinitMs: round(read.kexinitMs) }, hostKey };
}

function hintContext(options: ProbeOptions): { host: string; port: number; slowMs: number; timeoutMs: number } {
  return { host: options.host, port: options.port, slowMs: options.slowMs, timeoutMs: options.timeoutMs };
}

function describeOutcome(outcome: AttemptOutcome, verdict: ProbeVerdict, options: ProbeOptions, target: string): ProbeResult {
  const context = hintContext(options);
  const evidence = escapeBytes(outcome.received.subarray(0, EVIDENCE_BYTES));
  if (outcome.ok) {
    const id = outcome.identification;
    return {
      target,
      verdict,
      ok: isHealthyVerdict(verdict),
      code: null,
      latencyMs: round(outcome.bannerMs),
      connectMs: round(outcome.connectMs),
      bannerMs: round(outcome.bannerMs),
      identification: id.line,
      softwareVersion: id.softwareVersion,
      comments: id.comments ?? null,
      lineEnding: id.lineEnding,
      preLines: outcome.preLines,
      protocol: null,
      notice: null,
      errno: null,
      message: `${target}: ${id.line}`,
      hint: hintFor(verdict, { ...context, bannerMs: outcome.bannerMs, softwareVersion: id.softwareVersion, preLineCount: outcome.preLines.length }),
      received: evidence,
      receivedBytes: outcome.received.length,
      algorithms: null,
      hostKey: null,
    };
  }
  return {
    target,
    verdict,
    ok: false,
    code: outcome.code,
    latencyMs: round(outcome.elapsedMs),
    connectMs: outcome.connectMs === undefined ? null : round(outcome.connectMs),
    bannerMs: null,
    identification: null,
    softwareVersion: null,
    comments: null,
    lineEnding: null,
    preLines: outcome.preLines,
    protocol: outcome.protocol ?? null,
    notice: outcome.notice ?? null,
    errno: outcome.errno ?? null,
    message: outcome.message,
    hint: hintFor(verdict, { ...context, protocol: outcome.protocol, notice: outcome.notice, errno: outcome.errno, httpStatus: httpStatusOf(outcome.received) }),
    received: evidence,
    receivedBytes: outcome.received.length,
    algorithms: null,
    hostKey: null,
  };
}

async function fetchHostKey(options: ProbeOptions): Promise<ProbeResult['hostKey']> {
  const outcome = await attemptOnce(options, false);
  if (!outcome.ok) return { error: `${outcome.code}: ${outcome.message}` };
  const result = await continueWithSsh2(outcome, { until: 'kex', timeoutMs: Math.max(options.timeoutMs, 5000) });
  if (!result.ok) return { error: `${result.code}: ${result.message}` };
  if (result.hostKey === undefined) return { error: 'key exchange finished without a host key' };
  return describeHostKey(result.hostKey);
}

export function escapeBytes(bytes: Buffer): string {
  let text = '';
  for (const byte of bytes) {
    if (byte === 0x0d) text += '\\r';
    else if (byte === 0x0a) text += '\\n';
    else if (byte >= 0x20 && byte < 0x7f && byte !== 0x5c) text += String.fromCharCode(byte);
    else text += `\\x${byte.toString(16).padStart(2, '0')}`;
  }
  return text;
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}

/** The status code of an HTTP response's first line (`HTTP/1.1 400 Bad Request`), if the bytes start with one. */
export function httpStatusOf(received: Buffer): number | undefined {
  const match = /^HTTP\/\d(?:\.\d)? (\d{3})\b/.exec(received.subarray(0, 64).toString('latin1'));
  return match ? Number(match[1]) : undefined;
}
