import type { Socket } from 'node:net';
import { readInto, stopReadingInto } from './reused-reads.js';

/** What a reading makes of each thing the socket does; anything but undefined is its verdict and ends it. */
export interface ReadingRules<Verdict> {
  readonly data: (chunk: Buffer) => Verdict | undefined;
  readonly end: () => Verdict;
  readonly close: () => Verdict;
  readonly error: (error: NodeJS.ErrnoException) => Verdict;
  readonly timeout: () => Verdict;
}

export interface SocketReading<Verdict> {
  /** Ends with a verdict reached outside the socket (bytes read before the reading began). */
  settle(verdict: Verdict): void;
  /** Ends without a verdict (the caller is closing the socket). */
  cancel(): void;
  readonly finished: boolean;
}

/**
 * The one way a parser is fed from a socket (a PROXY header, a server's KEXINIT): chunks go
 * to `rules.data` until it, an end, a close, an error or the timer gives a verdict; then the
 * timer is cleared and every listener removed, exactly once, and `done` gets the verdict
 * (undefined when cancelled). What becomes of the socket afterwards is the caller's.
 * Sockets that read into reused buffers are read the same way (src/net/reused-reads.ts).
 */
export function readUntilVerdict<Verdict>(socket: Socket, timeoutMs: number, rules: ReadingRules<Verdict>, done: (verdict: Verdict | undefined) => void): SocketReading<Verdict> {
  let finished = false;
  const finish = (verdict: Verdict | undefined): void => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    stopReadingInto(socket, onData);
    socket.off('end', onEnd);
    socket.off('close', onClose);
    socket.off('error', onError);
    done(verdict);
  };
  const onData = (chunk: Buffer): void => {
    const verdict = rules.data(chunk);
    if (verdict !== undefined) finish(verdict);
  };
  const onEnd = (): void => finish(rules.end());
  const onClose = (): void => finish(rules.close());
  const onError = (error: NodeJS.ErrnoException): void => finish(rules.error(error));
  const timer = setTimeout(() => finish(rules.timeout()), timeoutMs);
  readInto(socket, onData);
  socket.on('end', onEnd);
  socket.on('close', onClose);
  socket.on('error', onError);
  return {
    settle: (verdict) => finish(verdict),
    cancel: () => finish(undefined),
    get finished() {
      return finished;
    },
  };
}
