import { UnixDatagramSender } from './unix-datagram.js';

/** Where a notifier reports what it could not send (the proxy's logger). */
export type NotifyWarn = (message: string, error: unknown) => void;

/**
 * sd_notify(3) for `Type=notify` units: READY=1 once listening, RELOADING=1 (with
 * MONOTONIC_USEC, as `Type=notify-reload` wants) around a reload, STOPPING=1 at
 * shutdown, STATUS= lines, and WATCHDOG=1 at half of WATCHDOG_USEC. Without
 * NOTIFY_SOCKET every call does nothing and koffi is never loaded.
 */
export class SystemdNotifier {
  private sender: UnixDatagramSender | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  private closed = false;

  private constructor(
    private readonly opening: Promise<UnixDatagramSender> | undefined,
    private readonly watchdogUsec: number | undefined,
    private readonly warn: NotifyWarn,
  ) {
    void opening?.then(
      (sender) => {
        if (this.closed) sender.close();
        else this.sender = sender;
      },
      (error: unknown) => warn(`systemd notification is off: ${messageOf(error)}`, error),
    );
  }

  /** From NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID (the watchdog only when it is meant for this process). */
  static fromEnv(env: NodeJS.ProcessEnv, pid: number, warn: NotifyWarn): SystemdNotifier {
    const path = env.NOTIFY_SOCKET;
    const usec = Number(env.WATCHDOG_USEC);
    const watchdogPid = env.WATCHDOG_PID === undefined ? pid : Number(env.WATCHDOG_PID);
    const watchdogUsec = Number.isInteger(usec) && usec > 0 && watchdogPid === pid ? usec : undefined;
    return new SystemdNotifier(path ? UnixDatagramSender.open(path) : undefined, watchdogUsec, warn);
  }

  get enabled(): boolean {
    return this.opening !== undefined;
  }

  /** The service is up; starts the watchdog pings when systemd asked for them. */
  async ready(status: string): Promise<void> {
    await this.send(`READY=1\nSTATUS=${oneLine(status)}`);
    this.startWatchdog();
  }

  async reloading(): Promise<void> {
    await this.send(`RELOADING=1\nMONOTONIC_USEC=${monotonicUsec()}`);
  }

  async stopping(status: string): Promise<void> {
    this.stopWatchdog();
    await this.send(`STOPPING=1\nSTATUS=${oneLine(status)}`);
  }

  async status(status: string): Promise<void> {
    await this.send(`STATUS=${oneLine(status)}`);
  }

  close(): void {
    this.closed = true;
    this.stopWatchdog();
    this.sender?.close();
    this.sender = undefined;
  }

  private startWatchdog(): void {
    if (this.watchdogUsec === undefined || this.watchdog !== undefined || this.closed) return;
    // Half the interval, as sd_watchdog_enabled(3) advises; unref'd so it never keeps the process alive.
    const everyMs = Math.max(1, Math.floor(this.watchdogUsec / 2000));
    this.watchdog = setInterval(() => void this.send('WATCHDOG=1'), everyMs);
    this.watchdog.unref();
  }

  private stopWatchdog(): void {
    if (this.watchdog !== undefined) clearInterval(this.watchdog);
    this.watchdog = undefined;
  }

  private async send(message: string): Promise<void> {
    if (this.opening === undefined || this.closed) return;
    try {
      await this.opening;
      this.sender?.send(message);
    } catch (error) {
      // Opening failed: already reported once. A send failing is reported each time: systemd must hear READY.
      if (this.sender !== undefined) this.warn(`systemd notification failed: ${messageOf(error)}`, error);
    }
  }
}

/** CLOCK_MONOTONIC in microseconds: libuv's hrtime reads that clock on Linux. */
function monotonicUsec(): string {
  return String(process.hrtime.bigint() / 1000n);
}

function oneLine(text: string): string {
  return text.replaceAll('\n', ' ');
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
