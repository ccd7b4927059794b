/**
 * Stable reason codes. Metric labels, log fields and tests branch on these,
 * never on message text.
 */
export const ATTEMPT_FAILURE_CODES = [
  'CONNECT_REFUSED',
  'CONNECT_TIMEOUT',
  'CONNECT_ERROR',
  'BACKEND_RESET',
  'BACKEND_CLOSED',
  'BANNER_TIMEOUT',
  'BANNER_INVALID',
  'NOT_SSH',
  'THROTTLED',
  'SSH_VERSION_UNSUPPORTED',
  /** Identified, then no KEXINIT in time (verify: kexinit). */
  'KEXINIT_TIMEOUT',
  /** Identified, then bytes that are not a KEXINIT (garbage after the banner). */
  'KEXINIT_INVALID',
  /** The server's KEXINIT has no key exchange, host key, cipher or MAC in common with this client's: a mismatch, not a fault. */
  'NO_COMMON_ALGORITHMS',
  /** The proxy itself could not open a connection (EMFILE, ENFILE, EADDRNOTAVAIL): says nothing about the backend. */
  'LOCAL_RESOURCE',
  /**
   * source: transparent, and the client's address could not be used: the socket option was
   * refused, or connects from client addresses time out while the server's health checks
   * (from the proxy's own address) pass, i.e. the return route is missing. Says nothing about the backend.
   */
  'SOURCE_UNUSABLE',
  /**
   * source: transparent: the server closed, reset or refused ("Not allowed at this time") a
   * connection from the client's address before its banner while its health checks (from the
   * proxy's address) pass and the proxy's own slots there are mostly free: it refuses
   * this client (sshd PerSourcePenalties, TCP wrappers), as it would without the proxy.
   * Not counted against the server, and not retried on it in this session.
   */
  'SOURCE_REFUSED',
] as const;
export type AttemptFailureCode = (typeof ATTEMPT_FAILURE_CODES)[number];

export const SESSION_FAILURE_CODES = [
  'ACL_DENIED',
  'LIMIT_REACHED',
  'PER_SOURCE_LIMIT',
  'PER_SOURCE_RATE',
  /** The client's source is penalised (too many failed or abandoned logins): refused like sshd's PerSourcePenalties. */
  'PENALIZED',
  'PROXY_HEADER_INVALID',
  'PROXY_HEADER_TIMEOUT',
  'PROXY_UNTRUSTED',
  'NO_BACKEND',
  'BACKENDS_EXHAUSTED',
  'QUEUE_TIMEOUT',
  'QUEUE_FULL',
  /** The shared store is down and cluster.onStoreDown is `refuse`. */
  'STORE_DOWN',
  'SETUP_TIMEOUT',
  'CLIENT_CLOSED',
  'CLIENT_RESET',
  'SHUTDOWN',
  /** The proxy's drain (timeouts.drain) ran out while the session was still in setup. */
  'DRAIN_TIMEOUT',
] as const;
export type SessionFailureCode = (typeof SESSION_FAILURE_CODES)[number];

/** How a spliced session ended. */
export const SPLICED_CLOSE_CODES = [
  'CLIENT_CLOSED',
  'CLIENT_RESET',
  'SERVER_CLOSED',
  'SERVER_RESET',
  'IDLE_TIMEOUT',
  'FIN_TIMEOUT',
  /** The client got the banner but sent no identification within timeouts.clientIdentification. */
  'CLIENT_SILENT',
  /** The backend read nothing for timeouts.writeStall: the client side was paused that long. */
  'SERVER_WRITE_STALL',
  /** The client read nothing for timeouts.writeStall. */
  'CLIENT_WRITE_STALL',
  /** The client stopped answering TCP keepalives (ETIMEDOUT) or became unreachable: a vanished peer. */
  'CLIENT_LOST',
  'SERVER_LOST',
  'DRAIN_TIMEOUT',
  'SHUTDOWN',
] as const;
export type SplicedCloseCode = (typeof SPLICED_CLOSE_CODES)[number];

export type ReasonCode = AttemptFailureCode | SessionFailureCode | SplicedCloseCode;

/** A configuration file or flag that cannot be used; the message names the source and field. */
export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
  readonly problems: readonly string[];

  /** `headline` says what kind of problem it is: the file's content, or the file itself (not found, unreadable). */
  constructor(source: string, problems: readonly string[], headline = 'invalid configuration') {
    super(`${source}: ${headline}\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/** Maps a socket error to the attempt reason code an operator would expect. */
/** Errors of this process's own resources, never of the backend. */
const LOCAL_RESOURCE_ERRNOS: ReadonlySet<string> = new Set(['EMFILE', 'ENFILE', 'EADDRNOTAVAIL', 'ENOBUFS', 'ENOMEM']);

export function isLocalResourceError(errno: string | undefined): boolean {
  return errno !== undefined && LOCAL_RESOURCE_ERRNOS.has(errno);
}

export function attemptCodeForSocketError(error: NodeJS.ErrnoException, connected: boolean): AttemptFailureCode {
  if (isLocalResourceError(error.code)) return 'LOCAL_RESOURCE';
  // A reset can beat the 'connect' event when the server accepts and resets at once.
  if (error.code === 'ECONNRESET') return 'BACKEND_RESET';
  if (!connected) {
    if (error.code === 'ECONNREFUSED') return 'CONNECT_REFUSED';
    if (error.code === 'ETIMEDOUT') return 'CONNECT_TIMEOUT';
    return 'CONNECT_ERROR';
  }
  if (error.code === 'EPIPE') return 'BACKEND_RESET';
  return 'BACKEND_CLOSED';
}
