import IPCIDR from 'ip-cidr';
import { z } from 'zod';
import { parseHostPort, type HostPort } from '../net/address.js';
import { parseDurationMs } from './duration.js';

/** What a duration field accepts, before parsing (the JSON Schema describes this one). */
export const durationInput = z.union([z.number(), z.string()]);

/** A duration: `250ms`, `5s`, `2m`, `1h` or milliseconds. Output is milliseconds. */
export const duration = durationInput.transform((value, ctx): number => {
  const ms = parseDurationMs(value);
  if (ms === undefined) {
    ctx.addIssue({
      code: 'custom',
      message: `expected a duration like 250ms, 5s, 2m or a number of milliseconds, got ${JSON.stringify(value)}`,
    });
    return z.NEVER;
  }
  return ms;
});

/** What an address field accepts (the JSON Schema describes this one). */
export const hostPortInput = z.string();

/** `host:port` or `[v6]:port`. */
export const hostPort = hostPortInput.transform((value, ctx): HostPort => {
  const parsed = parseHostPort(value);
  if (typeof parsed === 'string') {
    ctx.addIssue({ code: 'custom', message: `expected host:port, ${parsed}` });
    return z.NEVER;
  }
  return parsed;
});

/** What a CIDR field accepts (the JSON Schema describes this one). */
export const cidrInput = z.string();

/** A CIDR block, or a bare address meaning a single host. */
export const cidr = cidrInput.transform((value, ctx): string => {
  const text = value.includes('/') ? value : `${value}/${value.includes(':') ? 128 : 32}`;
  if (!IPCIDR.isValidCIDR(text)) {
    ctx.addIssue({ code: 'custom', message: `expected a CIDR block like 10.0.0.0/8 or ::/0, got ${JSON.stringify(value)}` });
    return z.NEVER;
  }
  return text;
});

export const name = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, 'expected a name of letters, digits, "_", "." or "-" (max 63)');

export const positiveInt = z.number().int().positive();
export const nonNegativeInt = z.number().int().nonnegative();

/** A DNS name such as `_ssh._tcp.sshd.default.svc.cluster.local` (a trailing dot is allowed). */
export const dnsName = z
  .string()
  .regex(/^(?=.{1,253}\.?$)[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,62}))*\.?$/, 'expected a DNS name like _ssh._tcp.sshd.default.svc.cluster.local');
