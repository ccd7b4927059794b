import type { KeepaliveConfig } from '../config/schema.js';
import { ClientPatterns } from './client-pattern.js';

/**
 * What a keepalive line says. RFC 4253 section 4.2: a server may send other lines
 * before its identification; they must not start with `SSH-` and end in CR LF.
 * Kept short: Go's x/crypto accepts at most 255 bytes of such lines in total
 * (which is why keepalive is only for clients that match `keepalive.clients`).
 */
export const KEEPALIVE_LINE = Buffer.from('ssh-banner-proxy: waiting for backend\r\n', 'latin1');

export type KeepaliveDecision = 'pending' | 'on' | 'off';

/**
 * Keeps a client that restarts its banner timer on every line (paramiko: the first
 * line within `banner_timeout`, then 2 s per further line, at most 100 lines) alive
 * while the session still waits for a backend's identification.
 *
 * From `after` (counted from `start()`), every `every`, at most `maxLines` lines,
 * only when the client's own identification matches `clients`. A client that has not
 * identified itself yet is asked again at the next tick. The lines are not part of
 * the key exchange hash, so sending them does not commit the session to a backend.
 */
export class ClientKeepalive {
  private readonly config: KeepaliveConfig;
  private readonly patterns: ClientPatterns;
  private readonly identification: () => string | undefined;
  private readonly send: (line: Buffer, count: number) => void;
  private timer: NodeJS.Timeout | undefined;
  private sent = 0;
  private state: KeepaliveDecision = 'pending';
  private stopped = false;

  /**
   * `identification`: the client's identification line, once it has sent one.
   * `send`: writes the line to the client (`count` is 1 for the first line).
   */
  constructor(config: KeepaliveConfig, identification: () => string | undefined, send: (line: Buffer, count: number) => void) {
    this.config = config;
    this.patterns = new ClientPatterns(config.clients);
    this.identification = identification;
    this.send = send;
  }

  get linesSent(): number {
    return this.sent;
  }

  get decision(): KeepaliveDecision {
    return this.state;
  }

  start(): void {
    if (this.stopped || this.timer) return;
    this.arm(this.config.after);
  }

  /** No more lines (the session spliced or failed). Idempotent; returns the lines sent. */
  stop(): number {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    return this.sent;
  }

  private arm(delayMs: number): void {
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.tick();
    }, delayMs);
  }

  private tick(): void {
    if (this.stopped) return;
    if (this.state === 'pending') {
      const identification = this.identification();
      if (identification === undefined) {
        this.arm(this.config.every);
        return;
      }
      this.state = this.patterns.match(identification) === undefined ? 'off' : 'on';
      if (this.state === 'off') return;
    }
    this.sent += 1;
    this.send(KEEPALIVE_LINE, this.sent);
    if (this.sent < this.config.maxLines && !this.stopped) this.arm(this.config.every);
  }
}
