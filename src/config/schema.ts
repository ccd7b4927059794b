import { z } from 'zod';
import { cidr, duration, hostPort, name, nonNegativeInt, positiveInt } from './fields.js';
import { pool } from './schema-pool.js';
import { formatHostPort, isLoopbackHost, type HostPort } from '../net/address.js';

const acl = z.strictObject({
  allow: z.array(cidr).default(['0.0.0.0/0', '::/0']),
  deny: z.array(cidr).default([]),
});

const proxyProtocol = z.strictObject({
  accept: z.enum(['off', 'v1', 'v2', 'any']).default('off'),
  trusted: z.array(cidr).default([]),
  timeout: duration.default(3000),
});

const keepalive = z.strictObject({
  after: duration.default(5000),
  every: duration.default(1000),
  maxLines: positiveInt.max(99).default(90),
  clients: z.array(z.string().min(1)).default(['paramiko_*']),
});

/** A client-aware pre-splice budget: clients whose identification matches `clients` get `setup`. */
const deadline = z.strictObject({
  clients: z.array(z.string().min(1)).min(1),
  setup: duration,
});

const listener = z.strictObject({
  name,
  bind: hostPort,
  pool: name,
  acl: acl.default({ allow: ['0.0.0.0/0', '::/0'], deny: [] }),
  proxyProtocol: proxyProtocol.optional(),
  keepalive: keepalive.optional(),
  /** First match wins; clients matching none keep `timeouts.setup`. */
  deadlines: z.array(deadline).optional(),
});

const timeoutsShape = {
  connect: duration.default(3000),
  banner: duration.default(8000),
  /** Whole pre-splice budget for one client, across queueing, retries and failover (0 = connect+banner per attempt only). */
  setup: duration.default(0),
  clientIdle: duration.default(0),
  fin: duration.default(30000),
  /** After the banner reached it, a client has this long to send its identification (sshd: LoginGraceTime); 0 = no limit. */
  clientIdentification: duration.default(10000),
  /** A spliced write blocked this long with no progress (a stalled peer) ends the session; 0 = never. */
  writeStall: duration.default(120000),
  /**
   * TCP keepalive on client and backend sockets: first probe after this much silence
   * (TCP_KEEPIDLE); libuv then probes every 1 s, 10 times, so a vanished peer is
   * noticed this + 10 s after its last packet. 0 = off.
   */
  tcpKeepalive: duration.default(60000),
  drain: duration.default(30000),
  /**
   * After SIGTERM, /readyz turns 503 at once but listeners keep accepting this long
   * (load balancers and kube-proxy still send connections while the endpoint is
   * deregistered), then stop accepting and drain. 0 = stop accepting at once.
   */
  shutdownGrace: duration.default(0),
};
const timeouts = z.strictObject(timeoutsShape);

const limits = z.strictObject({
  maxConnections: positiveInt.default(10000),
  clientBufferBytes: positiveInt.min(256).default(65536),
  perSourceConnections: nonNegativeInt.default(0),
  perSourceRate: nonNegativeInt.default(0),
  perSourceIpv6Prefix: z.number().int().min(1).max(128).default(64),
});

/**
 * Per-source penalties, as sshd's PerSourcePenalties but on the real client address
 * (sshd behind the proxy sees only the proxy's). Defaults are sshd's; a kind set to 0s
 * is not charged. docs/penalties.md.
 */
