// PROXY protocol headers a proxy sends (HAProxy proxy-protocol.txt; HAProxy's `send-proxy`
// and `send-proxy-v2`): the client's address to a backend that reads them.
import { isIP } from 'node:net';
import { V2_SIGNATURE } from './proxy-protocol-v2.js';

export type ProxyVersion = 'v1' | 'v2';

export interface ProxyEndpoint {
  readonly address: string;
  readonly port: number;
}

/** The connection being relayed: the client and the address it connected to. */
export interface ProxyEndpoints {
  readonly source: ProxyEndpoint;
  readonly destination: ProxyEndpoint;
}

const V2_PROXY = 0x21;
const V2_LOCAL = 0x20;
const V2_TCP4 = 0x11;
const V2_TCP6 = 0x21;

/**
 * The header for a relayed connection, or (`endpoints` undefined) for one of the proxy's own
 * (a health check): v1 `PROXY UNKNOWN`, v2 `LOCAL`, which tell the backend to use the real
 * connection's addresses. Mixed families are sent as IPv6, the IPv4 side mapped (::ffff:a.b.c.d);
 * IPv4-mapped pairs as IPv4.
 */
export function encodeProxyHeader(version: ProxyVersion, endpoints: ProxyEndpoints | undefined): Buffer {
  if (endpoints === undefined) return version === 'v1' ? Buffer.from('PROXY UNKNOWN\r\n', 'latin1') : v2Header(V2_LOCAL, 0x00, Buffer.alloc(0));
  const [source, destination, family] = sameFamily(endpoints.source.address, endpoints.destination.address);
  if (version === 'v1') {
    return Buffer.from(`PROXY TCP${family} ${source} ${destination} ${endpoints.source.port} ${endpoints.destination.port}\r\n`, 'latin1');
  }
  const block = Buffer.alloc(family === 4 ? 12 : 36);
  const addressBytes = family === 4 ? 4 : 16;
  writeAddress(block, 0, source, family);
  writeAddress(block, addressBytes, destination, family);
  block.writeUInt16BE(endpoints.source.port, addressBytes * 2);
  block.writeUInt16BE(endpoints.destination.port, addressBytes * 2 + 2);
  return v2Header(V2_PROXY, family === 4 ? V2_TCP4 : V2_TCP6, block);
}

function v2Header(command: number, family: number, block: Buffer): Buffer {
  const fixed = Buffer.alloc(4);
  fixed[0] = command;
  fixed[1] = family;
  fixed.writeUInt16BE(block.length, 2);
  return Buffer.concat([V2_SIGNATURE, fixed, block]);
}

const MAPPED = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i;

/** Both addresses in one family: IPv4 when both are (or map to) IPv4, else IPv6 with IPv4 mapped. */
function sameFamily(source: string, destination: string): [string, string, 4 | 6] {
  const v4 = (address: string): string | undefined => (isIP(address) === 4 ? address : MAPPED.exec(address)?.[1]);
  const source4 = v4(source);
  const destination4 = v4(destination);
  if (source4 !== undefined && destination4 !== undefined) return [source4, destination4, 4];
  const v6 = (address: string, mapped: string | undefined): string => (mapped !== undefined && isIP(address) === 4 ? `::ffff:${mapped}` : address);
  return [v6(source, source4), v6(destination, destination4), 6];
}

function writeAddress(block: Buffer, offset: number, address: string, family: 4 | 6): void {
  if (family === 4) {
    address.split('.').forEach((octet, index) => block.writeUInt8(Number(octet), offset + index));
    return;
  }
  expandIPv6(address).forEach((group, index) => block.writeUInt16BE(group, offset + index * 2));
}

/** The eight 16-bit groups of an IPv6 address (`::` expanded, a trailing dotted IPv4 split in two). */
function expandIPv6(address: string): number[] {
  const dotted = /(\d{1,3}(?:\.\d{1,3}){3})$/.exec(address);
  let text = address;
  if (dotted?.[1] !== undefined) {
    const [a = 0, b = 0, c = 0, d = 0] = dotted[1].split('.').map(Number);
    text = `${address.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':');
  const zeros = tail === undefined ? [] : Array.from({ length: 8 - headGroups.length - tailGroups.length }, () => '0');
  return [...headGroups, ...zeros, ...tailGroups].map((group) => Number.parseInt(group, 16));
}
