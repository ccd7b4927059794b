import type { OnReadOpts, Socket } from 'node:net';

/**
 * Socket reads into a reused per-socket buffer (`net.connect({ onread })`) instead of
 * a fresh 64 KiB allocation per read. Those allocations are external memory to V8:
 * in bulk transfers they trigger a scavenge every ~27 MB and, in a process with a
 * larger heap, a stream of mark-compacts (see docs/benchmarks.md).
 *
 * Such a socket emits no 'data' events. Its bytes go to the socket's read target
 * (and to taps), each call with a view that is only valid during the call: whoever
 * keeps bytes copies them. A target returns true when it could not help keeping the
 * view (a write that did not complete synchronously still references it); the next
 * read then gets a new buffer and the old one belongs to that write.
 */
export type ReadTarget = (this: Socket, chunk: Buffer) => boolean;
export type ReadTap = (chunk: Buffer) => void;

/**
 * A socket starts with a small buffer and gets the full size after a few reads in a
 * row filled it (bulk: fewer syscalls). Idle sessions keep the small one: a buffer per
 * socket is resident memory, 4 KiB measured as +4 KB RSS per idle session; an SSH
 * handshake's few kilobytes take a few more reads instead.
 */
const FIRST_BUFFER_BYTES = 1024;
const READ_BUFFER_BYTES = 64 * 1024;
const FILLED_READS_TO_GROW = 4;

const kTarget = Symbol('readTarget');
const kTaps = Symbol('readTaps');
const kPending = Symbol('readPending');

interface ReusedReadSocket extends Socket {
  [kTarget]?: ReadTarget | undefined;
  [kTaps]?: ReadTap[] | undefined;
  /** Bytes read while no target was set (copies), handed to the next target. */
  [kPending]?: Buffer[] | undefined;
}

/** `onread` options for one socket: its own buffer, replaced only after a target kept it. */
export function reusedReadOptions(): OnReadOpts {
  let buffer: Buffer | undefined;
  let kept = false;
  let filledInARow = 0;
  return {
    buffer: (): Buffer => {
      if (buffer === undefined) buffer = Buffer.allocUnsafeSlow(FIRST_BUFFER_BYTES);
      else if (buffer.length < READ_BUFFER_BYTES && filledInARow >= FILLED_READS_TO_GROW) buffer = Buffer.allocUnsafeSlow(READ_BUFFER_BYTES);
      else if (kept) buffer = Buffer.allocUnsafeSlow(buffer.length);
      kept = false;
      return buffer;
    },
    callback(this: ReusedReadSocket, bytes: number, into: Uint8Array): boolean {
      const chunk = Buffer.from(into.buffer, into.byteOffset, bytes);
      filledInARow = bytes === into.byteLength ? filledInARow + 1 : 0;
      const taps = this[kTaps];
      if (taps !== undefined) for (const tap of taps.slice()) tap(chunk);
      const target = this[kTarget];
      if (target === undefined) (this[kPending] ??= []).push(Buffer.from(chunk));
      else if (target.call(this, chunk)) kept = true;
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
  for (const chunk of pending) target.call(socket, chunk);
}

/** Sees every chunk (a view valid during the call) before the target; returns the remover. */
export function addReadTap(socket: Socket, tap: ReadTap): () => void {
  const reused = socket as ReusedReadSocket;
  const taps = (reused[kTaps] ??= []);
  taps.push(tap);
  return () => {
    const index = taps.indexOf(tap);
    if (index >= 0) taps.splice(index, 1);
    if (taps.length === 0 && reused[kTaps] === taps) reused[kTaps] = undefined;
  };
}
