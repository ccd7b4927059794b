/**
 * Parser for the SSH_MSG_KEXINIT payload (RFC 4253 section 7.1): the algorithms a peer
 * offers, sent in cleartext right after the identification exchange.
 * Pure: takes a payload (as framed by SshPacketReader), never touches a socket.
 */
import { SSH_MSG_KEXINIT } from './ssh-packets.js';

export interface KexInit {
  readonly cookie: Buffer;
  readonly kexAlgorithms: readonly string[];
  readonly serverHostKeyAlgorithms: readonly string[];
  readonly ciphersClientToServer: readonly string[];
  readonly ciphersServerToClient: readonly string[];
  readonly macsClientToServer: readonly string[];
  readonly macsServerToClient: readonly string[];
  readonly compressionClientToServer: readonly string[];
  readonly compressionServerToClient: readonly string[];
  readonly languagesClientToServer: readonly string[];
  readonly languagesServerToClient: readonly string[];
  readonly firstKexPacketFollows: boolean;
}

export type KexInitParseResult =
  | { readonly ok: true; readonly kexinit: KexInit }
  | { readonly ok: false; readonly message: string };

const COOKIE_BYTES = 16;
const NAME_LIST_FIELDS = 10;
/** Longest name-list accepted; real ones are a few hundred bytes. */
const MAX_NAME_LIST_BYTES = 64 * 1024;

export function parseKexInit(payload: Uint8Array): KexInitParseResult {
  const bytes = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
  if (bytes.length === 0) return fail('empty payload');
  if (bytes[0] !== SSH_MSG_KEXINIT) return fail(`message type ${bytes[0] as number} is not KEXINIT (${SSH_MSG_KEXINIT})`);
  let offset = 1;
  if (bytes.length < offset + COOKIE_BYTES) return fail('payload ends inside the cookie');
  const cookie = Buffer.from(bytes.subarray(offset, offset + COOKIE_BYTES));
  offset += COOKIE_BYTES;
  const lists: string[][] = [];
  for (let field = 0; field < NAME_LIST_FIELDS; field += 1) {
    if (bytes.length < offset + 4) return fail(`payload ends before name-list ${field + 1}`);
    const length = bytes.readUInt32BE(offset);
    offset += 4;
    if (length > MAX_NAME_LIST_BYTES) return fail(`name-list ${field + 1} claims ${length} bytes`);
    if (bytes.length < offset + length) return fail(`payload ends inside name-list ${field + 1}`);
    const text = bytes.subarray(offset, offset + length).toString('latin1');
    offset += length;
    if (/[^\x21-\x7e]/.test(text)) return fail(`name-list ${field + 1} holds non-printable characters`);
    lists.push(text === '' ? [] : text.split(','));
  }
  if (bytes.length < offset + 1 + 4) return fail('payload ends before first_kex_packet_follows and reserved');
  const firstKexPacketFollows = bytes[offset] !== 0;
  const list = (index: number): readonly string[] => lists[index] ?? [];
  return {
    ok: true,
    kexinit: {
      cookie,
      kexAlgorithms: list(0),
      serverHostKeyAlgorithms: list(1),
      ciphersClientToServer: list(2),
      ciphersServerToClient: list(3),
      macsClientToServer: list(4),
      macsServerToClient: list(5),
      compressionClientToServer: list(6),
      compressionServerToClient: list(7),
      languagesClientToServer: list(8),
      languagesServerToClient: list(9),
      firstKexPacketFollows,
    },
  };
}

/** Builds a KEXINIT payload (tests, and fixtures that need to offer algorithms). */
export function encodeKexInit(init: Omit<KexInit, 'cookie'> & { readonly cookie?: Buffer }): Buffer {
  const parts: Buffer[] = [Buffer.from([SSH_MSG_KEXINIT]), init.cookie ?? Buffer.alloc(COOKIE_BYTES)];
  const lists = [
    init.kexAlgorithms,
    init.serverHostKeyAlgorithms,
    init.ciphersClientToServer,
    init.ciphersServerToClient,
    init.macsClientToServer,
    init.macsServerToClient,
    init.compressionClientToServer,
    init.compressionServerToClient,
    init.languagesClientToServer,
    init.languagesServerToClient,
  ];
  for (const list of lists) {
    const text = Buffer.from(list.join(','), 'latin1');
    const length = Buffer.alloc(4);
    length.writeUInt32BE(text.length);
    parts.push(length, text);
  }
  parts.push(Buffer.from([init.firstKexPacketFollows ? 1 : 0, 0, 0, 0, 0]));
  return Buffer.concat(parts);
}

function fail(message: string): KexInitParseResult {
  return { ok: false, message: `malformed KEXINIT: ${message}` };
}
