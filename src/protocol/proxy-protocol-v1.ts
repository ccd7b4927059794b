// PROXY protocol version 1 (text form), fed one byte at a time.
//
//   "PROXY" SP ("TCP4" | "TCP6") SP src SP dst SP sport SP dport CRLF
//   "PROXY" SP "UNKNOWN" [SP <ignored bytes>] CRLF
//
// Every byte is checked as it arrives, so a header that can no longer become
// valid is rejected at the first offending byte, and the verdict for a given
// byte sequence never depends on how it was split into chunks.

import { isIPv4, isIPv6 } from 'node:net';
import type { FeedResult, ProxyHeader } from './proxy-protocol.js';

/** Longest v1 header allowed by the spec, CRLF included. */
export const V1_MAX_HEADER_BYTES = 107;

const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const LITERAL = 'PROXY ';
const PROTOCOLS = ['TCP4', 'TCP6', 'UNKNOWN'] as const;
type V1Protocol = (typeof PROTOCOLS)[number];

type Field = 'source address' | 'destination address' | 'source port' | 'destination port';

type State =
  | { name: 'literal' }
  | { name: 'protocol' }
  | { name: 'unknown-rest' }
  | { name: 'field'; field: Field }
  | { name: 'lf' };

const MAX_ADDRESS_CHARS: Record<'TCP4' | 'TCP6', number> = {
  TCP4: 15, // 255.255.255.255
  TCP6: 45, // ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255
};

function describeByte(byte: number): string {
  const hex = `0x${byte.toString(16).padStart(2, '0')}`;
  return byte >= 0x21 && byte <= 0x7e ? `'${String.fromCharCode(byte)}' (${hex})` : hex;
}

function isDigit(byte: number): boolean {
  return byte >= 0x30 && byte <= 0x39;
}

function isHexDigit(byte: number): boolean {
  return isDigit(byte) || (byte >= 0x41 && byte <= 0x46) || (byte >= 0x61 && byte <= 0x66);
}

export class ProxyV1Parser {
  #state: State = { name: 'literal' };
  /** Bytes of the header consumed so far. */
  #offset = 0;
  #token = '';
  #protocol: V1Protocol | undefined;
  #sourceAddress = '';
  #destinationAddress = '';
  #sourcePort = 0;
  #destinationPort = 0;

  feed(chunk: Buffer): FeedResult {
    for (let i = 0; i < chunk.length; i++) {
      const byte = chunk[i] as number;
      const offset = this.#offset;
      this.#offset++;
      const error = this.#step(byte, offset);
      if (error !== undefined) return { kind: 'error', message: error };
      if (this.#state.name === 'lf' && byte === LF) {
        return { kind: 'done', header: this.#header(), end: i + 1 };
      }
      if (this.#offset >= V1_MAX_HEADER_BYTES) {
        return {
          kind: 'error',
          message: `v1 header exceeds ${V1_MAX_HEADER_BYTES} bytes without CRLF`,
        };
      }
    }
    return { kind: 'more' };
  }

  /** Consumes one byte; returns an error message or undefined. */
  #step(byte: number, offset: number): string | undefined {
    const state = this.#state;
    if (byte === LF && state.name !== 'lf') {
      return `v1 header has a bare LF at offset ${offset} (lines must end in CRLF)`;
    }
    switch (state.name) {
      case 'literal': {
        const expected = LITERAL.charCodeAt(offset);
        if (byte !== expected) {
          return `v1 header must start with 'PROXY ': offset ${offset} is ${describeByte(byte)}`;
        }
        if (offset === LITERAL.length - 1) this.#state = { name: 'protocol' };
        return undefined;
      }
      case 'protocol':
        return this.#stepProtocol(byte);
      case 'unknown-rest':
        if (byte === CR) this.#state = { name: 'lf' };
        return undefined;
      case 'field':
        return this.#stepField(state.field, byte);
      case 'lf':
        // A CR has just been seen; only LF may follow it.
        if (byte !== LF) {
          return `v1 header has CR not followed by LF at offset ${offset} (got ${describeByte(byte)})`;
        }
        return undefined;
    }
  }

