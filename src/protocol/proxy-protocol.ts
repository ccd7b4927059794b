// Incremental PROXY protocol header parser (HAProxy proxy-protocol.txt, v1 and
// v2). Pure: fed bytes, never touches a socket. The header may arrive split in
// any way; every byte is checked as it arrives, so input that cannot become a
// valid header is rejected at the first offending byte and the result never
// depends on how the input was chunked.
//
// Choices where the spec leaves room:
// - v1 "UNKNOWN" and v2 LOCAL both give command 'LOCAL', family 'UNSPEC', no
//   addresses and no TLVs. For v2 LOCAL the family byte and the whole block
//   (addresses and TLVs) are ignored, as the spec says, but the length cap
//   still applies.
// - v2 PROXY accepts only TCP over IPv4 (0x11) and IPv6 (0x21); UNSPEC, UDP,
//   UNIX and undefined family bytes are errors.
// - v2 length field capped at 4096 by default (configurable up to 65535):
//   rejected as soon as the 16-byte fixed part has arrived.
// - v2 TLVs must tile the rest of the block exactly; 1-2 trailing bytes or a
//   TLV running past the end are errors. TLV values (CRC32C included) are not
//   interpreted.
// - v1 addresses are returned as written (validated with net.isIPv4/isIPv6,
//   no zone ids); v2 IPv6 addresses are formatted per RFC 5952, IPv4-mapped
//   ones as "::ffff:a.b.c.d" like Node's socket.remoteAddress.

import { ProxyV1Parser } from './proxy-protocol-v1.js';
import { ProxyV2Parser, V2_DEFAULT_MAX_LENGTH, V2_SPEC_MAX_LENGTH } from './proxy-protocol-v2.js';

export { V1_MAX_HEADER_BYTES } from './proxy-protocol-v1.js';
export {
  V2_DEFAULT_MAX_LENGTH,
  V2_FIXED_HEADER_BYTES,
  V2_SIGNATURE,
  V2_SPEC_MAX_LENGTH,
  formatIPv6,
} from './proxy-protocol-v2.js';

export type ProxyProtocolMode = 'v1' | 'v2' | 'any';

export interface ProxyHeader {
  version: 1 | 2;
  /** v1 "UNKNOWN" and v2 LOCAL: use the real connection addresses. */
  command: 'PROXY' | 'LOCAL';
  /** Always 'UNSPEC' for LOCAL (the spec says the family is then ignored). */
  family: 'TCP4' | 'TCP6' | 'UNIX' | 'UNSPEC';
  sourceAddress?: string;
  sourcePort?: number;
  destinationAddress?: string;
  destinationPort?: number;
  /** v2 TLVs in order, values skipped. Empty for v1 and for v2 LOCAL. */
  tlvs: ReadonlyArray<{ type: number; length: number }>;
  /** Bytes consumed by the header. */
  headerBytes: number;
}

export const PROXY_HEADER_INVALID = 'PROXY_HEADER_INVALID';

export type ProxyParseResult =
  | { state: 'incomplete' }
  | { state: 'done'; header: ProxyHeader; rest: Buffer }
  | { state: 'error'; code: typeof PROXY_HEADER_INVALID; message: string };

export interface ProxyHeaderParserOptions {
  /**
   * Largest v2 length field accepted (bytes after the 16-byte fixed part).
   * Default 4096; at most 65535, the largest the field can carry.
   */
  maxV2Length?: number;
}

/**
 * @internal What a version-specific parser reports after a chunk.
 * `end` is the index in that chunk just past the header.
 */
export type FeedResult =
  | { kind: 'more' }
  | { kind: 'done'; header: ProxyHeader; end: number }
  | { kind: 'error'; message: string };

const V1_FIRST_BYTE = 0x50; // 'P'
const V2_FIRST_BYTE = 0x0d; // CR, first byte of the v2 signature
const INCOMPLETE: ProxyParseResult = Object.freeze({ state: 'incomplete' });

