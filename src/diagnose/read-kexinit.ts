/**
 * After a good identification, reads the server's first binary packet (its cleartext
 * KEXINIT) from the socket attemptBackend handed over, then closes the connection.
 * The same wait the proxy does before a splice (src/backend/kexinit-wait.ts).
 */
import type { AttemptSuccess } from '../backend/attempt.js';
import type { AttemptFailureCode } from '../errors.js';
import { awaitServerKexInit } from '../backend/kexinit-wait.js';
import type { KexInit } from '../protocol/kexinit.js';

export type KexInitReadResult =
  | { readonly ok: true; readonly kexinit: KexInit; readonly kexinitMs: number }
  | { readonly ok: false; readonly code: AttemptFailureCode; readonly message: string };

export function readKexInit(attempt: AttemptSuccess, target: { readonly host: string; readonly port: number }, timeoutMs: number): Promise<KexInitReadResult> {
  return new Promise((resolve) => {
    awaitServerKexInit(attempt, { ...target, timeoutMs }, (outcome) => {
      if (outcome.ok) {
        outcome.socket.destroy();
        resolve({ ok: true, kexinit: outcome.kexinit, kexinitMs: outcome.kexinitMs });
        return;
      }
      resolve({ ok: false, code: outcome.code, message: outcome.message });
    });
  });
}
