import { isIP } from 'node:net';
import { normaliseAddress } from './address.js';

/**
 * The group a client address counts against, as sshd's PerSourceNetBlockSize groups
 * them: IPv4 by `ipv4Prefix` bits (as is at 32), IPv6 by `ipv6Prefix` (a /64 is one
 * subscriber). IPv4-mapped IPv6 addresses count as IPv4.
 */
export function sourceKey(address: string, ipv4Prefix: number, ipv6Prefix: number): string {
  const normalised = normaliseAddress(address) ?? address;
  const family = isIP(normalised);
  if (family === 4) return ipv4Prefix >= 32 ? normalised : ipv4Block(normalised, ipv4Prefix);
  if (family === 6) return ipv6Block(normalised, ipv6Prefix);
  return normalised;
}

/** `10.1.2.3`, 24 → `10.1.2.0/24`. */
function ipv4Block(address: string, prefixLength: number): string {
  const value = address.split('.').reduce((sum, part) => sum * 256 + Number(part), 0);
  const mask = prefixLength <= 0 ? 0 : (0xffffffff << (32 - prefixLength)) >>> 0;
  const network = (value & mask) >>> 0;
  return `${[24, 16, 8, 0].map((shift) => (network >>> shift) & 0xff).join('.')}/${prefixLength}`;
}

/** `2001:db8:1:2:3::4`, 64 → `2001:db8:1:2::/64` (zeroes past the prefix, canonical hex groups). */
export function ipv6Block(address: string, prefixLength: number): string {
  const groups = expandIpv6(address);
  const out: number[] = [];
  for (let index = 0; index < 8; index += 1) {
    const bitsLeft = prefixLength - index * 16;
    const group = groups[index] ?? 0;
    if (bitsLeft >= 16) out.push(group);
    else if (bitsLeft <= 0) out.push(0);
    else out.push(group & (0xffff << (16 - bitsLeft)) & 0xffff);
  }
  return `${out.map((group) => group.toString(16)).join(':')}/${prefixLength}`;
}

function expandIpv6(address: string): number[] {
  let text = address.replace(/%.*$/, '');
  const dotted = /^(.*:)(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(2, 6).map(Number) as [number, number, number, number];
    text = `${dotted[1] ?? ''}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const parse = (part: string): number[] => (part === '' ? [] : part.split(':').map((group) => parseInt(group, 16)));
  const left = parse(head);
  const right = tail === undefined ? [] : parse(tail);
  return [...left, ...new Array<number>(Math.max(0, 8 - left.length - right.length)).fill(0), ...right];
}
