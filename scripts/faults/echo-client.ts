/** A raw client through the proxy to an echo backend that checks every byte came back (sha256). */
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';

export interface EchoOutcome {
  readonly intact: boolean;
  /** The connection ended before all bytes came back. */
  readonly cut: boolean;
}

const IDENT = 'SSH-2.0-FaultClient_1.0\r\n';

/** Sends `bytes` random bytes in `chunks` steps (pausing `gapMs` between) and expects them echoed after the banner. */
export function echoSession(port: number, options: { bytes: number; chunks: number; gapMs: number; banner: string; timeoutMs: number }): Promise<EchoOutcome> {
  const payload = randomBytes(options.bytes);
  const expected = createHash('sha256').update(IDENT).update(payload).digest('hex');
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const received: Buffer[] = [];
    let length = 0;
    let settled = false;
    const total = options.banner.length + IDENT.length + options.bytes;
    const finish = (outcome: EchoOutcome): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(outcome);
    };
    const timer = setTimeout(() => finish({ intact: false, cut: true }), options.timeoutMs);
    socket.on('error', () => finish({ intact: false, cut: true }));
    socket.on('close', () => finish({ intact: false, cut: true }));
    socket.on('data', (chunk: Buffer) => {
      received.push(chunk);
      length += chunk.length;
      if (length < total) return;
      const all = Buffer.concat(received);
      const echoed = all.subarray(options.banner.length);
      const intact = all.subarray(0, options.banner.length).toString('latin1') === options.banner && createHash('sha256').update(echoed).digest('hex') === expected;
      finish({ intact, cut: false });
    });
    socket.write(IDENT);
    const step = Math.ceil(options.bytes / options.chunks);
    let offset = 0;
    const next = (): void => {
      if (settled || offset >= options.bytes) return;
      socket.write(payload.subarray(offset, offset + step));
      offset += step;
      setTimeout(next, options.gapMs);
    };
    next();
  });
}
