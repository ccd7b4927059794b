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
  return new BackendAttempt(opened, options, callback, startedAt);
}

/**
 * The attempt on its socket, stored on it so that the connect-phase listeners are module
 * functions (`this` is the socket) and the banner read's rules are this object's methods:
 * one attempt per session makes no closures of its own.
 */
const kAttempt = Symbol('backendAttempt');
interface AttemptSocket extends Socket {
  [kAttempt]?: BackendAttempt | undefined;
}

class BackendAttempt implements AttemptHandle, ReadingRules<AttemptOutcome> {
  private readonly socket: AttemptSocket;
  private readonly options: AttemptOptions;
  private readonly callback: (outcome: AttemptOutcome) => void;
  private readonly startedAt: number;
  private readonly parser: IdentParser;
  private readonly chunks: Buffer[] = [];
  private receivedBytes = 0;
  private connectedAt: number | undefined;
  private sentBytes = 0;
  private readonly connectTimer: NodeJS.Timeout;
  /** `sendOnConnect` held back until a silence (sendAfterSilenceMs), not sent yet. */
  private silence: NodeJS.Timeout | undefined;
  private reading: SocketReading<AttemptOutcome> | undefined;
  private finished = false;

  constructor(socket: AttemptSocket, options: AttemptOptions, callback: (outcome: AttemptOutcome) => void, startedAt: number) {
    this.socket = socket;
    this.options = options;
    this.callback = callback;
    this.startedAt = startedAt;
    if (options.reuseReads === true) markReusedReads(socket);
    this.parser = new IdentParser(options.identLimits);
    this.connectTimer = setTimeout(onConnectTimeout, options.connectTimeoutMs, this);
    socket[kAttempt] = this;
    socket.on('connect', onAttemptConnect);
    socket.on('error', onConnectError);
    socket.on('close', onConnectClose);
    socket.on('error', ignoreError);
  }

  cancel(): void {
    this.finish(undefined);
  }

  connected(): void {
    const { socket, options } = this;
    this.connectedAt = performance.now();
    clearTimeout(this.connectTimer);
    socket.off('error', onConnectError);
    socket.off('close', onConnectClose);
    if (options.preamble !== undefined) socket.write(options.preamble);
    const { sendOnConnect, sendAfterSilenceMs } = options;
    if (sendOnConnect && sendAfterSilenceMs !== undefined && sendAfterSilenceMs > 0 && sendAfterSilenceMs < options.bannerTimeoutMs) {
      this.silence = setTimeout(onSilence, sendAfterSilenceMs, this);
    } else if (sendOnConnect) {
      this.send();
    }
    // A view in a reused buffer is overwritten by the next read: a few small chunks are kept as copies.
    this.reading = readUntilVerdict(socket, options.bannerTimeoutMs, this, (outcome) => this.finish(outcome));
    options.onConnected?.();
  }

  connectFailed(error: NodeJS.ErrnoException): void {
    const code = attemptCodeForSocketError(error, false);
    if (code === 'BACKEND_RESET') {
      this.finish(this.endedBeforeIdent(true, error.code));
      return;
    }
    const extra: AttemptFailureDetail = error.code === undefined ? {} : { errno: error.code };
    this.finish(this.failure(code, error.code === 'ECONNREFUSED' ? 'connection refused' : error.message, extra));
  }

  connectTimedOut(): void {
    this.finish(this.failure('CONNECT_TIMEOUT', `no TCP connection within ${this.options.connectTimeoutMs}ms`));
  }

  closedBeforeConnect(): void {
    this.finish(this.endedBeforeIdent(true));
  }

  silenceEnded(): void {
    this.silence = undefined;
    this.send();
  }

  /** The banner read's rules (ReadingRules): a chunk of the server's first bytes. */
  data(chunk: Buffer): AttemptOutcome | undefined {
    this.chunks.push(chunk);
    this.receivedBytes += chunk.length;
    const result = this.parser.push(chunk);
    if (result.state === 'incomplete') return undefined;
    if (result.state === 'rejected') return this.failure(result.code, result.message, rejectionDetail(result));
    const now = performance.now();
    const connected = this.connectedAt ?? now;
    const socket = this.socket;
    return {
      ok: true,
      socket,
      received: this.received(),
      identEndOffset: result.identEndOffset,
      identification: result.identification,
      preLines: result.preLines,
      connectMs: connected - this.startedAt,
      bannerMs: now - connected,
      releaseErrorGuard: () => socket.off('error', ignoreError),
      sentBytes: this.sentBytes,
    };
  }

