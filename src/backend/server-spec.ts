import type { LearnConfig, PoolConfig, ServerConfig } from '../config/schema.js';
import { learn } from '../config/schema-pool.js';
import type { ProxyVersion } from '../protocol/proxy-protocol-encode.js';
import { isIP } from 'node:net';

/** What one backend server is made from: a config entry's own address, or one member of a set found in DNS. */
export interface ServerSpec {
  readonly name: string;
  /** An IP address for a discovered server: no lookup on the connection path. */
  readonly host: string;
  readonly port: number;
  readonly weight: number;
  readonly backup: boolean;
  readonly maxStartups: number | 'auto';
  readonly learn: LearnConfig;
  readonly sendProxy: ProxyVersion | undefined;
  /** The config entry (servers[].name) it comes from. */
  readonly entry: string;
  /** Found by a lookup after start: it takes sessions once its checks pass (`rise`). */
  readonly awaitRise: boolean;
}

/** One address of a set, as a lookup found it. */
export interface SetMember {
  /** Readable and stable: the SRV target's host name (a pod's name), else the address. */
  readonly label: string;
  readonly address: string;
  readonly port: number;
}

/** Whether a config entry names a set found in DNS (an SRV name, or a host name) rather than one IP address. */
export function isServerSet(config: ServerConfig): boolean {
  return config.srv !== undefined || (config.address !== undefined && isIP(config.address.host) === 0);
}

/** The one server of an entry with an IP address. */
export function staticSpec(pool: PoolConfig, config: ServerConfig): ServerSpec {
  if (config.address === undefined) throw new Error(`server "${config.name}" has no address (an srv entry is a set)`);
  return entrySpec(pool, config, { name: config.name, host: config.address.host, port: config.address.port, awaitRise: false });
}

/** One member of a set: named `<entry>/<label>`. */
export function memberSpec(pool: PoolConfig, config: ServerConfig, member: SetMember, awaitRise: boolean): ServerSpec {
  return entrySpec(pool, config, { name: `${config.name}/${member.label}`, host: member.address, port: member.port, awaitRise });
}

function entrySpec(pool: PoolConfig, config: ServerConfig, at: { name: string; host: string; port: number; awaitRise: boolean }): ServerSpec {
  return {
    ...at,
    weight: config.weight,
    backup: config.backup,
    maxStartups: config.maxStartups ?? pool.handshake.maxStartups,
    learn: pool.handshake.learn,
    sendProxy: config.sendProxy,
    entry: config.name,
  };
}

/** The config's `handshake.learn` defaults. */
const DEFAULT_LEARN: LearnConfig = learn.parse({});

/** A lone server with a fixed limit (tools and tests that need no config). */
export function fixedServerSpec(name: string, host: string, port: number, maxStartups: number): ServerSpec {
  return { name, host, port, weight: 1, backup: false, maxStartups, learn: DEFAULT_LEARN, sendProxy: undefined, entry: name, awaitRise: false };
}