function describeFirstByte(byte: number): string {
  const hex = `0x${byte.toString(16).padStart(2, '0')}`;
  const printable = byte >= 0x20 && byte <= 0x7e ? ` ('${String.fromCharCode(byte)}')` : '';
  const hint = byte === 0x53 ? ' (an SSH identification sent without a PROXY header?)' : '';
  return `${hex}${printable}${hint}`;
}

export class ProxyHeaderParser {
  readonly #mode: ProxyProtocolMode;
  readonly #maxV2Length: number;
  #inner: ProxyV1Parser | ProxyV2Parser | undefined;
  #finished: 'done' | 'error' | undefined;

  constructor(mode: ProxyProtocolMode, options: ProxyHeaderParserOptions = {}) {
    if (mode !== 'v1' && mode !== 'v2' && mode !== 'any') {
      throw new TypeError(`ProxyHeaderParser: unknown mode ${JSON.stringify(mode)}`);
    }
    const maxV2Length = options.maxV2Length ?? V2_DEFAULT_MAX_LENGTH;
    if (!Number.isInteger(maxV2Length) || maxV2Length < 0 || maxV2Length > V2_SPEC_MAX_LENGTH) {
      throw new RangeError(`ProxyHeaderParser: maxV2Length must be an integer 0..${V2_SPEC_MAX_LENGTH}, got ${maxV2Length}`);
    }
    this.#mode = mode;
    this.#maxV2Length = maxV2Length;
  }

  /**
   * Feeds the next bytes. After 'done' or 'error' the parser is finished and
   * pushing again throws. `rest` of a 'done' result is a view (subarray) of
   * the last chunk pushed, holding the bytes after the header.
   */
  push(chunk: Buffer): ProxyParseResult {
    if (this.#finished !== undefined) {
      throw new Error(`ProxyHeaderParser.push() called after the parser finished (${this.#finished})`);
    }
    if (chunk.length === 0) return INCOMPLETE;
    if (this.#inner === undefined) {
      const chosen = this.#choose(chunk[0] as number);
      if (typeof chosen === 'string') return this.#fail(chosen);
      this.#inner = chosen;
    }
    const result = this.#inner.feed(chunk);
    switch (result.kind) {
      case 'more':
        return INCOMPLETE;
      case 'error':
        return this.#fail(result.message);
      case 'done':
        this.#finished = 'done';
        return { state: 'done', header: result.header, rest: chunk.subarray(result.end) };
    }
  }

  /** Picks the version parser from the first byte, or returns an error message. */
  #choose(first: number): ProxyV1Parser | ProxyV2Parser | string {
    const v1 = first === V1_FIRST_BYTE;
    const v2 = first === V2_FIRST_BYTE;
    switch (this.#mode) {
      case 'v1':
        if (v1) return new ProxyV1Parser();
        if (v2) return `expected a v1 PROXY header ('PROXY '), got 0x0d: start of a v2 signature, but mode is 'v1'`;
        return `expected a v1 PROXY header ('PROXY '), got first byte ${describeFirstByte(first)}`;
      case 'v2':
        if (v2) return new ProxyV2Parser(this.#maxV2Length);
        if (v1) return `expected a v2 PROXY header (binary signature), got 'P': start of a v1 header, but mode is 'v2'`;
        return `expected a v2 PROXY header (binary signature), got first byte ${describeFirstByte(first)}`;
      case 'any':
        if (v1) return new ProxyV1Parser();
        if (v2) return new ProxyV2Parser(this.#maxV2Length);
        return `expected a PROXY header ('P' for v1 or 0x0d for v2), got first byte ${describeFirstByte(first)}`;
    }
  }

  #fail(message: string): ProxyParseResult {
    this.#finished = 'error';
    return { state: 'error', code: PROXY_HEADER_INVALID, message };
  }
}