  end(): AttemptOutcome {
    return this.endedBeforeIdent(false);
  }

  close(): AttemptOutcome {
    return this.endedBeforeIdent(true);
  }

  error(error: NodeJS.ErrnoException): AttemptOutcome {
    return this.endedBeforeIdent(attemptCodeForSocketError(error, true) === 'BACKEND_RESET', error.code);
  }

  timeout(): AttemptOutcome {
    const what = this.receivedBytes === 0 ? 'nothing received' : `${this.receivedBytes} bytes received but no complete identification line`;
    return this.failure('BANNER_TIMEOUT', `no SSH identification within ${this.options.bannerTimeoutMs}ms (${what})`);
  }

  private received(): Buffer {
    return this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks, this.receivedBytes);
  }

  private send(): void {
    const { options, socket } = this;
    const bytes = typeof options.sendOnConnect === 'function' ? options.sendOnConnect() : options.sendOnConnect;
    if (bytes === undefined || bytes.length === 0 || socket.destroyed) return;
    socket.write(bytes);
    this.sentBytes = bytes.length;
  }

  private finish(outcome: AttemptOutcome | undefined): void {
    if (this.finished) return;
    this.finished = true;
    const socket = this.socket;
    clearTimeout(this.connectTimer);
    socket[kAttempt] = undefined;
    socket.off('connect', onAttemptConnect);
    socket.off('error', onConnectError);
    socket.off('close', onConnectClose);
    this.reading?.cancel();
    let result = outcome;
    if (this.silence !== undefined) {
      clearTimeout(this.silence);
      this.silence = undefined;
      // Identified before our line went out: a client must still send it.
      if (result?.ok === true && this.options.sendOnSuccess !== false) {
        this.send();
        result = { ...result, sentBytes: this.sentBytes };
      }
    }
    if (result?.ok) {
      socket.pause();
      this.callback(result);
      return;
    }
    socket.destroy();
    if (result) this.callback(result);
  }

  private failure(code: AttemptFailureCode, message: string, extra: AttemptFailureDetail = {}): AttemptFailure {
    const { connectedAt, startedAt } = this;
    // Read on failure only (getsockname and getpeername calls): what sshd saw, while the handle is open.
    const endpoints = connectedAt === undefined ? {} : connectionEndpoints(this.socket);
    return {
      ok: false,
      code,
      message: `${formatHostPort(this.options)}: ${message}`,
      connectMs: connectedAt === undefined ? undefined : connectedAt - startedAt,
      elapsedMs: performance.now() - startedAt,
      received: this.received(),
      preLines: this.parser.linesBeforeIdent,
      ...endpoints,
      ...extra,
    };
  }

  private endedBeforeIdent(reset: boolean, errno?: string): AttemptFailure {
    const verdict = this.parser.end();
    if (verdict.state === 'rejected') return this.failure(verdict.code, verdict.message, rejectionDetail(verdict));
    const seen = this.receivedBytes === 0 ? 'before sending anything' : `after ${this.receivedBytes} bytes without an identification`;
    const extra: AttemptFailureDetail = errno === undefined ? {} : { errno };
    return reset ? this.failure('BACKEND_RESET', `connection reset ${seen}`, extra) : this.failure('BACKEND_CLOSED', `connection closed ${seen}`, extra);
  }
}

function onAttemptConnect(this: AttemptSocket): void {
  this[kAttempt]?.connected();
}

function onConnectError(this: AttemptSocket, error: NodeJS.ErrnoException): void {
  this[kAttempt]?.connectFailed(error);
}

function onConnectClose(this: AttemptSocket): void {
  this[kAttempt]?.closedBeforeConnect();
}

function onConnectTimeout(attempt: BackendAttempt): void {
  attempt.connectTimedOut();
}

function onSilence(attempt: BackendAttempt): void {
  attempt.silenceEnded();
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
