/**
 * Continues a connection attemptBackend opened (identification already received) with the
 * npm ssh2 client: key exchange, and optionally public-key auth, a command and a hold.
 * The received bytes are put back on the socket, so ssh2 reads the server's identification
 * itself and every phase's time is measured on the same connection.
 */
import ssh2, { type Client, type ClientChannel, type NegotiatedAlgorithms } from 'ssh2';
import type { AttemptSuccess } from '../backend/attempt.js';

export type Ssh2FailureCode = 'KEX_FAILED' | 'AUTH_FAILED' | 'COMMAND_FAILED' | 'HANDSHAKE_TIMEOUT' | 'SSH_CLOSED';

export interface Ssh2StepOptions {
  /** 'kex': stop once keys are exchanged; 'auth': also authenticate (and run the command, hold). */
  readonly until: 'kex' | 'auth';
  /** For everything after the identification: kex, auth, command (not the hold). */
  readonly timeoutMs: number;
  readonly username?: string;
  readonly privateKey?: Buffer;
  readonly command?: string;
  /** Keep the authenticated session open this long before closing. */
  readonly holdMs?: number;
}

export type Ssh2StepResult =
  | {
      readonly ok: true;
      /** From hand-over (identification received) to keys exchanged. */
      readonly handshakeMs: number;
      /** From hand-over to authenticated ('auth' only). */
      readonly authMs: number | undefined;
      readonly commandExitCode: number | undefined;
      readonly hostKey: Buffer | undefined;
      readonly negotiated: NegotiatedAlgorithms | undefined;
    }
  | {
      readonly ok: false;
      readonly code: Ssh2FailureCode;
      readonly message: string;
      readonly handshakeMs: number | undefined;
      readonly hostKey: Buffer | undefined;
    };

const CLOSE_GRACE_MS = 2000;

export function continueWithSsh2(attempt: AttemptSuccess, options: Ssh2StepOptions): Promise<Ssh2StepResult> {
  const { socket } = attempt;
  const startedAt = performance.now();
  const client: Client = new ssh2.Client();
  let hostKey: Buffer | undefined;
  let negotiated: NegotiatedAlgorithms | undefined;
  let handshakeMs: number | undefined;
  let authMs: number | undefined;
  let commandExitCode: number | undefined;
  let phase: 'kex' | 'auth' | 'command' | 'hold' | 'closing' = 'kex';
  let result: Ssh2StepResult | undefined;
  let holdTimer: NodeJS.Timeout | undefined;
  let closeTimer: NodeJS.Timeout | undefined;

  return new Promise((resolve) => {
    let closed = false;
    const settle = (): void => {
      if (result === undefined || !closed) return;
      clearTimeout(timer);
      clearTimeout(holdTimer);
      clearTimeout(closeTimer);
      resolve(result);
    };
    const succeed = (): void => {
      result ??= { ok: true, handshakeMs: handshakeMs ?? 0, authMs, commandExitCode, hostKey, negotiated };
      close();
    };
    const fail = (code: Ssh2FailureCode, message: string): void => {
      result ??= { ok: false, code, message, handshakeMs, hostKey };
      close();
    };
    const close = (): void => {
      if (phase === 'closing') return;
      phase = 'closing';
      clearTimeout(timer);
      client.end();
      closeTimer = setTimeout(() => {
        socket.destroy();
        closed = true;
        settle();
      }, CLOSE_GRACE_MS);
      settle();
    };
    const timer = setTimeout(() => {
      fail('HANDSHAKE_TIMEOUT', `SSH ${phase === 'kex' ? 'key exchange' : phase} not finished within ${options.timeoutMs} ms`);
    }, options.timeoutMs);

    client.on('error', (error: Error & { level?: string }) => {
      if (phase === 'kex') fail('KEX_FAILED', `key exchange failed: ${error.message}`);
      else if (phase === 'auth') fail(error.level === 'client-authentication' ? 'AUTH_FAILED' : 'SSH_CLOSED', `authentication failed: ${error.message}`);
      else fail(phase === 'command' ? 'COMMAND_FAILED' : 'SSH_CLOSED', error.message);
    });
    client.on('close', () => {
      closed = true;
      if (result === undefined) {
        const what = phase === 'kex' ? 'key exchange' : phase;
        fail(phase === 'command' ? 'COMMAND_FAILED' : 'SSH_CLOSED', `connection closed during ${what}`);
      }
      settle();
    });
    client.on('handshake', (algorithms: NegotiatedAlgorithms) => {
      if (handshakeMs !== undefined) return; // a later re-key
      handshakeMs = performance.now() - startedAt;
      negotiated = algorithms;
      if (options.until === 'kex') succeed();
      else phase = 'auth';
    });
    client.on('ready', () => {
      authMs = performance.now() - startedAt;
      if (options.command === undefined) {
        hold();
        return;
      }
      phase = 'command';
      runCommand(client, options.command, (exitCode, error) => {
        if (error !== undefined) {
          fail('COMMAND_FAILED', error);
          return;
        }
        commandExitCode = exitCode;
        if (exitCode !== 0) fail('COMMAND_FAILED', `command exited with ${exitCode ?? 'a signal'}`);
        else hold();
      });
    });
    const hold = (): void => {
      clearTimeout(timer);
      const holdMs = options.holdMs ?? 0;
      if (holdMs <= 0) {
        succeed();
        return;
      }
      phase = 'hold';
      holdTimer = setTimeout(succeed, holdMs);
    };

    socket.unshift(attempt.received);
    client.connect({
      sock: socket,
      username: options.username ?? 'probe',
      ...(options.privateKey === undefined ? {} : { privateKey: options.privateKey }),
      readyTimeout: options.timeoutMs + 1000,
      hostVerifier: (key: Buffer) => {
        hostKey = Buffer.from(key);
        return true;
      },
      ...(options.until === 'kex' ? { authHandler: () => false } : {}),
    });
    attempt.releaseErrorGuard();
  });
}

function runCommand(client: Client, command: string, done: (exitCode: number | undefined, error?: string) => void): void {
  client.exec(command, (error: Error | undefined, channel: ClientChannel) => {
    if (error !== undefined) {
      done(undefined, `exec failed: ${error.message}`);
      return;
    }
    let exitCode: number | undefined;
    channel.on('exit', (code: number | null) => {
      exitCode = code ?? undefined;
    });
    channel.on('data', () => undefined);
    channel.stderr.on('data', () => undefined);
    channel.on('close', () => done(exitCode));
  });
}
