import { endianness } from 'node:os';
import { AF_UNIX, errnoName, loadLibc, MSG_NOSIGNAL, SOCK_CLOEXEC, SOCK_DGRAM, type Libc } from '../net/libc.js';

/** sizeof(struct sockaddr_un): a 2-byte family, then 108 bytes of path. */
const SOCKADDR_UN_SIZE = 110;
const PATH_OFFSET = 2;

/**
 * A connectionless unix datagram socket that sends to one path (Node's `dgram` has
 * only UDP). A path starting with `@` is in the abstract namespace, as sd_notify
 * reads NOTIFY_SOCKET.
 */
export class UnixDatagramSender {
  private constructor(
    private readonly libc: Libc,
    private fd: number,
    private readonly address: Buffer,
    private readonly addressLength: number,
    readonly path: string,
  ) {}

  static async open(path: string): Promise<UnixDatagramSender> {
    const { address, length } = sockaddrUn(path);
    const libc = await loadLibc();
    const fd = libc.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw new Error(`cannot create a unix datagram socket: ${errnoName(libc.errno())}`);
    return new UnixDatagramSender(libc, fd, address, length, path);
  }

  /** Sends one datagram; throws with the errno's name when the kernel refuses it. */
  send(text: string): void {
    if (this.fd < 0) throw new Error(`the datagram socket to ${this.path} is closed`);
    const message = Buffer.from(text);
    const sent = this.libc.sendto(this.fd, message, message.length, MSG_NOSIGNAL, this.address, this.addressLength);
    if (Number(sent) < 0) throw new Error(`cannot send to ${this.path}: ${errnoName(this.libc.errno())}`);
  }

  close(): void {
    if (this.fd < 0) return;
    this.libc.close(this.fd);
    this.fd = -1;
  }
}

/** struct sockaddr_un for a path; `@name` is abstract (a leading NUL, no terminator counted). */
export function sockaddrUn(path: string): { readonly address: Buffer; readonly length: number } {
  const abstract = path.startsWith('@');
  const name = Buffer.from(abstract ? `\0${path.slice(1)}` : path);
  // A filesystem path needs room for its terminating NUL.
  if (name.length + (abstract ? 0 : 1) > SOCKADDR_UN_SIZE - PATH_OFFSET) throw new Error(`unix socket path is longer than 107 bytes: ${path}`);
  if (!abstract && !path.startsWith('/')) throw new Error(`unix socket path must be absolute or start with @: ${path}`);
  const address = Buffer.alloc(SOCKADDR_UN_SIZE);
  // sa_family_t is in host byte order.
  if (endianness() === 'LE') address.writeUInt16LE(AF_UNIX, 0);
  else address.writeUInt16BE(AF_UNIX, 0);
  name.copy(address, PATH_OFFSET);
  return { address, length: PATH_OFFSET + name.length + (abstract ? 0 : 1) };
}
