import { lookup as systemLookup, Resolver } from 'node:dns/promises';
import { formatHostPort } from '../net/address.js';
import type { DnsConfig } from '../config/schema.js';
import type { SetMember } from '../backend/server-spec.js';

/** What a set entry names in DNS: every address of a host name, or every target of an SRV name. */
export type SetTarget = { readonly kind: 'address'; readonly name: string; readonly port: number } | { readonly kind: 'srv'; readonly name: string };

/**
 * One lookup's answer: the members found (with the smallest TTL, when the resolver gives
 * one), `nx` (NXDOMAIN or an empty answer: the name has nothing now) or `failed`
 * (SERVFAIL, timeout, refused, unreachable: nothing was learnt).
 */
export type LookupAnswer =
  | { readonly kind: 'ok'; readonly members: SetMember[]; readonly ttlMs: number | undefined }
  | { readonly kind: 'nx'; readonly code: string; readonly message: string }
  | { readonly kind: 'failed'; readonly code: string; readonly message: string };

interface Addresses {
  readonly addresses: string[];
  readonly ttlMs: number | undefined;
}

/** Codes that mean "the name has no such records", as opposed to "no answer". */
const NX_CODES = new Set(['ENOTFOUND', 'ENODATA', 'EAI_NONAME', 'EAI_NODATA']);

class NxError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

/**
 * Looks sets up, off the connection path: with the configured DNS servers (c-ares, which
 * gives TTLs), or the system's resolver (getaddrinfo: /etc/hosts and nsswitch too, no
 * TTL; SRV through resolv.conf's servers).
 */
export class DnsLookups {
  private readonly settings: DnsConfig;
  private readonly resolver: Resolver;
  private readonly system: boolean;

  constructor(settings: DnsConfig) {
    this.settings = settings;
    this.resolver = new Resolver({ timeout: settings.timeout, tries: settings.attempts });
    this.system = settings.resolvers.length === 0;
    if (!this.system) this.resolver.setServers(settings.resolvers.map(formatHostPort));
  }

  async lookup(target: SetTarget): Promise<LookupAnswer> {
    try {
      if (target.kind === 'address') {
        const found = await this.addresses(target.name);
        if (found.addresses.length === 0) return { kind: 'nx', code: 'ENODATA', message: `${target.name} has no ${this.familyWords()}` };
        return { kind: 'ok', members: found.addresses.map((address) => ({ label: address, address, port: target.port })), ttlMs: found.ttlMs };
      }
      return await this.srv(target.name);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'EUNKNOWN';
      const message = error instanceof Error ? error.message : String(error);
      if (error instanceof NxError || NX_CODES.has(code)) return { kind: 'nx', code, message };
      return { kind: 'failed', code, message };
    }
  }

  /** Cancels lookups in flight (they end with ECANCELLED). */
  cancel(): void {
    this.resolver.cancel();
  }

  private async srv(name: string): Promise<LookupAnswer> {
    const records = await this.resolver.resolveSrv(name);
    if (records.length === 0) return { kind: 'nx', code: 'ENODATA', message: `${name} has no SRV records` };
    // Every target at once: a headless Service's dozens of pods must not cost dozens of round trips in a row.
    const resolved = await Promise.all(
      records.map(async (record) => {
        try {
          return { record, addresses: await this.addresses(record.name) };
        } catch (error) {
          // A target without addresses (a pod not yet in DNS) is left out; a failure fails the lookup.
          if (NX_CODES.has((error as NodeJS.ErrnoException).code ?? '')) return undefined;
          throw error;
        }
      }),
    );
    const found: { target: string; port: number; addresses: string[] }[] = [];
    let ttlMs: number | undefined;
    for (const entry of resolved) {
      if (entry === undefined) continue;
      found.push({ target: entry.record.name.replace(/\.$/, ''), port: entry.record.port, addresses: entry.addresses.addresses });
      if (entry.addresses.ttlMs !== undefined) ttlMs = Math.min(ttlMs ?? Infinity, entry.addresses.ttlMs);
    }
    const members = srvMembers(found);
    if (members.length === 0) return { kind: 'nx', code: 'ENODATA', message: `no target of ${name} has ${this.familyWords()}` };
    return { kind: 'ok', members, ttlMs };
  }

  private async addresses(name: string): Promise<Addresses> {
    const { family } = this.settings;
    if (this.system) {
      const found = await systemLookup(name, { all: true, family: family === 'ipv4' ? 4 : family === 'ipv6' ? 6 : 0 });
      return { addresses: unique(found.map((entry) => entry.address)), ttlMs: undefined };
    }
    const nxCodes: string[] = [];
    // One family answering "no such records" is an empty part of the answer; anything else fails it.
    const nxAsEmpty = (error: unknown): { address: string; ttl: number }[] => {
      const code = (error as NodeJS.ErrnoException).code ?? '';
      if (!NX_CODES.has(code)) throw error;
      nxCodes.push(code);
      return [];
    };
    const queries: Promise<{ address: string; ttl: number }[]>[] = [];
    if (family !== 'ipv6') queries.push(this.resolver.resolve4(name, { ttl: true }).catch(nxAsEmpty));
    if (family !== 'ipv4') queries.push(this.resolver.resolve6(name, { ttl: true }).catch(nxAsEmpty));
    const records = (await Promise.all(queries)).flat();
    const ttl = records.reduce((smallest, record) => Math.min(smallest, record.ttl), Infinity);
    if (records.length === 0) {
      const nxdomain = nxCodes.includes('ENOTFOUND');
      throw new NxError(nxdomain ? 'ENOTFOUND' : 'ENODATA', nxdomain ? `${name}: no such name (NXDOMAIN)` : `${name} has no ${this.familyWords()}`);
    }
    return { addresses: unique(records.map((record) => record.address)), ttlMs: Number.isFinite(ttl) ? ttl * 1000 : undefined };
  }

  private familyWords(): string {
    return this.settings.family === 'ipv4' ? 'A records' : this.settings.family === 'ipv6' ? 'AAAA records' : 'A or AAAA records';
  }
}

function unique(addresses: string[]): string[] {
  return [...new Set(addresses)].sort();
}

/**
 * Members of an SRV answer, named after their target's first label (a pod's host name
 * under a headless Service), or the whole target where two targets share it; with the
 * port when a target serves several, and the address when it has several.
 */
export function srvMembers(found: readonly { target: string; port: number; addresses: readonly string[] }[]): SetMember[] {
  const hostOf = (target: string): string => target.split('.')[0] || target;
  const targetsOfHost = new Map<string, Set<string>>();
  const portsOfTarget = new Map<string, Set<number>>();
  for (const { target, port } of found) {
    targetsOfHost.set(hostOf(target), (targetsOfHost.get(hostOf(target)) ?? new Set()).add(target));
    portsOfTarget.set(target, (portsOfTarget.get(target) ?? new Set()).add(port));
  }
  const members = found.flatMap(({ target, port, addresses }) => {
    const base = (targetsOfHost.get(hostOf(target))?.size ?? 0) > 1 ? target : hostOf(target);
    const withPort = (portsOfTarget.get(target)?.size ?? 0) > 1 ? `${base}:${port}` : base;
    return addresses.map((address) => ({ label: addresses.length > 1 ? `${withPort}@${address}` : withPort, address, port }));
  });
  return members.sort((a, b) => a.label.localeCompare(b.label));
}