  #stepProtocol(byte: number): string | undefined {
    if (byte === SP || byte === CR) {
      const protocol = PROTOCOLS.find((p) => p === this.#token);
      if (protocol === undefined) {
        return this.#token === ''
          ? 'v1 protocol is empty (double space after PROXY?)'
          : `v1 protocol '${this.#token}' is incomplete: expected TCP4, TCP6 or UNKNOWN`;
      }
      this.#protocol = protocol;
      this.#token = '';
      if (protocol === 'UNKNOWN') {
        this.#state = byte === CR ? { name: 'lf' } : { name: 'unknown-rest' };
        return undefined;
      }
      if (byte === CR) return `v1 ${protocol} header ends before the source address`;
      this.#state = { name: 'field', field: 'source address' };
      return undefined;
    }
    const candidate = this.#token + String.fromCharCode(byte);
    if (!PROTOCOLS.some((p) => p.startsWith(candidate))) {
      return `v1 protocol must be TCP4, TCP6 or UNKNOWN: got ${describeByte(byte)} after '${this.#token}'`;
    }
    this.#token = candidate;
    return undefined;
  }

  #stepField(field: Field, byte: number): string | undefined {
    const protocol = this.#protocol === 'TCP6' ? 'TCP6' : 'TCP4';
    const isPort = field === 'source port' || field === 'destination port';
    const last = field === 'destination port';
    if (byte === SP || byte === CR) {
      if (this.#token === '') {
        return `v1 ${protocol} ${field} is empty (double space or missing field?)`;
      }
      if (byte === CR && !last) {
        return `v1 ${protocol} header ends after the ${field}: fields are missing`;
      }
      if (byte === SP && last) {
        return `v1 ${protocol} header: expected CRLF after the destination port, got a space`;
      }
      const error = isPort ? this.#finishPort(field) : this.#finishAddress(protocol, field);
      if (error !== undefined) return error;
      this.#token = '';
      this.#state = byte === CR ? { name: 'lf' } : { name: 'field', field: nextField(field) };
      return undefined;
    }
    if (isPort) return this.#stepPortChar(protocol, field, byte);
    const allowed = protocol === 'TCP4' ? isDigit(byte) || byte === 0x2e : isHexDigit(byte) || byte === 0x3a || byte === 0x2e;
    if (!allowed) {
      const hint = protocol === 'TCP4' && byte === 0x3a ? ' (IPv6 address in a TCP4 header?)' : '';
      return `v1 ${protocol} ${field} contains invalid character ${describeByte(byte)}${hint}`;
    }
    if (this.#token.length >= MAX_ADDRESS_CHARS[protocol]) {
      return `v1 ${protocol} ${field} is longer than ${MAX_ADDRESS_CHARS[protocol]} characters`;
    }
    this.#token += String.fromCharCode(byte);
    return undefined;
  }

  #stepPortChar(protocol: string, field: Field, byte: number): string | undefined {
    if (!isDigit(byte)) {
      return `v1 ${protocol} ${field} contains invalid character ${describeByte(byte)}: ports are decimal 0..65535`;
    }
    if (this.#token === '0') {
      return `v1 ${protocol} ${field} has a leading zero: ports are decimal 0..65535 without leading zeros`;
    }
    this.#token += String.fromCharCode(byte);
    if (Number(this.#token) > 65535) {
      return `v1 ${protocol} ${field} ${this.#token} is out of range 0..65535`;
    }
    return undefined;
  }

  #finishPort(field: Field): undefined {
    const port = Number(this.#token);
    if (field === 'source port') this.#sourcePort = port;
    else this.#destinationPort = port;
    return undefined;
  }

  #finishAddress(protocol: 'TCP4' | 'TCP6', field: Field): string | undefined {
    const address = this.#token;
    const valid = protocol === 'TCP4' ? isIPv4(address) : isIPv6(address);
    if (!valid) {
      return `v1 ${protocol} ${field} '${address}' is not a valid ${protocol === 'TCP4' ? 'IPv4' : 'IPv6'} address`;
    }
    if (field === 'source address') this.#sourceAddress = address;
    else this.#destinationAddress = address;
    return undefined;
  }

  #header(): ProxyHeader {
    if (this.#protocol === 'TCP4' || this.#protocol === 'TCP6') {
      return {
        version: 1,
        command: 'PROXY',
        family: this.#protocol,
        sourceAddress: this.#sourceAddress,
        sourcePort: this.#sourcePort,
        destinationAddress: this.#destinationAddress,
        destinationPort: this.#destinationPort,
        tlvs: [],
        headerBytes: this.#offset,
      };
    }
    // "UNKNOWN": the receiver must use the real connection endpoints.
    return { version: 1, command: 'LOCAL', family: 'UNSPEC', tlvs: [], headerBytes: this.#offset };
  }
}

function nextField(field: Field): Field {
  switch (field) {
    case 'source address':
      return 'destination address';
    case 'destination address':
      return 'source port';
    case 'source port':
    case 'destination port':
      return 'destination port';
  }
}
