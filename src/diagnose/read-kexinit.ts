/**
 * After a good identification, reads the server's first binary packet (its cleartext
 * KEXINIT) from the socket attemptBackend handed over, then closes the connection.
 */
import type { AttemptSuccess } from '../backend/attempt.js';
import { parseKexInit, type KexInit } from '../protocol/kexinit.js';
import { SshPacketReader } from '../protocol/ssh-packets.js';

export type KexInitReadResult =
  | { readonly ok: true; readonly kexinit: KexInit; readonly kexinitMs: number }
  | { readonly ok: false; readonly code: 'KEXINIT_TIMEOUT' | 'KEXINIT_INVALID' | 'KEXINIT_CLOSED'; readonly message: string };

export function readKexInit(attempt: AttemptSuccess, timeoutMs: number): Promise<KexInitReadResult> {
  const { socket } = attempt;
  const startedAt = performance.now();
  const reader = new SshPacketReader();
  return new Promise((resolve) => {
    let done = false;
    const finish = (result: KexInitReadResult): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      socket.destroy();
      resolve(result);
    };
    const onBytes = (bytes: Buffer): void => {
      const read = reader.push(bytes);
      if (read.state === 'error') {
        finish({ ok: false, code: 'KEXINIT_INVALID', message: read.message });
        return;
      }
      const first = read.payloads[0];
      if (first === undefined) return;
      const parsed = parseKexInit(first);
      if (parsed.ok) finish({ ok: true, kexinit: parsed.kexinit, kexinitMs: performance.now() - startedAt });
      else finish({ ok: false, code: 'KEXINIT_INVALID', message: parsed.message });
    };
    const onData = (chunk: Buffer): void => onBytes(chunk);
    const onEnd = (): void => finish({ ok: false, code: 'KEXINIT_CLOSED', message: 'connection closed before the server sent its KEXINIT' });
    const onError = (): void => onEnd();
    const timer = setTimeout(
      () => finish({ ok: false, code: 'KEXINIT_TIMEOUT', message: `no KEXINIT within ${timeoutMs} ms after the identification` }),
      timeoutMs,
    );
    socket.on('error', onError);
    attempt.releaseErrorGuard();
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('close', onEnd);
    const after = attempt.received.subarray(attempt.identEndOffset);
    if (after.length > 0) onBytes(after);
    if (!done) socket.resume();
  });
}
