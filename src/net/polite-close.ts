import type { Socket } from 'node:net';

/** A connection being closed politely; `abort()` ends it at once (shutdown). */
export interface PoliteClose {
  abort(): void;
}

/**
 * Ends a backend connection we will not use the way sshd likes: optionally our own
 * identification (so sshd logs a plain disconnect, not "did not receive
 * identification string"), then FIN, reading until sshd closes its side, and a reset
 * only if it has not within `waitMs`. `done` runs once, when the socket is gone: sshd
 * counts the connection against MaxStartups until then, so that is when its slot frees.
 */
export function closePolitely(socket: Socket, options: { readonly send?: Buffer; readonly waitMs: number }, done: () => void): PoliteClose {
  let finished = false;
  const finish = (): void => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    socket.destroy();
    done();
  };
  const timer = setTimeout(finish, options.waitMs);
  socket.on('error', finish);
  socket.once('close', finish);
  socket.resume();
  if (options.send) socket.end(options.send);
  else socket.end();
  return { abort: finish };
}