const penaltySettings = z.strictObject({
  enabled: z.boolean().default(true),
  authfail: duration.default(5000),
  noauth: duration.default(1000),
  graceExceeded: duration.default(10000),
  /** A source is refused once its accumulated penalty exceeds this. */
  min: duration.default(15000),
  /** Accumulated penalty is capped here. */
  max: duration.default(600_000),
  exempt: z.array(cidr).default([]),
  ipv4Prefix: z.number().int().min(1).max(32).default(32),
  ipv6Prefix: z.number().int().min(1).max(128).default(64),
  /**
   * Sources tracked at most. A source not yet refused is forgotten first (least recently
   * charged); a refused one never is: with the table full of them, `overflow` decides.
   */
  maxSources: positiveInt.max(10_000_000).default(65536),
  /** sshd's PerSourcePenalties overflow: `permissive` records no new penalty while full; `deny-all` refuses every other source. */
  overflow: z.enum(['permissive', 'deny-all']).default('permissive'),
});
/** `penalties: off` is short for `{ enabled: false }`; not a union, so a bad field is named in the error. */
const penalties = z.preprocess((value) => (value === 'off' ? { enabled: false } : value), penaltySettings);

/** redis:// or rediss:// (TLS), with an optional database number; a password belongs in the environment. */
const storeUrl = z.string().transform((value, ctx): string => {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    ctx.addIssue({ code: 'custom', message: `expected a URL like redis://127.0.0.1:6379/0, got ${JSON.stringify(value)}` });
    return z.NEVER;
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    ctx.addIssue({ code: 'custom', message: `expected redis:// or rediss://, got ${url.protocol}//` });
    return z.NEVER;
  }
  if (url.pathname !== '' && url.pathname !== '/' && !/^\/\d{1,2}$/.test(url.pathname)) {
    ctx.addIssue({ code: 'custom', message: `the path must be a database number like /0, got ${url.pathname}` });
    return z.NEVER;
  }
  return value;
});

/**
 * Replicas that share one budget (docs/cluster.md): handshake slots, per-source limits and
 * penalties counted in Valkey/Redis. Without it every process keeps its own.
 */
const cluster = z.strictObject({
  store: storeUrl,
  prefix: z.string().regex(/^[A-Za-z0-9_.:{}-]{1,64}$/, 'expected up to 64 letters, digits or _ . : { } -').default('sbp:'),
  /** A replica's holdings stop counting this long after it last renewed them (killed, partitioned, frozen). */
  leaseTtl: duration.pipe(z.number().min(1000, 'at least 1s').max(300_000, 'at most 5m')).default(10000),
  /** While the store is down: `local` (each replica keeps to localShare of each limit) or `refuse` new sessions. */
  onStoreDown: z.enum(['local', 'refuse']).default('local'),
  /**
   * Share of each limit a replica may use alone while the store is down. Unset: 1 / the number
   * of replicas it last saw sharing the store (0.5 before it ever saw the store). Set: this.
   */
  localShare: z.number().gt(0).max(1).optional(),
  /** A store answer later than this counts as none, for that request (decided as if the store were down). */
  acquireTimeout: duration.pipe(z.number().min(10, 'at least 10ms').max(10_000, 'at most 10s')).default(250),
  /** The environment variable holding the store's password (never in the config file). */
  passwordEnv: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected an environment variable name').default('SBP_STORE_PASSWORD'),
  /**
   * This replica's id in the store (default: host name and process id). It must differ
   * between replicas, which hold their counts under it: never set it in a config they share.
   */
  replicaId: name.optional(),
});

/**
 * How server sets are looked up (docs/discovery.md). Lookups run on a schedule, never
 * on a connection's path.
 */
const dns = z.strictObject({
  /** DNS servers to ask (host:port); empty: the system's resolver (getaddrinfo, /etc/hosts; resolv.conf for SRV). */
  resolvers: z.array(hostPort).default([]),
  /** Per query, and how many times it is sent before the lookup counts as failed. */
  timeout: duration.default(2000),
  attempts: positiveInt.max(10).default(2),
  /** Looked up again after the answer's TTL, kept within these bounds (the system resolver gives no TTL: `max`). */
  refresh: z
    .strictObject({ min: duration.default(1000), max: duration.default(30_000) })
    .default({ min: 1000, max: 30_000 }),
  /** A failed lookup (SERVFAIL, timeout, refused) keeps the last good set this long, then the set drains. */
  hold: duration.default(300_000),
  /** NXDOMAIN or an empty answer keeps the last set this long (a blip while a Service is recreated), then it drains. */
  holdNx: duration.default(30_000),
  /** Which addresses of a name: both families, or one. */
  family: z.enum(['any', 'ipv4', 'ipv6']).default('any'),
});

