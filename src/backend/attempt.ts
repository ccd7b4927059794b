import { Socket } from 'node:net';
import { attemptCodeForSocketError, type AttemptFailureCode } from '../errors.js';
import { formatHostPort } from '../net/address.js';
import { IdentParser } from '../protocol/ssh-ident.js';
import { markReusedReads } from '../net/reused-reads.js';
import type { AttemptFailure, AttemptFailureDetail, AttemptHandle, AttemptOptions, AttemptOutcome } from './attempt-types.js';
import { failSoon, openConnection } from './open-connection.js';
import { readUntilVerdict, type ReadingRules, type SocketReading } from '../net/socket-reading.js';

export type { AttemptFailure, AttemptFailureDetail, AttemptHandle, AttemptOptions, AttemptOutcome, AttemptSuccess } from './attempt-types.js';

/**
 * Connects to a backend and waits for a valid SSH identification: the connect phase
 * (its own timer and error listener), then the banner read, fed to an IdentParser through
 * the one socket-reading driver (src/net/socket-reading.ts).
 * The callback fires exactly once unless cancelled. All timers are cleared on every exit.
 */
export function attemptBackend(options: AttemptOptions, callback: (outcome: AttemptOutcome) => void): AttemptHandle {
  const startedAt = performance.now();
  const opened = openConnection(options);
  if (!(opened instanceof Socket)) return failSoon(opened, options, callback);
  const socket = opened;
  if (options.reuseReads === true) markReusedReads(socket);
  const parser = new IdentParser(options.identLimits);
  const chunks: Buffer[] = [];
  let receivedBytes = 0;
  let connectedAt: number | undefined;
  let sentBytes = 0;
  /** `sendOnConnect` held back until a silence (sendAfterSilenceMs), not sent yet. */
  let silence: NodeJS.Timeout | undefined;
  let reading: SocketReading<AttemptOutcome> | undefined;
  let finished = false;

  const received = (): Buffer => (chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, receivedBytes));

  function send(): void {
    const bytes = typeof options.sendOnConnect === 'function' ? options.sendOnConnect() : options.sendOnConnect;
    if (bytes === undefined || bytes.length === 0 || socket.destroyed) return;
    socket.write(bytes);
    sentBytes = bytes.length;
  }

  function finish(outcome: AttemptOutcome | undefined): void {
    if (finished) return;
    finished = true;
    clearTimeout(connectTimer);
    socket.off('connect', onConnect);
    socket.off('error', onConnectError);
    socket.off('close', onConnectClose);
    reading?.cancel();
    let result = outcome;
    if (silence !== undefined) {
      clearTimeout(silence);
      silence = undefined;
      // Identified before our line went out: a client must still send it.
      if (result?.ok === true && options.sendOnSuccess !== false) {
        send();
        result = { ...result, sentBytes };
      }
    }
    if (result?.ok) {
      socket.pause();
      callback(result);
      return;
    }
    socket.destroy();
    if (result) callback(result);
  }

  function failure(code: AttemptFailureCode, message: string, extra: AttemptFailureDetail = {}): AttemptFailure {
    // Read on failure only (getsockname and getpeername calls): what sshd saw, while the handle is open.
    const endpoints = connectedAt === undefined ? {} : connectionEndpoints(socket);
    return {
      ok: false,
      code,
      message: `${formatHostPort(options)}: ${message}`,
      connectMs: connectedAt === undefined ? undefined : connectedAt - startedAt,
      elapsedMs: performance.now() - startedAt,
      received: received(),
      preLines: parser.linesBeforeIdent,
      ...endpoints,
      ...extra,
    };
  }

  function identified(chunk: Buffer): AttemptOutcome | undefined {
    chunks.push(chunk);
    receivedBytes += chunk.length;
    const result = parser.push(chunk);
    if (result.state === 'incomplete') return undefined;
    if (result.state === 'rejected') return failure(result.code, result.message, rejectionDetail(result));
    const now = performance.now();
    const connected = connectedAt ?? now;
    return {
      ok: true,
      socket,
      received: received(),
      identEndOffset: result.identEndOffset,
      identification: result.identification,
      preLines: result.preLines,
      connectMs: connected - startedAt,
      bannerMs: now - connected,
      releaseErrorGuard: () => socket.off('error', ignoreError),
      sentBytes,
    };
  }

  function endedBeforeIdent(reset: boolean, errno?: string): AttemptFailure {
    const verdict = parser.end();
    if (verdict.state === 'rejected') return failure(verdict.code, verdict.message, rejectionDetail(verdict));
    const seen = receivedBytes === 0 ? 'before sending anything' : `after ${receivedBytes} bytes without an identification`;
    const extra: AttemptFailureDetail = errno === undefined ? {} : { errno };
    return reset ? failure('BACKEND_RESET', `connection reset ${seen}`, extra) : failure('BACKEND_CLOSED', `connection closed ${seen}`, extra);
  }

  const bannerRules: ReadingRules<AttemptOutcome> = {
    data: identified,
    end: () => endedBeforeIdent(false),
    close: () => endedBeforeIdent(true),
    error: (error) => endedBeforeIdent(attemptCodeForSocketError(error, true) === 'BACKEND_RESET', error.code),
    timeout: () => {
      const what = receivedBytes === 0 ? 'nothing received' : `${receivedBytes} bytes received but no complete identification line`;
      return failure('BANNER_TIMEOUT', `no SSH identification within ${options.bannerTimeoutMs}ms (${what})`);
    },
  };

  function onConnect(): void {
    connectedAt = performance.now();
    clearTimeout(connectTimer);
    socket.off('error', onConnectError);
    socket.off('close', onConnectClose);
    if (options.preamble !== undefined) socket.write(options.preamble);
    const { sendOnConnect, sendAfterSilenceMs } = options;
    if (sendOnConnect && sendAfterSilenceMs !== undefined && sendAfterSilenceMs > 0 && sendAfterSilenceMs < options.bannerTimeoutMs) {
      silence = setTimeout(() => {
        silence = undefined;
        send();
      }, sendAfterSilenceMs);
    } else if (sendOnConnect) {
      send();
    }
    // A view in a reused buffer is overwritten by the next read: a few small chunks are kept as copies.
    reading = readUntilVerdict(socket, options.bannerTimeoutMs, bannerRules, finish);
    options.onConnected?.();
  }

  function onConnectError(error: NodeJS.ErrnoException): void {
    const code = attemptCodeForSocketError(error, false);
    if (code === 'BACKEND_RESET') {
      finish(endedBeforeIdent(true, error.code));
      return;
    }
    const extra: AttemptFailureDetail = error.code === undefined ? {} : { errno: error.code };
    finish(failure(code, error.code === 'ECONNREFUSED' ? 'connection refused' : error.message, extra));
  }

  function onConnectClose(): void {
    finish(endedBeforeIdent(true));
  }

  const connectTimer = setTimeout(() => finish(failure('CONNECT_TIMEOUT', `no TCP connection within ${options.connectTimeoutMs}ms`)), options.connectTimeoutMs);
  socket.on('connect', onConnect);
  socket.on('error', onConnectError);
  socket.on('close', onConnectClose);
  socket.on('error', ignoreError);

  return {
    cancel: () => {
      finish(undefined);
    },
  };
}

/** Both ends of a backend connection, as far as the socket still knows them (an attempt's record, sshd's log line). */
export interface ConnectionEndpoints {
  readonly localAddress?: string;
  readonly localPort?: number;
  readonly remoteAddress?: string;
}

export function connectionEndpoints(socket: Socket): ConnectionEndpoints {
  const { localAddress, localPort, remoteAddress } = socket;
  return {
    ...(localAddress === undefined ? {} : { localAddress }),
    ...(localPort === undefined ? {} : { localPort }),
    ...(remoteAddress === undefined ? {} : { remoteAddress }),
  };
}

function rejectionDetail(result: { readonly protocol?: string; readonly notice?: string }): AttemptFailureDetail {
  return {
    ...(result.protocol === undefined ? {} : { protocol: result.protocol }),
    ...(result.notice === undefined ? {} : { notice: result.notice }),
  };
}

/** Keeps a late socket error from crashing the process while ownership changes hands. */
function ignoreError(): void {}
