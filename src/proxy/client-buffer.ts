import type { Socket } from 'node:net';
import { parseKexInit, type KexInit } from '../protocol/kexinit.js';
import { SshPacketReader } from '../protocol/ssh-packets.js';
import { clientIdentificationText } from '../protocol/ssh-ident.js';

const kClientBuffer = Symbol('clientBuffer');
interface BufferedSocket extends Socket {
  [kClientBuffer]?: ClientBuffer | undefined;
}

/** What the buffer tells its session. */
export interface ClientBufferEvents {
  /** FIN from the client before the splice. */
  end(): void;
  /** The client's identification line was found. */
  identified(): void;
}

const NO_CHUNKS: readonly Buffer[] = Object.freeze([]);

/**
 * Holds what a client sends before its session is spliced (its identification and
 * often its KEXINIT), up to a byte limit; past it the client is paused, never dropped.
 * A FIN from the client is reported (`onEnd`): an SSH client cannot go on without
 * sending, so the session ends instead of taking a backend for nobody.
 */
export class ClientBuffer {
  private readonly socket: Socket;
  private readonly limitBytes: number;
  /** Dropped at stop(): a spliced session's buffer keeps only its two facts (identification, peak). */
  private events: ClientBufferEvents | undefined;
  private chunks: Buffer[] = [];
  private bytes = 0;
  private peak = 0;
  private ident: string | undefined;
  private identScanned = false;

  constructor(socket: Socket, limitBytes: number, events: ClientBufferEvents) {
    this.socket = socket;
    this.limitBytes = limitBytes;
    this.events = events;
  }

  /** Most bytes held at once: shows the limit held under a fast client. */
  get peakBytes(): number {
    return this.peak;
  }

  /** The raw identification line with its line end, as the client sent it (undefined until seen). */
  identificationBytes(): Buffer | undefined {
    if (this.ident === undefined) return undefined;
    const head = this.head();
    const end = head.indexOf(0x0a);
    return end === -1 ? undefined : head.subarray(0, end + 1);
  }

  /**
   * The client's KEXINIT, when it has been buffered whole after the identification (clients
   * that speak first send both at once): a backend must have algorithms in common with it.
   */
  kexinit(): KexInit | undefined {
    const line = this.identificationBytes();
    if (line === undefined) return undefined;
    const read = new SshPacketReader().push(this.head().subarray(line.length));
    const payload = read.state === 'packets' ? read.payloads[0] : undefined;
    if (payload === undefined) return undefined;
    const parsed = parseKexInit(payload);
    return parsed.ok ? parsed.kexinit : undefined;
  }

  /** The client's own identification line, once seen (for logs and client-aware policies). */
  get identification(): string | undefined {
    return this.ident;
  }

  start(initialBytes?: Buffer): void {
    if (initialBytes && initialBytes.length > 0) this.take(initialBytes);
    // Module-level listeners (the buffer is found on the socket): no closures per session.
    (this.socket as BufferedSocket)[kClientBuffer] = this;
    this.socket.on('data', onBufferedData);
    this.socket.on('end', onBufferedEnd);
  }

  /** Stops buffering and hands over what was buffered; the socket stays paused. */
  stop(): Buffer[] {
    this.socket.off('data', onBufferedData);
    this.socket.off('end', onBufferedEnd);
    (this.socket as BufferedSocket)[kClientBuffer] = undefined;
    this.socket.pause();
    this.events = undefined;
    const chunks = this.chunks;
    this.chunks = NO_CHUNKS as Buffer[];
    this.bytes = 0;
    return chunks;
  }

  /** FIN from the client while buffering. */
  ended(): void {
    this.events?.end();
  }

  /** Bytes from the client while buffering. */
  take(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.bytes += chunk.length;
    if (this.bytes > this.peak) this.peak = this.bytes;
    if (!this.identScanned) this.scanIdentification(chunk);
    if (this.bytes >= this.limitBytes) this.socket.pause();
  }

  /** Everything buffered, as one buffer (the usual single chunk is not copied). */
  private head(): Buffer {
    return this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks);
  }

  /**
   * A client has identified itself once its first line has ended, never before: a line that
   * never ends (trickled, or longer than RFC 4253's 255 bytes and still going) leaves it a
   * silent client, held to the silent share and cut by the silence watch. Only the new
   * chunk is searched, so a line trickled byte by byte costs no rescans.
   */
  private scanIdentification(chunk: Buffer): void {
    if (!chunk.includes(0x0a)) return;
    this.identScanned = true;
    const head = this.head();
    const ident = clientIdentificationText(head.subarray(0, head.indexOf(0x0a)));
    if (ident === undefined) return;
    this.ident = ident;
    this.events?.identified();
  }
}

function onBufferedData(this: BufferedSocket, chunk: Buffer): void {
  this[kClientBuffer]?.take(chunk);
}

function onBufferedEnd(this: BufferedSocket): void {
  this[kClientBuffer]?.ended();
}
