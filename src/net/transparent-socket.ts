import { isIP } from 'node:net';
import { AF_INET, AF_INET6, errnoName, loadLibc, SOCK_CLOEXEC, SOCK_NONBLOCK, SOCK_STREAM, type Libc } from './libc.js';
import { normaliseAddress } from './address.js';

const SOL_IP = 0;
const IP_TRANSPARENT = 19;
const SOL_IPV6 = 41;
const IPV6_TRANSPARENT = 75;
const IP_BIND_ADDRESS_NO_PORT = 24;
const ONE = Buffer.from(new Int32Array([1]).buffer);

/** A transparent socket could not be made: `errno` says why (EPERM: no CAP_NET_ADMIN or CAP_NET_RAW). */
export class TransparentSocketError extends Error {
  readonly errno: string;

  constructor(message: string, errno: string) {
    super(message);
    this.name = 'TransparentSocketError';
    this.errno = errno;
  }
}

/**
 * Makes TCP sockets that may bind an address this host does not own: `IP_TRANSPARENT`
 * (`IPV6_TRANSPARENT`), which Node's `net` cannot set. The descriptor is handed to
 * `new net.Socket({ fd })`, whose connect binds `localAddress` (the client's) first.
 */
export class TransparentSockets {
  private readonly libc: Libc;

  private constructor(libc: Libc) {
    this.libc = libc;
  }

  /** Loads libc through koffi: only a proxy with a transparent pool ever calls this. */
  static async load(): Promise<TransparentSockets> {
    return new TransparentSockets(await loadLibc());
  }

  /** A non-blocking, close-on-exec TCP socket of the client address's family, with the option set; throws TransparentSocketError. */
  open(clientAddress: string): number {
    const family = familyOf(clientAddress);
    const fd = this.libc.socket(family === 6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      const errno = errnoName(this.libc.errno());
      throw new TransparentSocketError(`socket(): ${errno}`, errno);
    }
    const set = family === 6 ? this.libc.setsockopt(fd, SOL_IPV6, IPV6_TRANSPARENT, ONE, 4) : this.libc.setsockopt(fd, SOL_IP, IP_TRANSPARENT, ONE, 4);
    if (set !== 0) {
      const errno = errnoName(this.libc.errno());
      this.libc.close(fd);
      const hint = errno === 'EPERM' ? ': the proxy needs CAP_NET_ADMIN or CAP_NET_RAW' : '';
      throw new TransparentSocketError(`setsockopt(${family === 6 ? 'IPV6_TRANSPARENT' : 'IP_TRANSPARENT'}): ${errno}${hint}`, errno);
    }
    // The port is chosen at connect, for the whole 4-tuple, not at bind for the client's address
    // alone: one busy client address (a NAT) then has a port range per backend, not one in all.
    // Best effort: without it (old kernels) connects still work.
    this.libc.setsockopt(fd, SOL_IP, IP_BIND_ADDRESS_NO_PORT, ONE, 4);
    return fd;
  }

  /** Closes a descriptor `open` made that was never handed to a socket (the start-up check's). */
  close(fd: number): void {
    this.libc.close(fd);
  }
}

let loaded: Promise<TransparentSockets> | undefined;
let ready: TransparentSockets | undefined;

/** Loads the bindings once (the start-up check does, before any listener opens). */
export function loadTransparentSockets(): Promise<TransparentSockets> {
  loaded ??= TransparentSockets.load().then((sockets) => (ready = sockets));
  return loaded;
}

/** The bindings, once loaded; sessions read this synchronously. */
export function transparentSockets(): TransparentSockets | undefined {
  return ready;
}

/** The family a client's address connects from: IPv4-mapped IPv6 is IPv4. */
export function familyOf(address: string): 4 | 6 {
  return isIP(normaliseAddress(address) ?? address) === 6 ? 6 : 4;
}
