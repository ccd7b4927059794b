// PROXY protocol version 2 (binary form).
//
//   12-byte signature | ver_cmd (1) | fam (1) | len (2, big endian) | len bytes
//
// The len bytes hold the address block for the family (12 bytes for TCP over
// IPv4, 36 for TCP over IPv6) followed by TLVs (type 1 byte, length 2 bytes,
// value). The fixed part is checked byte by byte and TLV headers as soon as
// they arrive, so malformed input is rejected at the first offending byte and
// the verdict never depends on how the input was split into chunks.

import type { FeedResult, ProxyHeader } from './proxy-protocol.js';

export const V2_SIGNATURE: Buffer = Buffer.from([
  0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
]);
export const V2_FIXED_HEADER_BYTES = 16;
/** Largest value the 16-bit length field can carry. */
export const V2_SPEC_MAX_LENGTH = 0xffff;
/**
 * Default cap on the length field. An IPv6 address block is 36 bytes and real
 * senders add at most a few hundred bytes of TLVs; capping lets us reject a
 * garbage length after 16 bytes instead of buffering 64 KiB per connection.
 */
export const V2_DEFAULT_MAX_LENGTH = 4096;

const TLV_HEADER_BYTES = 3;

const FAMILY_NAMES: ReadonlyMap<number, string> = new Map([
  [0x00, 'UNSPEC'],
  [0x11, 'TCP over IPv4'],
  [0x12, 'UDP over IPv4'],
  [0x21, 'TCP over IPv6'],
  [0x22, 'UDP over IPv6'],
  [0x31, 'UNIX stream'],
  [0x32, 'UNIX datagram'],
]);

function hex(byte: number): string {
  return `0x${byte.toString(16).padStart(2, '0')}`;
}

/** Why a family/transport byte cannot carry a PROXY command, or undefined if it can. */
function unsupportedFamilyReason(fam: number): string | undefined {
  const name = FAMILY_NAMES.get(fam);
  if (name === undefined) {
    return `v2 family/transport byte ${hex(fam)} is not defined by the specification`;
  }
  if (fam === 0x11 || fam === 0x21) return undefined;
  if ((fam & 0x0f) === 0x02) {
    return `v2 family ${hex(fam)} (${name}) not supported for PROXY command: only STREAM (TCP) transports are accepted`;
  }
  return `v2 family ${hex(fam)} (${name}) not supported for PROXY command`;
}

type Phase = 'fixed' | 'block';

export class ProxyV2Parser {
  readonly #maxLength: number;
  #phase: Phase = 'fixed';
  readonly #fixed = Buffer.alloc(V2_FIXED_HEADER_BYTES);
  #fixedFilled = 0;
  #command: 'LOCAL' | 'PROXY' = 'LOCAL';
  #family: 0x11 | 0x21 | undefined;
  #length = 0;
  #addressBytes = 0;
  #block: Buffer = Buffer.alloc(0);
  #blockFilled = 0;
  /** Offset in the block of the next TLV header to read. */
  #tlvOffset = 0;
  readonly #tlvs: { type: number; length: number }[] = [];

  constructor(maxLength: number) {
    this.#maxLength = maxLength;
  }

