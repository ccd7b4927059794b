import { connect, Socket } from 'node:net';
import { formatHostPort, normaliseAddress } from '../net/address.js';
import { familyOf, TransparentSocketError } from '../net/transparent-socket.js';
import { reusedReadOptions } from '../net/reused-reads.js';
import type { AttemptHandle, AttemptOptions, AttemptOutcome } from './attempt-types.js';

/** A connecting socket: the proxy's own address, or the client's (transparent); the error when a transparent socket cannot be made. */
export function openConnection(options: AttemptOptions): Socket | TransparentSocketError {
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
export function failSoon(error: TransparentSocketError, options: AttemptOptions, callback: (outcome: AttemptOutcome) => void): AttemptHandle {
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
