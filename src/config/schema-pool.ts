import { z } from 'zod';
import { dnsName, duration, hostPort, name, nonNegativeInt, positiveInt } from './fields.js';

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
export const learn = z.strictObject({
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

/** One `pools[]` entry: its servers (or DNS sets), health, balancing, slots, queue and retries. */
export const pool = z.strictObject({
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
