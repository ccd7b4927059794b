import type { PoolConfig } from '../config/schema.js';
import { reconcileServers, type ServerChanges } from './pool-reconfigure.js';
import { BackendServer } from './server.js';
import { isServerSet, memberSpec, staticSpec, type ServerSpec, type SetMember } from './server-spec.js';

/** What a change of members does in its pool. */
export interface MemberHooks {
  readonly pool: string;
  setDraining(server: BackendServer, draining: boolean, reason: string): void;
  /** The server left for good (its metric series go). */
  removed(server: BackendServer): void;
  /** Members changed: caps, the queue. */
  changed(): void;
}

/**
 * Who a pool's servers are: the config's entries with one address, and the members of
 * every DNS set (src/discovery/) as last looked up. A reload or a lookup that no longer
 * wants a server retires it: DRAINING, and gone when its last session ends.
 */
export class PoolMembers {
  /** Live servers in config order, then retired ones (shown DRAINING until their sessions end). */
  readonly servers: BackendServer[];
  private readonly hooks: MemberHooks;
  private readonly retired = new Set<BackendServer>();
  /** What lookups last found for each entry that names a set. */
  private readonly sets = new Map<string, readonly SetMember[]>();
  /** Told when servers join or leave (health checks follow). */
  private readonly watchers = new Set<() => void>();

  constructor(config: PoolConfig, hooks: MemberHooks) {
    this.hooks = hooks;
    this.servers = this.wantedSpecs(config).map((spec) => new BackendServer(config.name, spec));
  }

  /**
   * A lookup's answer for a set entry: new members join (after their checks pass, but on
   * the first answer, which stands for the config at start), vanished ones drain.
   */
  setMembers(config: PoolConfig, entry: string, members: readonly SetMember[]): ServerChanges {
    const awaitRise = this.sets.has(entry) && config.healthCheck.enabled;
    this.sets.set(entry, members);
    return this.update(this.wantedSpecs(config, awaitRise ? entry : undefined), 'dns');
  }

  /** A reloaded config: entries gone take their sets with them. */
  reconfigure(config: PoolConfig): ServerChanges {
    const entries = new Set(config.servers.map((entry) => entry.name));
    for (const entry of this.sets.keys()) if (!entries.has(entry)) this.sets.delete(entry);
    return this.update(this.wantedSpecs(config), 'reload');
  }

  /** Calls `watcher` whenever servers join or leave; returns the unsubscribe. */
  watch(watcher: () => void): () => void {
    this.watchers.add(watcher);
    return () => this.watchers.delete(watcher);
  }

  /** A lease let go of everything: a retired server leaves once its last session has. */
  leaseClosed(server: BackendServer): void {
    if (server.activeSessions > 0 || !this.retired.delete(server)) return;
    const index = this.servers.indexOf(server);
    if (index !== -1) this.servers.splice(index, 1);
    this.hooks.removed(server);
    this.notify();
  }

  /** The specs of every server wanted now; new members of `risingEntry` wait for their checks. */
  private wantedSpecs(config: PoolConfig, risingEntry?: string): ServerSpec[] {
    return config.servers.flatMap((entry) => {
      if (!isServerSet(entry)) return [staticSpec(config, entry)];
      return (this.sets.get(entry.name) ?? []).map((member) => memberSpec(config, entry, member, entry.name === risingEntry));
    });
  }

  /** Moves to the wanted servers: new ones join, unwanted ones drain (or leave at once with no session). */
  private update(specs: readonly ServerSpec[], cause: 'reload' | 'dns'): ServerChanges {
    const { next, toRetire, gone, toUndrain, changes } = reconcileServers(this.servers, this.retired, specs, this.hooks.pool);
    for (const server of toUndrain) {
      this.retired.delete(server);
      this.hooks.setDraining(server, false, `${cause}:added`);
    }
    for (const server of toRetire) {
      this.retired.add(server);
      this.hooks.setDraining(server, true, `${cause}:removed`);
    }
    this.servers.splice(0, this.servers.length, ...next, ...this.retired);
    for (const server of gone) this.hooks.removed(server);
    if (changes.added.length + changes.removed.length > 0) this.notify();
    this.hooks.changed();
    return changes;
  }

  private notify(): void {
    for (const watcher of this.watchers) watcher();
  }
}
