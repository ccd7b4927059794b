/** A raw client through the proxy to an echo backend that checks every byte came back (sha256). */
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';

export interface EchoOutcome {
  readonly intact: boolean;
  /** The connection ended before all bytes came back. */
  readonly cut: boolean;
}

export interface EchoOptions {
  readonly bytes: number;
  readonly chunks: number;
  readonly gapMs: number;
  readonly banner: string;
  readonly timeoutMs: number;
  /** The bytes to send (its first `bytes`); default: fresh random bytes. Shared by many sessions, it costs memory once. */
  readonly payload?: Buffer;
}

const IDENT = 'SSH-2.0-FaultClient_1.0\r\n';

/**
 * Sends `bytes` bytes in `chunks` steps (pausing `gapMs` between) and expects them echoed
 * after the banner. What comes back is hashed as it arrives, so a 20 MB stream is not held.
 */
export function echoSession(port: number, options: EchoOptions): Promise<EchoOutcome> {
  const payload = options.payload?.subarray(0, options.bytes) ?? randomBytes(options.bytes);
  const expected = createHash('sha256').update(IDENT).update(payload).digest('hex');
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const echoed = createHash('sha256');
    let banner = '';
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
      const bannerPart = Math.max(0, Math.min(chunk.length, options.banner.length - banner.length));
      banner += chunk.subarray(0, bannerPart).toString('latin1');
      echoed.update(chunk.subarray(bannerPart));
      length += chunk.length;
      if (length < total) return;
      finish({ intact: length === total && banner === options.banner && echoed.digest('hex') === expected, cut: false });
    });
    socket.write(IDENT);
    const step = Math.ceil(options.bytes / options.chunks);
    let offset = 0;
    const next = (): void => {
      if (settled || offset >= options.bytes) return;
      const more = socket.write(payload.subarray(offset, offset + step));
      offset += step;
      // Bulk streams wait for the socket to drain rather than queue 20 MB in memory.
      if (more) setTimeout(next, options.gapMs);
      else socket.once('drain', () => setTimeout(next, options.gapMs));
    };
    next();
  });
}
