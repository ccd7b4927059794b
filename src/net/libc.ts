/**
 * The few libc calls Node's `net` does not offer (a unix datagram for sd_notify, a socket
 * option for transparent source addresses),
 * through koffi: an FFI whose npm package ships prebuilt binaries for each platform,
 * so `npm ci` needs no compiler. Loaded on first use only: a proxy that never needs
 * these calls never loads koffi.
 */
import { constants } from 'node:os';
import type Koffi from 'koffi';

export interface Libc {
  socket(domain: number, type: number, protocol: number): number;
  sendto(fd: number, message: Buffer, length: number, flags: number, address: Buffer, addressLength: number): number;
  setsockopt(fd: number, level: number, name: number, value: Buffer, length: number): number;
  close(fd: number): number;
  /** errno of the last failed call. */
  errno(): number;
}

export const AF_UNIX = 1;
export const SOCK_DGRAM = 2;
export const SOCK_CLOEXEC = 0o2000000;
export const SOCK_NONBLOCK = 0o4000;
export const AF_INET = 2;
export const AF_INET6 = 10;
export const SOCK_STREAM = 1;
export const MSG_NOSIGNAL = 0x4000;

let loading: Promise<Libc> | undefined;

/** The bindings, loaded once; rejects with what is missing when koffi cannot be loaded. */
export function loadLibc(): Promise<Libc> {
  loading ??= (async () => {
    let koffi: typeof Koffi;
    try {
      koffi = (await import('koffi')).default;
    } catch (error) {
      throw new Error('the koffi package is not installed (npm ci installs it; it is needed for systemd notification and transparent source addresses)', { cause: error });
    }
    const lib = koffi.load('libc.so.6');
    const call = <T>(definition: string): T => lib.func(definition) as T;
    return {
      socket: call<Libc['socket']>('int socket(int domain, int type, int protocol)'),
      sendto: call<Libc['sendto']>('intptr_t sendto(int fd, const void *buf, size_t len, int flags, const void *addr, uint32_t addrlen)'),
      setsockopt: call<Libc['setsockopt']>('int setsockopt(int fd, int level, int name, const void *value, uint32_t length)'),
      close: call<Libc['close']>('int close(int fd)'),
      errno: () => koffi.errno(),
    };
  })();
  return loading;
}

/** An errno as Node names it (ECONNREFUSED), for messages. */
export function errnoName(errno: number): string {
  for (const [name, value] of Object.entries(constants.errno)) if (value === errno) return name;
  return `errno ${errno}`;
}