const log = z.strictObject({
  level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  pretty: z.boolean().default(false),
  /** `pino`: pino's own JSON (numeric levels unless levelNames); `ecs`: Elastic Common Schema field names (docs/operations.md). */
  format: z.enum(['pino', 'ecs']).default('pino'),
  /** `"level":"info"` instead of `"level":30` (ecs always names levels). */
  levelNames: z.boolean().default(false),
});

/** Admin endpoints a request without the token may read (docs/operations.md, "Runtime control"). */
const adminRead = z.enum(['metrics', 'healthz', 'readyz', 'status']);

const admin = z.strictObject({
  bind: hostPort,
  /**
   * A file holding the admin token (e.g. a mounted Secret); else the variable named by
   * `tokenEnv`. Without a token every mutation is refused.
   */
  tokenFile: z.string().min(1).optional(),
  tokenEnv: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected an environment variable name').default('SBP_ADMIN_TOKEN'),
  /**
   * What may be read without the token. Unset: everything on a loopback bind; beyond
   * loopback only metrics, healthz and readyz (status lists client addresses).
   */
  open: z.array(adminRead).optional(),
  /** Admin connections open at once; more are closed at accept. Their descriptors are kept from the data plane. */
  maxConnections: positiveInt.max(1024).default(32),
  /** An admin connection with no request for this long is closed (headers and bodies are bounded separately). */
  idleTimeout: duration.default(10000),
});

