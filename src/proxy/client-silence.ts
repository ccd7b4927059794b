import type { Socket } from 'node:net';

/**
 * A spliced client that has not sent its identification yet (it waited for the banner,
 * or it is an idle socket holding a handshake slot). Its first bytes end the watch
 * (`spoke`); none within `limitMs` ends the session (`silent`), as sshd's own
 * LoginGraceTime would, but long before it: a real client answers a banner at once.
 */
export class ClientSilence {
  private readonly socket: Socket;
  private readonly timer: NodeJS.Timeout | undefined;
  private readonly onSpoke: () => void;
  private stopped = false;

  constructor(socket: Socket, limitMs: number, outcome: { readonly spoke: () => void; readonly silent: () => void }) {
    this.socket = socket;
    this.onSpoke = outcome.spoke;
    socket.once('data', this.onData);
    this.timer = limitMs > 0 ? setTimeout(() => {
      this.stop();
      outcome.silent();
    }, limitMs) : undefined;
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.timer);
    this.socket.off('data', this.onData);
  }

  private readonly onData = (): void => {
    this.stop();
    this.onSpoke();
  };
}
