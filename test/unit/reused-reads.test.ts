import assert from 'node:assert/strict';
import { Socket } from 'node:net';
import { describe, it } from 'node:test';
import { markReusedReads, reusedReadOptions, setReadTarget } from '../../src/net/reused-reads.js';

/** One read as libuv does it: the buffer function, bytes copied in, then the callback. */
function read(options: ReturnType<typeof reusedReadOptions>, socket: Socket, bytes: Buffer, into?: Buffer): Buffer {
  const buffer = into ?? (typeof options.buffer === 'function' ? options.buffer() : options.buffer);
  const target = Buffer.from(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  bytes.copy(target);
  options.callback.call(socket, bytes.length, target);
  return target;
}

describe('reused read buffers', () => {
  it('every socket reads small chunks into one shared buffer; an idle socket holds none of its own', () => {
    const first = reusedReadOptions();
    const second = reusedReadOptions();
    const buffer = (options: ReturnType<typeof reusedReadOptions>): Uint8Array => (typeof options.buffer === 'function' ? options.buffer() : options.buffer);
    assert.equal(buffer(first).buffer, buffer(second).buffer, 'the same memory');
  });

  it('targets get a copy of a shared read, so a later read cannot overwrite what a pending write holds', () => {
    const options = reusedReadOptions();
    const socket = new Socket();
    markReusedReads(socket);
    const got: Buffer[] = [];
    setReadTarget(socket, (chunk) => {
      got.push(chunk);
      return true; // as a write that did not complete synchronously
    });
    read(options, socket, Buffer.from('first'));
    read(reusedReadOptions(), socket, Buffer.from('XXXXXXXXXX')); // another socket's read into the shared buffer
    assert.equal(got[0]?.toString(), 'first');
    socket.destroy();
  });

  it('a full read switches the socket to its own buffer (no copy), and a short one back to the shared one', () => {
    const options = reusedReadOptions();
    const socket = new Socket();
    markReusedReads(socket);
    const seen: Buffer[] = [];
    const firstBytes: number[] = [];
    const owned: boolean[] = [];
    let keep = false;
    setReadTarget(socket, (chunk, isOwned) => {
      seen.push(chunk);
      firstBytes.push(chunk[0] ?? -1);
      owned.push(isOwned);
      return keep;
    });
    const shared = read(options, socket, Buffer.from('small'));
    const full = Buffer.alloc(shared.length, 7);
    read(options, socket, full);
    const own = options.buffer as () => Buffer;
    const bulkBuffer = own();
    assert.notEqual(bulkBuffer.buffer, shared.buffer, 'bulk reads go to a buffer of its own');
    read(options, socket, Buffer.alloc(bulkBuffer.length, 1), bulkBuffer);
    assert.equal(seen[2]?.buffer, bulkBuffer.buffer, 'the target gets a view, not a copy');
    assert.equal(own(), bulkBuffer, 'not kept: reused');
    keep = true;
    read(options, socket, Buffer.alloc(bulkBuffer.length, 2), bulkBuffer);
    const next = own();
    assert.notEqual(next, bulkBuffer, 'kept by a pending write: the next read gets a new one');
    read(options, socket, Buffer.from('tail'), next);
    assert.equal(own().buffer, shared.buffer, 'a short read lets its own buffer go');
    assert.deepEqual(firstBytes, [0x73, 7, 1, 2, 0x74]);
    assert.deepEqual(owned, [true, true, false, false, false], 'copies out of the shared buffer are the target\'s own; reads into its own buffer are views');
    socket.destroy();
  });
});
