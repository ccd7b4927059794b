/**
 * The size on the wire of the smallest encrypted SSH packet (a one-byte payload), from
 * the algorithms both KEXINITs negotiated. SSH_MSG_USERAUTH_SUCCESS is the only message
 * a server sends during authentication with a one-byte payload; every other reply
 * (FAILURE with its name-list, PK_OK with a key, INFO_REQUEST, BANNER, EXT_INFO) is
 * larger. So a server flight of exactly this size is the end of authentication, seen
 * without decrypting anything. Measured against OpenSSH 9.2 and 10.0 (docs/penalties.md).
 */
import type { KexInit } from './kexinit.js';

interface CipherShape {
  /** Cipher block size; padding aligns to it (8 at least, RFC 4253 §6). */
  readonly block: number;
  /** AEAD tag bytes; undefined for ciphers that take a separate MAC. */
  readonly tag?: number;
}

const CIPHERS: ReadonlyMap<string, CipherShape> = new Map([
  ['chacha20-poly1305@openssh.com', { block: 8, tag: 16 }],
  ['aes128-gcm@openssh.com', { block: 16, tag: 16 }],
  ['aes256-gcm@openssh.com', { block: 16, tag: 16 }],
  ['aes128-ctr', { block: 16 }],
  ['aes192-ctr', { block: 16 }],
  ['aes256-ctr', { block: 16 }],
  ['aes128-cbc', { block: 16 }],
  ['aes192-cbc', { block: 16 }],
  ['aes256-cbc', { block: 16 }],
  ['3des-cbc', { block: 8 }],
]);

const MAC_BYTES: ReadonlyMap<string, number> = new Map([
  ['hmac-sha2-256', 32],
  ['hmac-sha2-512', 64],
  ['hmac-sha1', 20],
  ['hmac-sha1-96', 12],
  ['hmac-md5', 16],
  ['hmac-md5-96', 12],
  ['umac-64@openssh.com', 8],
  ['umac-128@openssh.com', 16],
]);

const ETM_SUFFIX = '-etm@openssh.com';

/** What the server → client direction negotiated (RFC 4253 §7.1: the client's first choice the server also offers). */
export interface ServerToClientAlgorithms {
  readonly cipher: string | undefined;
  readonly mac: string | undefined;
  readonly compression: string | undefined;
}

export function negotiateServerToClient(client: KexInit, server: KexInit): ServerToClientAlgorithms {
  const pick = (offered: readonly string[], supported: readonly string[]): string | undefined => offered.find((name) => supported.includes(name));
  return {
    cipher: pick(client.ciphersServerToClient, server.ciphersServerToClient),
    mac: pick(client.macsServerToClient, server.macsServerToClient),
    compression: pick(client.compressionServerToClient, server.compressionServerToClient),
  };
}

/**
 * The sizes packets take on the wire under these algorithms: the smallest (a one-byte
 * payload), and the residue every packet's size leaves modulo the cipher block. Padding
 * fills whole blocks, so a packet is `residue + k·block` bytes; a flight of two packets
 * leaves `2·residue` instead, which tells SUCCESS read together with the packet after it
 * from any single reply (where the residue is not 0: every AEAD cipher and every EtM MAC
 * here; aes-ctr with hmac-sha2-256 cannot tell).
 */
export interface PacketShape {
  readonly smallest: number;
  readonly block: number;
  readonly residue: number;
}

/**
 * The packet shape under these algorithms, or undefined when they are not known here or
 * compression is on from the start (`zlib`; `zlib@openssh.com` starts only after
 * authentication, so it does not change the size).
 */
export function packetShape(algorithms: ServerToClientAlgorithms): PacketShape | undefined {
  const { cipher, mac, compression } = algorithms;
  if (cipher === undefined || (compression !== undefined && compression !== 'none' && compression !== 'zlib@openssh.com')) return undefined;
  const shape = CIPHERS.get(cipher);
  if (!shape) return undefined;
  // padding_length byte + one payload byte + at least four bytes of padding.
  const minimum = 1 + 1 + 4;
  const { block } = shape;
  if (shape.tag !== undefined) {
    // AEAD: the 4-byte length is outside the padded part.
    return { smallest: 4 + roundUp(minimum, block) + shape.tag, block, residue: (4 + shape.tag) % block };
  }
  if (mac === undefined) return undefined;
  const etm = mac.endsWith(ETM_SUFFIX);
  const macBytes = MAC_BYTES.get(etm ? mac.slice(0, -ETM_SUFFIX.length) : mac);
  if (macBytes === undefined) return undefined;
  // Encrypt-then-MAC leaves the length in clear and outside the padding; otherwise it is padded with the rest.
  if (etm) return { smallest: 4 + roundUp(minimum, block) + macBytes, block, residue: (4 + macBytes) % block };
  return { smallest: roundUp(4 + minimum, block) + macBytes, block, residue: macBytes % block };
}

/** Whether a flight of `bytes` is certainly more than one packet (an even count of them, at least two). */
export function holdsSeveralPackets(shape: PacketShape, bytes: number): boolean {
  return shape.residue !== 0 && bytes % shape.block !== shape.residue;
}

function roundUp(value: number, block: number): number {
  return Math.ceil(value / block) * block;
}
