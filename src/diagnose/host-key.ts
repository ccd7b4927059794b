/**
 * Host key fingerprints the way `ssh-keygen -l` prints them: bits, SHA256 of the key blob
 * in unpadded base64, and the key type.
 */
import { createHash } from 'node:crypto';

export interface HostKeyInfo {
  /** `SHA256:...` */
  readonly fingerprint: string;
  /** The key blob's type name, e.g. `ssh-ed25519`. */
  readonly keyType: string;
  readonly bits: number | undefined;
  /** `ssh-keygen -l` style: `256 SHA256:... (ED25519)`. */
  readonly summary: string;
  /** `ssh-ed25519 AAAA...` (known_hosts style). */
  readonly publicKey: string;
}

export function sha256Fingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

export function describeHostKey(blob: Buffer): HostKeyInfo {
  const fields = readStrings(blob);
  const keyType = fields[0]?.toString('latin1') ?? 'unknown';
  const bits = keyBits(keyType, fields);
  const fingerprint = sha256Fingerprint(blob);
  const label = keyLabel(keyType);
  return {
    fingerprint,
    keyType,
    bits,
    summary: `${bits ?? '?'} ${fingerprint} (${label})`,
    publicKey: `${keyType} ${blob.toString('base64')}`,
  };
}

function readStrings(blob: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let offset = 0;
  while (offset + 4 <= blob.length) {
    const length = blob.readUInt32BE(offset);
    offset += 4;
    if (offset + length > blob.length) break;
    out.push(blob.subarray(offset, offset + length));
    offset += length;
  }
  return out;
}

function mpintBits(value: Buffer | undefined): number | undefined {
  if (value === undefined) return undefined;
  let index = 0;
  while (index < value.length && value[index] === 0) index += 1;
  if (index === value.length) return 0;
  return (value.length - index - 1) * 8 + (32 - Math.clz32(value[index] as number));
}

function keyBits(keyType: string, fields: readonly Buffer[]): number | undefined {
  if (keyType === 'ssh-ed25519') return 256;
  if (keyType === 'ssh-ed448') return 456;
  if (keyType === 'ssh-rsa') return mpintBits(fields[2]);
  if (keyType === 'ssh-dss') return mpintBits(fields[1]);
  const ecdsa = /^ecdsa-sha2-nistp(\d+)$/.exec(keyType);
  if (ecdsa) return Number(ecdsa[1]);
  return undefined;
}

function keyLabel(keyType: string): string {
  if (keyType === 'ssh-ed25519') return 'ED25519';
  if (keyType === 'ssh-rsa') return 'RSA';
  if (keyType === 'ssh-dss') return 'DSA';
  if (keyType.startsWith('ecdsa-')) return 'ECDSA';
  return keyType.toUpperCase();
}
