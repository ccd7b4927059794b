import type { BackendPool } from '../backend/pool.js';
import type { SetMember } from '../backend/server-spec.js';
import type { DnsConfig, ServerConfig } from '../config/schema.js';
import type { ProxyEvents } from '../events/bus.js';
import { DnsLookups, type SetTarget } from './lookup.js';
import { SetRefresher, type LookupReport } from './set-refresher.js';

interface WatchedSet {
  readonly pool: BackendPool;
  readonly entry: string;
  /** What the entry asks for: a change (a reload) starts a new refresher. */
  readonly key: string;
  readonly refresher: SetRefresher;
}

/** Told of each set's members as they change (a cluster primary forwards them to its workers). */
export type MembersListener = (pool: string, entry: string, members: readonly SetMember[]) => void;

/**
 * Keeps every pool's DNS sets (servers[] entries with a host name or an srv name) up to
 * date: one refresher per set (set-refresher.ts), started by `sync` and stopped when its
 * entry or pool goes. The first lookup of each new set is awaited, so a proxy starts with
 * its servers known.
 */
export class Discovery {
  private readonly events: ProxyEvents;
  private settings: DnsConfig;
  private lookups: DnsLookups;
  private readonly sets = new Map<string, WatchedSet>();
  private readonly listener: MembersListener | undefined;

  constructor(events: ProxyEvents, settings: DnsConfig, listener?: MembersListener) {
    this.events = events;
    this.settings = settings;
    this.lookups = new DnsLookups(settings);
    this.listener = listener;
  }

  /** Follows these pools' sets (new settings restart every refresher); resolves once new sets are first looked up. */
  async sync(pools: Iterable<BackendPool>, settings: DnsConfig = this.settings): Promise<void> {
    if (JSON.stringify(settings) !== JSON.stringify(this.settings)) {
      this.stopAll();
      this.settings = settings;
      this.lookups = new DnsLookups(settings);
    }
    const wanted = new Map<string, { pool: BackendPool; entry: ServerConfig }>();
    for (const pool of pools) for (const entry of pool.setEntries) wanted.set(`${pool.name}\u0000${entry.name}`, { pool, entry });
    for (const [id, set] of this.sets) {
      const want = wanted.get(id);
      if (want && want.pool === set.pool && setKey(want.entry) === set.key) continue;
      set.refresher.stop();
      this.sets.delete(id);
    }
    const first: Promise<void>[] = [];
    for (const [id, { pool, entry }] of wanted) {
      if (this.sets.has(id)) continue;
      const refresher = this.refresherFor(pool, entry);
      this.sets.set(id, { pool, entry: entry.name, key: setKey(entry), refresher });
      first.push(refresher.start());
    }
    await Promise.all(first);
  }

  /** Looks up every set of `pool` now (admin: re-resolve); resolves once done. */
  async resolveNow(pool: string): Promise<number> {
    const sets = [...this.sets.values()].filter((set) => set.pool.name === pool);
    await Promise.all(sets.map((set) => set.refresher.refreshNow()));
    return sets.length;
  }

  stop(): void {
    this.stopAll();
    this.lookups.cancel();
  }

  private stopAll(): void {
    for (const set of this.sets.values()) set.refresher.stop();
    this.sets.clear();
  }

  private refresherFor(pool: BackendPool, entry: ServerConfig): SetRefresher {
    const target = targetOf(entry);
    return new SetRefresher({
      target,
      maxServers: entry.maxServers,
      settings: this.settings,
      lookups: this.lookups,
      apply: (members) => {
        const changes = pool.setMembers(entry.name, members);
        this.listener?.(pool.name, entry.name, members);
        if (changes.added.length + changes.removed.length > 0) this.events.emit('dns-change', { pool: pool.name, entry: entry.name, added: changes.added, removed: changes.removed });
      },
      report: (report) => this.events.emit('dns-lookup', lookupEvent(pool.name, entry.name, target.name, report)),
    });
  }
}

function lookupEvent(pool: string, entry: string, name: string, { answer, ms, kept, leftOut }: LookupReport) {
  if (answer.kind === 'ok') return { pool, entry, name, outcome: 'ok' as const, members: answer.members.length - leftOut, ms, ...(leftOut > 0 ? { leftOut } : {}) };
  return { pool, entry, name, outcome: answer.kind, members: 0, ms, code: answer.code, message: answer.message, kept };
}

function targetOf(entry: ServerConfig): SetTarget {
  if (entry.srv !== undefined) return { kind: 'srv', name: entry.srv };
  if (entry.address === undefined) throw new Error(`server "${entry.name}" has neither an address nor an srv name`);
  return { kind: 'address', name: entry.address.host, port: entry.address.port };
}

function setKey(entry: ServerConfig): string {
  return JSON.stringify([entry.srv, entry.address, entry.maxServers]);
}
