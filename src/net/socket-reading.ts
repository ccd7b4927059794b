import type { Socket } from 'node:net';
import { setReadTarget, usesReusedReads } from './reused-reads.js';

/** What a reading makes of each thing the socket does; anything but undefined is its verdict and ends it. */
export interface ReadingRules<Verdict> {
  data(chunk: Buffer): Verdict | undefined;
  end(): Verdict;
  close(): Verdict;
  error(error: NodeJS.ErrnoException): Verdict;
  timeout(): Verdict;
}

export interface SocketReading<Verdict> {
  /** Ends with a verdict reached outside the socket (bytes read before the reading began). */
  settle(verdict: Verdict): void;
  /** Ends without a verdict (the caller is closing the socket). */
  cancel(): void;
  readonly finished: boolean;
}

/**
 * The reading in progress on a socket, stored on it so that the listeners at the end of this
 * file are module functions shared by every reading (`this` is the socket), not closures made
 * per connection: a backend attempt reads this way once per session.
 */
const kReading = Symbol('socketReading');
/** What the module listeners hand a reading. */
interface ReadingEvents {
  data(chunk: Buffer): void;
  end(): void;
  close(): void;
  error(error: NodeJS.ErrnoException): void;
  timeout(): void;
}
interface ReadSocket extends Socket {
  [kReading]?: ReadingEvents | undefined;
}

/**
 * The one way a parser is fed from a socket (a server's identification, a PROXY header, a
 * server's KEXINIT): chunks go to `rules.data` until it, an end, a close, an error or the
 * timer gives a verdict; then the timer is cleared and every listener removed, exactly once,
 * and `done` gets the verdict (undefined when cancelled). What becomes of the socket
 * afterwards is the caller's. Sockets that read into reused buffers are read the same way
 * (src/net/reused-reads.ts): their chunks are copied first, as the rules may keep them.
 * One reading at a time per socket.
 */
export function readUntilVerdict<Verdict>(socket: Socket, timeoutMs: number, rules: ReadingRules<Verdict>, done: (verdict: Verdict | undefined) => void): SocketReading<Verdict> {
  return new Reading(socket, timeoutMs, rules, done);
}

class Reading<Verdict> implements SocketReading<Verdict>, ReadingEvents {
  private readonly socket: ReadSocket;
  private readonly rules: ReadingRules<Verdict>;
  private readonly done: (verdict: Verdict | undefined) => void;
  private readonly timer: NodeJS.Timeout;
  finished = false;

  constructor(socket: ReadSocket, timeoutMs: number, rules: ReadingRules<Verdict>, done: (verdict: Verdict | undefined) => void) {
    this.socket = socket;
    this.rules = rules;
    this.done = done;
    this.timer = setTimeout(onReadingTimeout, timeoutMs, this);
    socket[kReading] = this;
    if (usesReusedReads(socket)) setReadTarget(socket, readingTarget);
    else socket.on('data', onReadingData);
    socket.on('end', onReadingEnd);
    socket.on('close', onReadingClose);
    socket.on('error', onReadingError);
  }

  data(chunk: Buffer): void {
    const verdict = this.rules.data(chunk);
    if (verdict !== undefined) this.finish(verdict);
  }

  end(): void {
    this.finish(this.rules.end());
  }

  close(): void {
    this.finish(this.rules.close());
  }

  error(error: NodeJS.ErrnoException): void {
    this.finish(this.rules.error(error));
  }

  timeout(): void {
    this.finish(this.rules.timeout());
  }

  settle(verdict: Verdict): void {
    this.finish(verdict);
  }

  cancel(): void {
    this.finish(undefined);
  }

  private finish(verdict: Verdict | undefined): void {
    if (this.finished) return;
    this.finished = true;
    clearTimeout(this.timer);
    const socket = this.socket;
    // Undone before `done` runs: it may start the next reading on the same socket.
    socket[kReading] = undefined;
    if (usesReusedReads(socket)) setReadTarget(socket, undefined);
    else socket.off('data', onReadingData);
    socket.off('end', onReadingEnd);
    socket.off('close', onReadingClose);
    socket.off('error', onReadingError);
    this.done(verdict);
  }
}

function onReadingTimeout(reading: ReadingEvents): void {
  reading.timeout();
}

function onReadingData(this: ReadSocket, chunk: Buffer): void {
  this[kReading]?.data(chunk);
}

/** A reused read is a view overwritten by the next read: the rules get a copy they may keep. */
function readingTarget(this: ReadSocket, chunk: Buffer, owned: boolean): boolean {
  this[kReading]?.data(owned ? chunk : Buffer.from(chunk));
  return false;
}

function onReadingEnd(this: ReadSocket): void {
  this[kReading]?.end();
}

function onReadingClose(this: ReadSocket): void {
  this[kReading]?.close();
}

function onReadingError(this: ReadSocket, error: NodeJS.ErrnoException): void {
  this[kReading]?.error(error);
}
