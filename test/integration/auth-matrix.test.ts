/**
 * The authentication matrix: real clients (OpenSSH ssh, paramiko, asyncssh, dbclient)
 * log in through the proxy to real sshd 9.2 and 10.0, by one key, several keys (wrong
 * ones first), password and keyboard-interactive, succeeding and failing. For each, the
 * proxy's view of the outcome (ok / authfail) must match what really happened, and a
 * success must release the handshake slot at authentication. A successful login is
 * never charged a penalty. docs/penalties.md explains the rule and its limits.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { authClientSkip, login, passwordUserSkip, PASSWORD_USER, type AuthClient, type AuthMethod } from '../fixtures/clients/auth-matrix.js';
import { startProxy, type TestProxy } from '../fixtures/proxy/proxy.js';
import { generateEd25519 } from '../fixtures/sshd/ssh-keys.js';
import { sshdAvailable, sshdVersions, startSshd, type SshdHandle } from '../fixtures/sshd/sshd.js';

interface Case {
  readonly client: AuthClient;
  readonly method: AuthMethod;
  /** For keys: which keys, in the order offered. */
  readonly keys?: readonly ('good' | 'wrong1' | 'wrong2')[];
  readonly password?: 'right' | 'wrong';
  readonly succeeds: boolean;
}

const CLIENTS: readonly AuthClient[] = ['ssh', 'paramiko', 'asyncssh', 'dbclient'];
/** Charged, but never refused: the matrix fails on purpose from one address, over and over. */
const MATRIX_PENALTIES = { min: '1h', max: '1h' };

function casesFor(client: AuthClient): Case[] {
  const cases: Case[] = [
    { client, method: 'keys', keys: ['good'], succeeds: true },
    { client, method: 'keys', keys: ['wrong1'], succeeds: false },
    { client, method: 'keys', keys: ['wrong1', 'wrong2', 'good'], succeeds: true },
    { client, method: 'password', password: 'right', succeeds: true },
    { client, method: 'password', password: 'wrong', succeeds: false },
  ];
  // dbclient answers keyboard-interactive with its password (the cases above cover it).
  if (client !== 'dbclient') cases.push({ client, method: 'kbdint', password: 'right', succeeds: true }, { client, method: 'kbdint', password: 'wrong', succeeds: false });
  return cases;
}

function describeCase(entry: Case): string {
  const how = entry.method === 'keys' ? `key${(entry.keys?.length ?? 0) > 1 ? 's' : ''} ${entry.keys?.join(', ')}` : `${entry.method} (${entry.password})`;
  return `${entry.client}, ${how}: ${entry.succeeds ? 'ok' : 'authfail'}`;
}

for (const version of sshdVersions()) {
  describe(`authentication outcome seen by the proxy, OpenSSH ${version}`, { skip: sshdAvailable(version) ? false : `OpenSSH ${version} is not available` }, () => {
    let dir: string;
    let keySshd: SshdHandle;
    let passwordSshd: SshdHandle | undefined;
    let keyProxy: TestProxy;
    let passwordProxy: TestProxy | undefined;
    const keys: Record<string, string> = {};

    before(async () => {
      dir = await mkdtemp(path.join(os.tmpdir(), 'sbp-auth-matrix-'));
      keys.wrong1 = (await generateEd25519(path.join(dir, 'wrong1'), 'wrong 1')).privateKeyPath;
      keys.wrong2 = (await generateEd25519(path.join(dir, 'wrong2'), 'wrong 2')).privateKeyPath;
      keySshd = await startSshd({ version });
      keys.good = keySshd.identityFile;
      // grace 5s: the slot must go at USERAUTH_SUCCESS; the grace is the fallback, and a password
      // login on a loaded machine (PAM, the hash) can outlast the default 1 s.
      keyProxy = await startProxy({ servers: [{ name: 'sshd', host: keySshd.host, port: keySshd.port }], pool: { verify: 'kexinit', handshake: { grace: '5s' } }, config: { penalties: MATRIX_PENALTIES } });
      if (passwordUserSkip() === false) {
        // PAM checks the password; both methods on, keys off, so each case is one method.
        passwordSshd = await startSshd({ version, extraConfig: ['PubkeyAuthentication no', 'PasswordAuthentication yes', 'KbdInteractiveAuthentication yes', 'UsePAM yes'] });
        passwordProxy = await startProxy({ servers: [{ name: 'sshd', host: passwordSshd.host, port: passwordSshd.port }], pool: { verify: 'kexinit', handshake: { grace: '5s' } }, config: { penalties: MATRIX_PENALTIES } });
      }
    });
    after(async () => {
      await keyProxy?.stop();
      await passwordProxy?.stop();
      await keySshd?.stop();
      await passwordSshd?.stop();
      await rm(dir, { recursive: true, force: true });
    });

    for (const client of CLIENTS) {
      for (const entry of casesFor(client)) {
        const skip = authClientSkip(client) || (entry.method === 'keys' ? false : passwordUserSkip());
        it(describeCase(entry), { skip }, async () => {
          const byKey = entry.method === 'keys';
          const proxy = byKey ? keyProxy : passwordProxy;
          assert.ok(proxy);
          const before = proxy.sessions().length;
          const secrets = byKey ? (entry.keys ?? []).map((name) => keys[name] ?? '') : [entry.password === 'right' ? PASSWORD_USER.password : 'not-the-password'];
          const user = byKey ? keySshd.user : PASSWORD_USER.user;
          const result = await login(client, { host: proxy.host, port: proxy.port, user }, entry.method, secrets, dir);
          assert.equal(result.ok, entry.succeeds, `the login itself: ${result.detail}`);
          const summary = (await proxy.waitForSessions(before + 1, 15_000))[before];
          assert.ok(summary);
          assert.equal(summary.auth, entry.succeeds ? 'ok' : 'authfail', `proxy's outcome (slot released: ${String(summary.slotRelease)})`);
          if (entry.succeeds) {
            assert.equal(summary.slotRelease, 'auth', 'the slot was released at USERAUTH_SUCCESS');
            assert.equal(summary.penaltyCharged, undefined, 'a successful login is never charged');
          } else {
            assert.equal(summary.penaltyCharged, true);
          }
        });
      }
    }
  });
}
