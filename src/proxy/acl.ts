import { isIP } from 'node:net';
import IPCIDR from 'ip-cidr';
import { normaliseAddress } from '../net/address.js';

export interface AclRules {
  readonly allow: readonly string[];
  readonly deny: readonly string[];
}

export type AclVerdict = { readonly allowed: true } | { readonly allowed: false; readonly reason: string };

/**
 * A listener's CIDR allow/deny list. Deny wins; anything unparseable fails closed.
 * IPv4-mapped IPv6 clients (`::ffff:a.b.c.d`) are matched as IPv4.
 */
export class Acl {
  private readonly allow: IPCIDR[];
  private readonly deny: IPCIDR[];

  constructor(rules: AclRules) {
    this.allow = rules.allow.map((block) => new IPCIDR(block));
    this.deny = rules.deny.map((block) => new IPCIDR(block));
  }

  check(rawAddress: string | undefined): AclVerdict {
    const address = normaliseAddress(rawAddress);
    if (address === undefined || isIP(address) === 0) {
      return { allowed: false, reason: `unparseable client address ${JSON.stringify(rawAddress)}` };
    }
    const family = isIP(address);
    const denied = this.deny.find((block) => sameFamily(block, family) && safeContains(block, address));
    if (denied) return { allowed: false, reason: `${address} matches deny ${denied.toString()}` };
    if (this.allow.some((block) => sameFamily(block, family) && safeContains(block, address))) return { allowed: true };
    return { allowed: false, reason: `${address} matches no allow rule` };
  }
}

function sameFamily(block: IPCIDR, family: number): boolean {
  return (block.cidr.includes(':') ? 6 : 4) === family;
}

function safeContains(block: IPCIDR, address: string): boolean {
  try {
    return block.contains(address);
  } catch {
    return false;
  }
}