export const configSchema = z
  .strictObject({
    listeners: z.array(listener).min(1, 'at least one listener is needed'),
    pools: z.array(pool).min(1, 'at least one pool is needed'),
    timeouts: timeouts.default(timeouts.parse({})),
    limits: limits.default(limits.parse({})),
    penalties: penalties.default(penaltySettings.parse({})),
    log: log.default(log.parse({})),
    admin: admin.optional(),
    workers: z.union([positiveInt.max(64), z.literal('auto')]).default(1),
    /**
     * With workers: each binds its own listening socket with SO_REUSEPORT (Node ≥ 22.12 on
     * Linux, fixed ports only) and the kernel spreads connections; `off` keeps one shared socket.
     */
    reusePort: z.enum(['auto', 'off']).default('auto'),
    cluster: cluster.optional(),
    dns: dns.default(dns.parse({})),
  })
  .superRefine((config, ctx) => {
    const poolNames = new Set<string>();
    config.pools.forEach((pool, index) => {
      if (poolNames.has(pool.name)) {
        ctx.addIssue({ code: 'custom', path: ['pools', index, 'name'], message: `duplicate pool name "${pool.name}"` });
      }
      poolNames.add(pool.name);
      const serverNames = new Set<string>();
      pool.servers.forEach((server, serverIndex) => {
        if (serverNames.has(server.name)) {
          ctx.addIssue({
            code: 'custom',
            path: ['pools', index, 'servers', serverIndex, 'name'],
            message: `duplicate server name "${server.name}" in pool "${pool.name}"`,
          });
        }
        serverNames.add(server.name);
        if ((server.address === undefined) === (server.srv === undefined)) {
          ctx.addIssue({
            code: 'custom',
            path: ['pools', index, 'servers', serverIndex],
            message: server.address === undefined ? 'needs an address (host:port) or an srv name' : 'give an address or an srv name, not both',
          });
        }
      });
      if (pool.prefetch !== undefined && pool.prefetch.perServer > 0) {
        pool.servers.forEach((server, serverIndex) => {
          if (server.sendProxy === undefined) return;
          ctx.addIssue({
            code: 'custom',
            path: ['pools', index, 'servers', serverIndex, 'sendProxy'],
            message: 'cannot be used with prefetch: a prefetched connection is opened before its client, so there is no client address to send (set prefetch.perServer: 0)',
          });
        });
      }
      if (pool.source === 'transparent') transparentProblems(pool).forEach(([path, message]) => ctx.addIssue({ code: 'custom', path: ['pools', index, ...path], message }));
      if (pool.prefetch && pool.prefetch.maxAge > 90_000) {
        ctx.addIssue({
          code: 'custom',
          path: ['pools', index, 'prefetch', 'maxAge'],
          message: `must stay well under sshd's LoginGraceTime (120s by default): at most 90s, got ${pool.prefetch.maxAge}ms`,
        });
      }
    });
    const listenerNames = new Set<string>();
    config.listeners.forEach((listener, index) => {
      if (listenerNames.has(listener.name)) {
        ctx.addIssue({ code: 'custom', path: ['listeners', index, 'name'], message: `duplicate listener name "${listener.name}"` });
      }
      listenerNames.add(listener.name);
      if (listener.proxyProtocol && listener.proxyProtocol.accept !== 'off' && listener.proxyProtocol.trusted.length === 0) {
        ctx.addIssue({
          code: 'custom',
          path: ['listeners', index, 'proxyProtocol', 'trusted'],
          message: 'list the CIDRs of the load balancers that send PROXY headers (connections from anywhere else are refused)',
        });
      }
      if (listener.keepalive && listener.keepalive.every >= 2000) {
        ctx.addIssue({
          code: 'custom',
          path: ['listeners', index, 'keepalive', 'every'],
          message: `must be under 2s: paramiko waits only 2s for each line after the first, got ${listener.keepalive.every}ms`,
        });
      }
      if (!poolNames.has(listener.pool)) {
        ctx.addIssue({
          code: 'custom',
          path: ['listeners', index, 'pool'],
          message: `unknown pool "${listener.pool}" (defined: ${[...poolNames].join(', ') || 'none'})`,
        });
      }
    });
  });

export type Config = Readonly<z.output<typeof configSchema>>;
export type ListenerConfig = Config['listeners'][number];
export type PoolConfig = Config['pools'][number];
export type ServerConfig = PoolConfig['servers'][number];
export type TimeoutsConfig = Config['timeouts'];
export type LimitsConfig = Config['limits'];
export type PenaltiesConfig = Config['penalties'];
export type PenaltySettings = PenaltiesConfig;
export type ClusterConfig = NonNullable<Config['cluster']>;
export type DnsConfig = Config['dns'];
export type AdminConfig = NonNullable<Config['admin']>;
export type LearnConfig = PoolConfig['handshake']['learn'];
export type KeepaliveConfig = NonNullable<ListenerConfig['keepalive']>;

/** What cannot work with `source: transparent`, known from the file alone. */
function transparentProblems(pool: { readonly prefetch?: { readonly perServer: number } | undefined; readonly servers: readonly { readonly address?: HostPort | undefined }[] }): [(string | number)[], string][] {
  const problems: [(string | number)[], string][] = [];
  if (pool.prefetch !== undefined && pool.prefetch.perServer > 0) {
    problems.push([['prefetch', 'perServer'], 'cannot be used with source: transparent: a prefetched connection is opened before its client, so its address is not known (set 0, or source: proxy)']);
  }
  pool.servers.forEach((server, index) => {
    if (server.address !== undefined && isLoopbackHost(server.address.host)) {
      problems.push([
        ['servers', index, 'address'],
        `${formatHostPort(server.address)} is a loopback address, which cannot work with source: transparent (the kernel refuses loopback destinations for non-local sources): have sshd listen on a non-loopback address, such as the pod's or one added to lo`,
      ]);
    }
  });
  return problems;
}
