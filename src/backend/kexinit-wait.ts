import { formatHostPort } from '../net/address.js';
import { parseKexInit, type KexInit } from '../protocol/kexinit.js';
import { missingInCommon } from '../protocol/kexinit-common.js';
import { SshPacketReader } from '../protocol/ssh-packets.js';
import { readUntilVerdict } from '../net/socket-reading.js';
import type { AttemptFailure, AttemptFailureDetail, AttemptHandle, AttemptSuccess } from './attempt.js';

export interface KexInitWaitOptions {
  readonly host: string;
  readonly port: number;
  readonly timeoutMs: number;
  /** Written first: the client's identification, when the server has not been sent it yet (sshd sends KEXINIT only after reading it). */
  readonly send?: Buffer;
  /** The client's own KEXINIT, when it is known: the server must have algorithms in common with it. */
  readonly clientKexInit?: KexInit;
}

/** An attempt verified past the banner: the server's KEXINIT came, and how long after the line. */
export interface VerifiedSuccess extends AttemptSuccess {
  readonly kexinit: KexInit;
  readonly kexinitMs: number;
}

/**
 * After a good identification, waits for the server's KEXINIT (its first binary packet)
 * on the socket attemptBackend handed over. A server that identifies and then fails (a
 * garbled stream, an sshd-session that dies after the banner, no usable host key) is
 * then failed over like one with a bad banner: the client has still seen nothing. On
 * success the socket is handed back paused, as attemptBackend left it, with the KEXINIT
 * among `received`. The callback fires once unless cancelled; the timer is always cleared.
 */
export function awaitServerKexInit(success: AttemptSuccess, options: KexInitWaitOptions, callback: (outcome: VerifiedSuccess | AttemptFailure) => void): AttemptHandle {
  const { socket } = success;
  const startedAt = performance.now();
  const reader = new SshPacketReader();
  const chunks: Buffer[] = [success.received];
  let receivedBytes = success.received.length;

  const failure = (code: AttemptFailure['code'], message: string, extra: AttemptFailureDetail = {}): AttemptFailure => ({
    ok: false,
    code,
    message: `${formatHostPort(options)}: ${message}`,
    connectMs: success.connectMs,
    elapsedMs: success.connectMs + success.bannerMs + (performance.now() - startedAt),
    received: Buffer.concat(chunks, receivedBytes),
    preLines: success.preLines,
    identification: success.identification.line,
    ...extra,
  });

  /** The server's bytes after its line: a KEXINIT (the verdict), an error, or not yet. */
  const verdictOn = (bytes: Buffer): VerifiedSuccess | AttemptFailure | undefined => {
    const read = reader.push(bytes);
    if (read.state === 'error') return failure('KEXINIT_INVALID', `identified, then ${read.message}`);
    const payload = read.payloads[0];
    if (payload === undefined) return undefined;
    const parsed = parseKexInit(payload);
    if (!parsed.ok) return failure('KEXINIT_INVALID', `identified, then a first packet that is no KEXINIT: ${parsed.message}`);
    const missing = options.clientKexInit === undefined ? [] : missingInCommon(options.clientKexInit, parsed.kexinit);
    if (missing.length > 0) return failure('NO_COMMON_ALGORITHMS', `no ${missing.join(', ')} in common with this client`);
    return {
      ...success,
      received: Buffer.concat(chunks, receivedBytes),
      kexinit: parsed.kexinit,
      kexinitMs: performance.now() - startedAt,
      sentBytes: success.sentBytes + (options.send?.length ?? 0),
    };
  };

  const reading = readUntilVerdict<VerifiedSuccess | AttemptFailure>(
    socket,
    options.timeoutMs,
    {
      data: (chunk) => {
        chunks.push(chunk);
        receivedBytes += chunk.length;
        return verdictOn(chunk);
      },
      end: () => failure('BACKEND_CLOSED', `identified, then closed the connection before its KEXINIT (${receivedBytes - success.identEndOffset} bytes after the line)`),
      close: () => failure('BACKEND_RESET', `identified, then reset the connection before its KEXINIT`),
      error: (error) => failure('BACKEND_RESET', `identified, then ${error.code ?? error.message} before its KEXINIT`, error.code === undefined ? {} : { errno: error.code }),
      timeout: () => failure('KEXINIT_TIMEOUT', `identified, then no KEXINIT within ${options.timeoutMs}ms`),
    },
    (outcome) => {
      if (outcome?.ok === true) {
        socket.pause();
        callback(outcome);
        return;
      }
      socket.destroy();
      if (outcome) callback(outcome);
    },
  );
  if (options.send !== undefined) socket.write(options.send);
  // Bytes that came with the identification: already in `received`, so parsed but not kept again.
  const after = success.received.subarray(success.identEndOffset);
  if (after.length > 0) {
    const verdict = verdictOn(after);
    if (verdict !== undefined) reading.settle(verdict);
  }
  if (!reading.finished) socket.resume();
  return { cancel: () => reading.cancel() };
}
