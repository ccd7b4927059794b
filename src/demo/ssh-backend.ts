/**
 * Embedded SSH backends for the demo (npm ssh2 servers on loopback): one healthy, one whose
 * banner takes seconds, one that throttles like sshd's MaxStartups (start:rate:full).
 * Every login is accepted (it is a demo); exec prints which backend answered.
 */
import { once } from 'node:events';
import net from 'node:net';
import ssh2, { type Connection, type ServerChannel } from 'ssh2';

export type DemoBackendKind = 'healthy' | 'slow' | 'throttle';

export interface MaxStartups {
  readonly start: number;
  /** Percent of new connections dropped once `start` unauthenticated ones are open. */
  readonly rate: number;
  readonly full: number;
}

export interface DemoBackendOptions {
  readonly name: string;
  readonly kind: DemoBackendKind;
  /** OpenSSH-format private host key. */
  readonly hostKey: string;
  /** slow: delay before the identification. */
  readonly bannerDelayMs?: number;
  /** throttle: when to refuse with "Exceeded MaxStartups". */
  readonly maxStartups?: MaxStartups;
  /** throttle: random source for the drop decision (tests). */
  readonly random?: () => number;
  /** Loopback port to listen on; 0 (default) picks one. */
  readonly port?: number;
}

export interface DemoBackend {
  readonly name: string;
  readonly kind: DemoBackendKind;
  readonly port: number;
  readonly stats: { accepted: number; throttled: number; sessions: number };
  close(): Promise<void>;
}

export async function startDemoBackend(options: DemoBackendOptions): Promise<DemoBackend> {
  const stats = { accepted: 0, throttled: 0, sessions: 0 };
  const sockets = new Set<net.Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const limits = options.maxStartups ?? { start: 2, rate: 50, full: 4 };
  const random = options.random ?? Math.random;
  let unauthenticated = 0;
  /** Sockets handed to ssh2 whose 'connection' has not fired yet (count them as unauthenticated). */
  let injecting = 0;

  const ssh = new ssh2.Server({ hostKeys: [options.hostKey], ident: `Demo${capitalise(options.kind)}_1.0 ${options.name}` }, (client) => {
    injecting = Math.max(0, injecting - 1);
    unauthenticated += 1;
    let authenticated = false;
    const leavePreAuth = (): void => {
      if (authenticated) return;
      authenticated = true;
      unauthenticated -= 1;
    };
    client.on('error', () => undefined);
    client.on('close', leavePreAuth);
    client.on('authentication', (context) => context.accept());
    client.on('ready', () => {
      leavePreAuth();
      stats.sessions += 1;
      serveSession(client, options.name);
    });
  });

  const shouldThrottle = (): boolean => {
    const open = unauthenticated + injecting;
    if (open >= limits.full) return true;
    if (open < limits.start) return false;
    const dropPercent = limits.rate + ((100 - limits.rate) * (open - limits.start)) / Math.max(1, limits.full - limits.start);
    return random() * 100 < dropPercent;
  };

  const inject = (socket: net.Socket): void => {
    if (socket.destroyed) return;
    injecting += 1;
    ssh.injectSocket(socket);
  };

  const front = net.createServer((socket) => {
    stats.accepted += 1;
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.once('close', () => sockets.delete(socket));
    if (options.kind === 'throttle' && shouldThrottle()) {
      stats.throttled += 1;
      socket.end('Exceeded MaxStartups\r\n');
      return;
    }
    if (options.kind === 'slow') {
      const timer = setTimeout(() => {
        timers.delete(timer);
        inject(socket);
      }, options.bannerDelayMs ?? 20_000);
      timers.add(timer);
      socket.once('close', () => {
        clearTimeout(timer);
        timers.delete(timer);
      });
      return;
    }
    inject(socket);
  });
  front.on('error', () => undefined);
  front.listen(options.port ?? 0, '127.0.0.1');
  await once(front, 'listening');
  const address = front.address() as net.AddressInfo;

  let closing: Promise<void> | undefined;
  return {
    name: options.name,
    kind: options.kind,
    port: address.port,
    stats,
    close() {
      closing ??= new Promise<void>((resolve) => {
        for (const timer of timers) clearTimeout(timer);
        timers.clear();
        front.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      });
      return closing;
    },
  };
}

function serveSession(client: Connection, name: string): void {
  client.on('session', (accept) => {
    const session = accept();
    session.on('pty', (acceptPty) => acceptPty());
    session.on('env', (acceptEnv) => acceptEnv?.());
    session.on('exec', (acceptExec, _reject, info) => {
      const channel = acceptExec();
      channel.write(`${name}: ${info.command}\n`);
      channel.exit(0);
      channel.end();
    });
    session.on('shell', (acceptShell) => {
      const channel: ServerChannel = acceptShell();
      channel.write(`Hello from the demo backend "${name}", reached through ssh-banner-proxy.\r\nType a line to echo it, "exit" to leave.\r\n$ `);
      let line = '';
      channel.on('data', (data: Buffer) => {
        for (const char of data.toString('utf8')) {
          if (char === '\r' || char === '\n') {
            if (line.trim() === 'exit') {
              channel.write('\r\nbye\r\n');
              channel.exit(0);
              channel.end();
              return;
            }
            channel.write(`\r\n${line}\r\n$ `);
            line = '';
          } else if (char === '\x04') {
            channel.exit(0);
            channel.end();
            return;
          } else {
            line += char;
            channel.write(char);
          }
        }
      });
    });
  });
}

function capitalise(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
