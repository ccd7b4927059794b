import { connect, Socket } from 'node:net';
import { attemptCodeForSocketError, type AttemptFailureCode } from '../errors.js';
import { formatHostPort, normaliseAddress } from '../net/address.js';
import { familyOf, TransparentSocketError, type TransparentSockets } from '../net/transparent-socket.js';
import { IdentParser, type IdentLimits, type SshIdentification } from '../protocol/ssh-ident.js';
import { markReusedReads, reusedReadOptions } from '../net/reused-reads.js';
import { readUntilVerdict, type ReadingRules, type SocketReading } from '../net/socket-reading.js';

export interface AttemptOptions {
  readonly host: string;
  readonly port: number;
  readonly connectTimeoutMs: number;
  readonly bannerTimeoutMs: number;
  /**
   * Written right after connect (health checks and probes identify themselves), or after
   * `sendAfterSilenceMs`. A function is asked when it is time (a session's client may
   * identify itself meanwhile); undefined then sends nothing.
   */
  readonly sendOnConnect?: Buffer | (() => Buffer | undefined);
  /**
   * Hold `sendOnConnect` back this long after connect, and send it only if the server has
   * neither identified nor closed by then (it is sent at once on success). A server that
   * closes at accept (TCP wrappers) then sees no bytes of ours, so the close stays a FIN
   * instead of becoming the kernel's reset; one that waits to be spoken to (HTTP, TLS)
   * still gets the line and answers.
   */
  readonly sendAfterSilenceMs?: number;
  /** With `sendAfterSilenceMs`: send it at once on success if it had not gone out (default true: a client must). */
  readonly sendOnSuccess?: boolean;
  readonly identLimits?: IdentLimits;
  /**
   * Read into a reused buffer (`onread`, see src/net/reused-reads.ts): the socket then
   * emits no 'data' events; its bytes go to its read target. For sockets a Splice takes over.
   */
  readonly reuseReads?: boolean;
  /** The TCP connection is up and the banner wait begins (sessions tell the two phases apart). */
  readonly onConnected?: () => void;
  /** Written first, as soon as the connection is up: a PROXY protocol header (servers[].sendProxy). Not counted in `sentBytes`. */
  readonly preamble?: Buffer;
  /** Connect from the client's own address (pools[].source: transparent, docs/identity.md). */
  readonly transparent?: { readonly sockets: TransparentSockets; readonly clientAddress: string };
}

export interface AttemptSuccess {
  readonly ok: true;
  /**
   * Paused, with no listeners of ours left but a placeholder 'error' listener; the caller owns it.
   * With `reuseReads` it has no read target either (bytes read meanwhile go to the next one).
   */
  readonly socket: Socket;
  /** Every byte received so far, in order: pre-lines, identification, and anything after it. */
  readonly received: Buffer;
  readonly identEndOffset: number;
  readonly identification: SshIdentification;
  readonly preLines: readonly string[];
  readonly connectMs: number;
  /** From TCP connect to the identification's line end. */
  readonly bannerMs: number;
  /** From the identification to the server's KEXINIT, when that was waited for (awaitServerKexInit). */
  readonly kexinitMs?: number;
  /** Removes the placeholder error listener once the caller has attached its own. */
  readonly releaseErrorGuard: () => void;
  /** Bytes of `sendOnConnect` the backend was sent (a session must not send them again). */
  readonly sentBytes: number;
}

export interface AttemptFailure {
  readonly ok: false;
  readonly code: AttemptFailureCode;
  readonly message: string;
  readonly connectMs: number | undefined;
  /** Time to the failure, from the start of the attempt. */
  readonly elapsedMs: number;
  readonly received: Buffer;
  readonly preLines: readonly string[];
  readonly protocol?: string;
  readonly notice?: string;
  readonly errno?: string;
  /** The proxy's own address and port on this connection (what sshd logs as `from A port P`), once connected. */
  readonly localAddress?: string;
  readonly localPort?: number;
  /** The address connected to (a host name's resolved address), once connected. */
  readonly remoteAddress?: string;
  /** The server's identification, when it failed after sending one (past the banner). */
  readonly identification?: string;
}

/** The optional facts of a failure, given where it is made. */
export type AttemptFailureDetail = Partial<Pick<AttemptFailure, 'protocol' | 'notice' | 'errno' | 'localAddress' | 'localPort' | 'remoteAddress'>>;

export type AttemptOutcome = AttemptSuccess | AttemptFailure;

export interface AttemptHandle {
  /** Abandons the attempt; the callback is not called afterwards. */
  cancel(): void;
}

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

/** A connecting socket: the proxy's own address, or the client's (transparent); the error when a transparent socket cannot be made. */
function openConnection(options: AttemptOptions): Socket | TransparentSocketError {
  const { host, port, transparent } = options;
  const onread = options.reuseReads === true ? { onread: reusedReadOptions() } : {};
  if (transparent === undefined) return connect({ host, port, allowHalfOpen: true, noDelay: true, ...onread });
  let fd: number;
  try {
    fd = transparent.sockets.open(transparent.clientAddress);
  } catch (error) {
    if (error instanceof TransparentSocketError) return error;
    throw error;
  }
  const socket = new Socket({ fd, allowHalfOpen: true, ...onread });
  const localAddress = normaliseAddress(transparent.clientAddress) ?? transparent.clientAddress;
  socket.connect({ host, port, localAddress, family: familyOf(localAddress) });
  socket.setNoDelay(true);
  return socket;
}

/** A transparent socket that could not be made fails the attempt on a later turn, as every failure does. */
function failSoon(error: TransparentSocketError, options: AttemptOptions, callback: (outcome: AttemptOutcome) => void): AttemptHandle {
  const startedAt = performance.now();
  const timer = setImmediate(() =>
    callback({
      ok: false,
      code: 'SOURCE_UNUSABLE',
      message: `${formatHostPort(options)}: cannot connect from the client's address ${options.transparent?.clientAddress ?? ''}: ${error.message}`,
      connectMs: undefined,
      elapsedMs: performance.now() - startedAt,
      received: Buffer.alloc(0),
      preLines: [],
      errno: error.errno,
    }),
  );
  return { cancel: () => clearImmediate(timer) };
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
