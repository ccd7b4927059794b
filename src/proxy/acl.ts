import { isIP } from 'node:net';
import IPCIDR from 'ip-cidr';
import { normaliseAddress } from '../net/address.js';

export interface AclRules {
  readonly allow: readonly string[];
  readonly deny: readonly string[];
}

export type AclVerdict = { readonly allowed: true } | { readonly allowed: false; readonly reason: string };

const ALLOWED: AclVerdict = { allowed: true };

/** An IPv4 block as two 32-bit integers: `(address & mask) === network`. */
interface Ipv4Block {
  readonly text: string;
  readonly network: number;
  readonly mask: number;
}

/**
 * A listener's CIDR allow/deny list. Deny wins; anything unparseable fails closed.
 * IPv4-mapped IPv6 clients (`::ffff:a.b.c.d`) are matched as IPv4.
 *
 * This runs once per accepted connection, so it avoids the per-check object work of
 * ip-cidr (which builds address objects and big integers for every `contains`):
 * - allow-all with no deny (the default) answers without parsing anything;
 * - IPv4 rules are compiled to integer mask/network pairs.
 * IPv6 clients are matched with ip-cidr, as before.
 */
export class Acl {
  private readonly allowAll: boolean;
  private readonly allow4: Ipv4Block[] = [];
  private readonly deny4: Ipv4Block[] = [];
  private readonly allow6: IPCIDR[] = [];
  private readonly deny6: IPCIDR[] = [];

  constructor(rules: AclRules) {
    for (const text of rules.allow) addBlock(text, this.allow4, this.allow6);
    for (const text of rules.deny) addBlock(text, this.deny4, this.deny6);
    this.allowAll =
      rules.deny.length === 0 && this.allow4.some((block) => block.mask === 0) && this.allow6.some((block) => block.cidr.endsWith('/0'));
  }

  check(rawAddress: string | undefined): AclVerdict {
    // The kernel hands us a valid address or none at all (socket already gone).
    if (this.allowAll && rawAddress !== undefined && rawAddress !== '') return ALLOWED;
    const address = normaliseAddress(rawAddress);
    const family = address === undefined ? 0 : isIP(address);
    if (address === undefined || family === 0) {
      return { allowed: false, reason: `unparseable client address ${JSON.stringify(rawAddress)}` };
    }
    if (family === 4) {
      const value = parseIpv4(address);
      const denied = this.deny4.find((block) => (value & block.mask) >>> 0 === block.network);
      if (denied) return { allowed: false, reason: `${address} matches deny ${denied.text}` };
      if (this.allow4.some((block) => (value & block.mask) >>> 0 === block.network)) return ALLOWED;
      return { allowed: false, reason: `${address} matches no allow rule` };
    }
    const denied = this.deny6.find((block) => safeContains(block, address));
    if (denied) return { allowed: false, reason: `${address} matches deny ${denied.toString()}` };
    if (this.allow6.some((block) => safeContains(block, address))) return ALLOWED;
    return { allowed: false, reason: `${address} matches no allow rule` };
  }
}

function addBlock(text: string, v4: Ipv4Block[], v6: IPCIDR[]): void {
  const block = new IPCIDR(text);
  if (block.cidr.includes(':')) {
    v6.push(block);
    return;
  }
  const prefix = Number(block.cidr.split('/')[1] ?? 32);
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  v4.push({ text: block.toString(), network: (parseIpv4(block.start()) & mask) >>> 0, mask });
}

/** Dotted quad → unsigned 32-bit integer (the caller has checked it is IPv4). */
function parseIpv4(address: string): number {
  let value = 0;
  let octet = 0;
  for (let index = 0; index < address.length; index += 1) {
    const code = address.charCodeAt(index);
    if (code === 46) {
      value = value * 256 + octet;
      octet = 0;
    } else {
      octet = octet * 10 + (code - 48);
    }
  }
  return value * 256 + octet;
}

function safeContains(block: IPCIDR, address: string): boolean {
  try {
    return block.contains(address);
  } catch {
    return false;
  }
}