  feed(chunk: Buffer): FeedResult {
    let i = 0;
    while (this.#phase === 'fixed' && i < chunk.length) {
      const error = this.#stepFixed(chunk[i] as number);
      i++;
      if (error !== undefined) return { kind: 'error', message: error };
    }
    if (this.#phase === 'fixed') return { kind: 'more' };

    const take = Math.min(this.#length - this.#blockFilled, chunk.length - i);
    chunk.copy(this.#block, this.#blockFilled, i, i + take);
    this.#blockFilled += take;
    i += take;

    const error = this.#scanTlvs();
    if (error !== undefined) return { kind: 'error', message: error };
    if (this.#blockFilled < this.#length) return { kind: 'more' };
    return { kind: 'done', header: this.#header(), end: i };
  }

  /** Consumes one byte of the 16-byte fixed part; returns an error message or undefined. */
  #stepFixed(byte: number): string | undefined {
    const offset = this.#fixedFilled;
    this.#fixed[offset] = byte;
    this.#fixedFilled++;
    if (offset < V2_SIGNATURE.length) {
      const expected = V2_SIGNATURE[offset] as number;
      if (byte !== expected) {
        return `v2 signature mismatch at offset ${offset}: expected ${hex(expected)}, got ${hex(byte)}`;
      }
      return undefined;
    }
    switch (offset) {
      case 12: {
        const version = byte >> 4;
        const command = byte & 0x0f;
        if (version !== 2) {
          return `v2 version ${version} not supported (version/command byte ${hex(byte)}): only version 2 is defined`;
        }
        if (command > 1) {
          return `v2 command ${hex(command)} invalid (version/command byte ${hex(byte)}): expected LOCAL (0x0) or PROXY (0x1)`;
        }
        this.#command = command === 1 ? 'PROXY' : 'LOCAL';
        return undefined;
      }
      case 13: {
        // LOCAL: the spec says the family is ignored and the real connection
        // endpoints are used, so any family byte is accepted.
        if (this.#command === 'LOCAL') return undefined;
        const reason = unsupportedFamilyReason(byte);
        if (reason !== undefined) return reason;
        this.#family = byte === 0x11 ? 0x11 : 0x21;
        this.#addressBytes = byte === 0x11 ? 12 : 36;
        return undefined;
      }
      case 14:
        return undefined;
      default:
        return this.#startBlock();
    }
  }

  #startBlock(): string | undefined {
    const length = this.#fixed.readUInt16BE(14);
    if (length > this.#maxLength) {
      return `v2 length field ${length} exceeds the limit of ${this.#maxLength} bytes`;
    }
    if (length < this.#addressBytes) {
      const family = this.#family === 0x11 ? 'TCP4' : 'TCP6';
      return `v2 length field ${length} too short for the ${family} address block (${this.#addressBytes} bytes)`;
    }
    this.#length = length;
    this.#block = Buffer.alloc(length);
    this.#tlvOffset = this.#addressBytes;
    this.#phase = 'block';
    return undefined;
  }

  /** Reads every TLV header available so far; values are skipped unread. */
  #scanTlvs(): string | undefined {
    // LOCAL discards the whole block, TLVs included.
    if (this.#command === 'LOCAL') return undefined;
    for (;;) {
      const left = this.#length - this.#tlvOffset;
      if (left === 0) return undefined;
      const at = V2_FIXED_HEADER_BYTES + this.#tlvOffset;
      if (left < TLV_HEADER_BYTES) {
        return `v2 ${left} trailing byte(s) at offset ${at} are too short for a TLV header (${TLV_HEADER_BYTES} bytes)`;
      }
      if (this.#blockFilled < this.#tlvOffset + TLV_HEADER_BYTES) return undefined;
      const type = this.#block[this.#tlvOffset] as number;
      const length = this.#block.readUInt16BE(this.#tlvOffset + 1);
      if (length > left - TLV_HEADER_BYTES) {
        return `v2 TLV type ${hex(type)} at offset ${at} declares ${length} value bytes but only ${left - TLV_HEADER_BYTES} remain in the header`;
      }
      this.#tlvs.push({ type, length });
      this.#tlvOffset += TLV_HEADER_BYTES + length;
    }
  }

  #header(): ProxyHeader {
    const headerBytes = V2_FIXED_HEADER_BYTES + this.#length;
    if (this.#command === 'LOCAL' || this.#family === undefined) {
      return { version: 2, command: 'LOCAL', family: 'UNSPEC', tlvs: [], headerBytes };
    }
    const block = this.#block;
    const v4 = this.#family === 0x11;
    const addressLength = v4 ? 4 : 16;
    const format = v4 ? formatIPv4 : formatIPv6;
    return {
      version: 2,
      command: 'PROXY',
      family: v4 ? 'TCP4' : 'TCP6',
      sourceAddress: format(block.subarray(0, addressLength)),
      destinationAddress: format(block.subarray(addressLength, 2 * addressLength)),
      sourcePort: block.readUInt16BE(2 * addressLength),
      destinationPort: block.readUInt16BE(2 * addressLength + 2),
      tlvs: this.#tlvs,
      headerBytes,
    };
  }
}

function formatIPv4(bytes: Buffer): string {
  return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
}

/**
 * RFC 5952 text form (lowercase, longest run of two or more zero groups
 * compressed to "::"); IPv4-mapped addresses as "::ffff:a.b.c.d", the form
 * Node reports for `socket.remoteAddress` on dual-stack listeners.
 */
export function formatIPv6(bytes: Buffer): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i));
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `::ffff:${formatIPv4(bytes.subarray(12, 16))}`;
  }
  let bestStart = -1;
  let bestLength = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const text = groups.map((g) => g.toString(16));
  if (bestLength < 2) return text.join(':');
  const head = text.slice(0, bestStart).join(':');
  const tail = text.slice(bestStart + bestLength).join(':');
  return `${head}::${tail}`;
}
