import type { OnReadOpts, Socket } from 'node:net';

/**
 * Socket reads into reused buffers (`net.connect({ onread })`) instead of a fresh
 * 64 KiB allocation per read. Those allocations are external memory to V8:
 * in bulk transfers they trigger a scavenge every ~27 MB and, in a process with a
 * larger heap, a stream of mark-compacts (see docs/benchmarks.md).
 *
 * Such a socket emits no 'data' events. Its bytes go to the socket's read target
 * (and to taps). Taps always get a view that is only valid during the call. The target
 * gets either a copy that is its own (`owned`: a small read, copied out of the shared
 * buffer) or such a view: whoever keeps a view copies it. A target returns true when it
 * could not help keeping a view (a write that did not complete synchronously still
 * references it); the next read then gets a new buffer and the old one belongs to that write.
 */
export type ReadTarget = (this: Socket, chunk: Buffer, owned: boolean) => boolean;
/** Called with the reading socket as `this`, so one module-level function serves every socket. */
export type ReadTap = (this: Socket, chunk: Buffer) => void;

/**
 * Small reads (a handshake, interactive traffic) land in one buffer shared by every
 * socket of the process, and are copied out: an idle session holds no read buffer at
 * all (a per-socket 1 KiB one was 1 KB of resident memory per idle session, and an
 * allocation per backend connection). Sharing is safe because libuv allocates, reads
 * and calls back for one socket at a time, synchronously; the copy makes sure no write
 * still references the shared bytes when the next read overwrites them.
 *
 * A read that fills its buffer is bulk: the socket then reads into a buffer of its own
 * without copying, until a read comes back short, when that buffer is let go again.
 */
const READ_BUFFER_BYTES = 64 * 1024;
let sharedBuffer: Buffer | undefined;

const kTarget = Symbol('readTarget');
const kTaps = Symbol('readTaps');
const kPending = Symbol('readPending');

interface ReusedReadSocket extends Socket {
  [kTarget]?: ReadTarget | undefined;
  /** Replaced on every change, never mutated: a read iterates it safely while a tap removes itself. */
  [kTaps]?: readonly ReadTap[] | undefined;
  /** Bytes read while no target was set (copies), handed to the next target. */
  [kPending]?: Buffer[] | undefined;
}

/** `onread` options for one socket: the shared buffer, or its own while it reads in bulk. */
export function reusedReadOptions(): OnReadOpts {
  /** The socket's own buffer while it reads in bulk; replaced only after a target kept it. */
  let own: Buffer | undefined;
  let kept = false;
  return {
    buffer: (): Buffer => {
      if (own === undefined) {
        kept = false;
        return (sharedBuffer ??= Buffer.allocUnsafeSlow(READ_BUFFER_BYTES));
      }
      if (kept) own = Buffer.allocUnsafeSlow(READ_BUFFER_BYTES);
      kept = false;
      return own;
    },
    callback(this: ReusedReadSocket, bytes: number, into: Uint8Array): boolean {
      const view = Buffer.from(into.buffer, into.byteOffset, bytes);
      const shared = own === undefined;
      const bulk = bytes === into.byteLength;
      // Decided now for the next read: the buffer function runs right after this callback.
      if (bulk) own ??= Buffer.allocUnsafeSlow(READ_BUFFER_BYTES);
      else own = undefined;
      const taps = this[kTaps];
      if (taps !== undefined) for (const tap of taps) tap.call(this, view);
      const target = this[kTarget];
      if (target === undefined) (this[kPending] ??= []).push(Buffer.from(view));
      else if (shared) target.call(this, Buffer.from(view), true);
      else if (target.call(this, view, false)) kept = true;
      return true;
    },
  };
}

/** Marks a socket made with `reusedReadOptions()`; call right after `connect()`. */
export function markReusedReads(socket: Socket): void {
  (socket as ReusedReadSocket)[kTarget] = undefined;
}

export function usesReusedReads(socket: Socket): boolean {
  return kTarget in socket;
}

/** Sets (or clears) where the socket's bytes go; bytes read meanwhile are delivered first. */
export function setReadTarget(socket: Socket, target: ReadTarget | undefined): void {
  const reused = socket as ReusedReadSocket;
  reused[kTarget] = target;
  const pending = reused[kPending];
  if (target === undefined || pending === undefined) return;
  reused[kPending] = undefined;
  for (const chunk of pending) target.call(socket, chunk, true);
}

/** Sees every chunk (a view valid during the call) before the target, until `removeReadTap`. */
export function addReadTap(socket: Socket, tap: ReadTap): void {
  const reused = socket as ReusedReadSocket;
  const taps = reused[kTaps];
  // A literal, not a spread: a spread array reserves 17 slots, and an idle session keeps it.
  reused[kTaps] = taps === undefined ? [tap] : taps.concat(tap);
}

export function removeReadTap(socket: Socket, tap: ReadTap): void {
  const reused = socket as ReusedReadSocket;
  const rest = reused[kTaps]?.filter((each) => each !== tap);
  reused[kTaps] = rest === undefined || rest.length === 0 ? undefined : rest;
}
