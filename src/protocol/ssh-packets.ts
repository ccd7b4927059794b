/**
 * Frames cleartext SSH binary packets (RFC 4253 section 6) as they pass by,
 * for the part of a connection before NEWKEYS. Pure: fed bytes, returns payloads.
 */

import { clientIdentificationText, IDENT_MAX_BYTES } from './ssh-ident.js';

export const SSH_MSG_KEXINIT = 20;
export const SSH_MSG_NEWKEYS = 21;
/** RFC 4253 6.1: implementations must handle 35000-byte packets; anything far larger is not cleartext SSH. */
const MAX_PACKET_LENGTH = 256 * 1024;

export type PacketReadResult =
  | { readonly state: 'packets'; readonly payloads: readonly Buffer[] }
  | { readonly state: 'error'; readonly message: string };

/** Shared by every reader with nothing pending (never written to): a Buffer.alloc(0) each was ~180 B per watched session. */
const NOTHING_PENDING = Buffer.alloc(0);

export class SshPacketReader {
  private pending: Buffer = NOTHING_PENDING;
  private failed: string | undefined;
  /** Set once NEWKEYS went by: what follows is encrypted and is not framed any more. */
  private encrypted = false;

  push(chunk: Buffer): PacketReadResult {
    if (this.failed) return { state: 'error', message: this.failed };
    if (this.encrypted) return { state: 'packets', payloads: [] };
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const payloads: Buffer[] = [];
    while (this.pending.length >= 5) {
      const packetLength = this.pending.readUInt32BE(0);
      const paddingLength = this.pending[4] as number;
      if (packetLength < 5 || packetLength > MAX_PACKET_LENGTH || paddingLength + 1 > packetLength) {
        this.failed = `invalid SSH packet framing (packet_length ${packetLength}, padding_length ${paddingLength})`;
        return { state: 'error', message: this.failed };
      }
      if (this.pending.length < 4 + packetLength) break;
      const payload = this.pending.subarray(5, 4 + packetLength - paddingLength);
      payloads.push(payload);
      // An empty view would keep the whole chunk alive: nothing left is the shared empty buffer.
      this.pending = this.pending.length === 4 + packetLength ? NOTHING_PENDING : this.pending.subarray(4 + packetLength);
      if (payload[0] === SSH_MSG_NEWKEYS) {
        // The rest of this chunk (e.g. sshd's EXT_INFO, sent right after) is already encrypted.
        this.encrypted = true;
        this.pending = NOTHING_PENDING;
        break;
      }
    }
    return { state: 'packets', payloads };
  }
}

/**
 * Watches one direction of a connection for SSH_MSG_NEWKEYS, after which the stream is encrypted.
 * `identLine`: whether the stream still starts with the peer's identification line (client
 * side), and if so whether to `read` it (into `identification`) or only `skip` it.
 */
export class NewKeysWatcher {
  private readonly reader = new SshPacketReader();
  private skippingLine: boolean;
  private lineBytes = 0;
  /** While reading the identification line: its start, at most IDENT_MAX_BYTES (undefined when only skipping). */
  private lineHead: Buffer[] | undefined;
  private result: 'watching' | 'newkeys' | 'unreadable' = 'watching';
  /** The peer's identification line (`clientIdentificationText`), once its LF went by; undefined if it was not `SSH-` or not read. */
  identification: string | undefined;
  /** Whether the identification line has ended (whatever it said). */
  identificationEnded = false;
  /** The peer's KEXINIT payload (a copy), once it went by: which algorithms it offered. */
  kexinit: Buffer | undefined;

  constructor(options: { readonly identLine: 'none' | 'skip' | 'read' }) {
    this.skippingLine = options.identLine !== 'none';
    if (options.identLine === 'read') this.lineHead = [];
  }

  get state(): 'watching' | 'newkeys' | 'unreadable' {
    return this.result;
  }

  push(chunk: Buffer): 'watching' | 'newkeys' | 'unreadable' {
    if (this.result !== 'watching') return this.result;
    let data = chunk;
    if (this.skippingLine) {
      const newline = data.indexOf(0x0a);
      if (this.lineHead !== undefined) {
        const head = data.subarray(0, Math.min(newline === -1 ? data.length : newline, Math.max(0, IDENT_MAX_BYTES - this.lineBytes)));
        if (head.length > 0) this.lineHead.push(Buffer.from(head));
      }
      if (newline === -1) {
        this.lineBytes += data.length;
        if (this.lineBytes > 8192) this.result = 'unreadable';
        return this.result;
      }
      this.skippingLine = false;
      if (this.lineHead !== undefined) this.identification = clientIdentificationText(Buffer.concat(this.lineHead));
      this.identificationEnded = true;
      this.lineHead = undefined;
      data = data.subarray(newline + 1);
    }
    if (data.length === 0) return this.result;
    const read = this.reader.push(data);
    if (read.state === 'error') {
      this.result = 'unreadable';
      return this.result;
    }
    for (const payload of read.payloads) {
      if (payload[0] === SSH_MSG_KEXINIT && this.kexinit === undefined) this.kexinit = Buffer.from(payload);
      if (payload[0] === SSH_MSG_NEWKEYS) this.result = 'newkeys';
    }
    return this.result;
  }
}
