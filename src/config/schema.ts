import { z } from 'zod';
import { cidr, dnsName, duration, hostPort, name, nonNegativeInt, positiveInt } from './fields.js';
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

/** Handshake slots: a number (keep it under sshd's MaxStartups start), or `auto`: learned from the server's refusals (handshake.learn). */
const maxStartups = z.union([positiveInt, z.literal('auto')]);

/**
 * One server, or a set of them found in DNS (docs/discovery.md): `address` with a host
 * name is every A/AAAA address of that name; `srv` is every target of an SRV record.
 */
const server = z.strictObject({
  name,
  address: hostPort.optional(),
  /** An SRV name such as `_ssh._tcp.sshd.default.svc.cluster.local`: its targets and ports are the servers. */
  srv: dnsName.optional(),
  /** A set's servers at most (the rest are left out, and said so): metric series stay bounded while addresses churn. */
  maxServers: positiveInt.max(1024).default(32),
  weight: nonNegativeInt.max(256).default(1),
  backup: z.boolean().default(false),
  /** Sessions allowed in their SSH handshake on this server at once (default handshake.maxStartups). */
  maxStartups: maxStartups.optional(),
  /** Send a PROXY protocol header first (HAProxy's send-proxy / send-proxy-v2): for backends that read one. */
  sendProxy: z.enum(['v1', 'v2']).optional(),
});

const healthCheck = z.strictObject({
  enabled: z.boolean().default(true),
  interval: duration.default(5000),
  timeout: duration.default(3000),
  rise: positiveInt.default(2),
  fall: positiveInt.default(3),
  /** Fraction of the interval by which each check is randomly shifted. */
  jitter: z.number().min(0).max(1).default(0.2),
});

const passiveHealth = z.strictObject({
  /** Consecutive session failures (banner timeout, reset, throttle) that mark a server down; 0 = off. */
  consecutiveFailures: nonNegativeInt.default(3),
});

/** How `maxStartups: auto` learns a server's capacity (docs/pool.md, "Learned capacity"). */
const learn = z.strictObject({
  /** Slots a server starts with before anything is learned. */
  start: positiveInt.default(2),
  /** Never more than this many, however well handshakes go. */
  ceiling: positiveInt.max(1024).default(32),
  /** Past the last refusal, one more slot is tried at most this often (a server whose limit was raised is followed up). */
  probeInterval: duration.default(30_000),
});

const handshake = z.strictObject({
  maxStartups: maxStartups.default(8),
  learn: learn.default(learn.parse({})),
  /**
   * When a session's handshake is over: `auth` after the server's `authFlights`-th reply
   * following NEWKEYS (at most `grace` after NEWKEYS); `newkeys+grace`; `newkeys`; `splice`.
   */
  endsAt: z.enum(['auth', 'newkeys', 'newkeys+grace', 'splice']).default('auth'),
  /** Server replies after NEWKEYS that end an `auth` handshake (SERVICE_ACCEPT, then one per auth step). */
  authFlights: positiveInt.max(64).default(4),
  grace: duration.default(1000),
  /** Hard cap: a slot is released this long after connect even if no NEWKEYS was seen. */
  maxHold: duration.default(30000),
  /**
   * Share of each server's slots that clients which have not sent their identification
   * yet may hold (idle sockets, scanners; some clients wait for the banner first). The
   * rest is kept for clients that have spoken: idle sockets cannot take every slot.
   */
  silentShare: z.number().min(0.05).max(1).default(0.5),
});

const queue = z.strictObject({
  timeout: duration.default(10000),
  maxLength: nonNegativeInt.default(1000),
});

const retry = z.strictObject({
  /** Backoff before retrying a throttled/reset backend, jittered. */
  backoff: duration.default(100),
  maxBackoff: duration.default(1000),
  /** Total backend attempts per session, across all servers. */
  maxAttempts: positiveInt.default(6),
  /** Backend connection attempts per second per pool, counting retries (0 = unlimited). */
  maxConnectRate: nonNegativeInt.default(0),
});

const prefetch = z.strictObject({
  perServer: nonNegativeInt.max(64).default(0),
  maxAge: duration.default(60000),
});

const pool = z.strictObject({
  name,
  balance: z.enum(['roundrobin', 'leastconn', 'source']).default('roundrobin'),
  retries: nonNegativeInt.max(32).default(2),
  /** When every server is DOWN: try them anyway, or refuse at once with NO_BACKEND. */
  whenAllDown: z.enum(['try', 'refuse']).default('try'),
  /**
   * How far a backend must get before a client is spliced to it (sessions, health checks,
   * prefetch): its identification (`banner`), or its KEXINIT too (`kexinit`: a server that
   * identifies and then fails, or has no algorithms in common with the client, is failed over).
   */
  verify: z.enum(['kexinit', 'banner']).default('kexinit'),
  /**
   * The address sessions connect to backends from: the proxy's own (`proxy`), or the client's
   * (`transparent`: sshd sees the real client; needs CAP_NET_ADMIN and a return route, docs/identity.md).
   */
  source: z.enum(['proxy', 'transparent']).default('proxy'),
  healthCheck: healthCheck.default(healthCheck.parse({})),
  passiveHealth: passiveHealth.default(passiveHealth.parse({})),
  handshake: handshake.default(handshake.parse({})),
  queue: queue.default(queue.parse({})),
  retry: retry.default(retry.parse({})),
  prefetch: prefetch.optional(),
  servers: z.array(server).min(1, 'a pool needs at least one server'),
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
