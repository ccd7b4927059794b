import { execFile } from 'node:child_process';
import { networkInterfaces } from 'node:os';

/** A command's outcome: its stdout, or why it failed (`missing`: not installed). */
export type CommandResult = { readonly ok: true; readonly stdout: string } | { readonly ok: false; readonly missing: boolean; readonly stderr: string; readonly message: string };

/** Runs a system tool (`ip`, `iptables`) without a shell, bounded in time. */
export function runCommand(argv: readonly string[], timeoutMs = 10_000): Promise<CommandResult> {
  const [file = '', ...args] = argv;
  return new Promise((resolve) => {
    execFile(file, args, { timeout: timeoutMs }, (error, stdout, stderr) => {
      if (error === null) resolve({ ok: true, stdout });
      else resolve({ ok: false, missing: (error as NodeJS.ErrnoException).code === 'ENOENT', stderr: stderr.trim(), message: error.message });
    });
  });
}

/** Whether an address is one of this host's (or this namespace's): a sidecar's sshd. */
export function isLocalAddress(address: string): boolean {
  return Object.values(networkInterfaces()).some((entries) => entries?.some((entry) => entry.address === address) === true);
}
