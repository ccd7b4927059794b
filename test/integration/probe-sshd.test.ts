/**
 * probe against a real OpenSSH server: ok with the KEXINIT report, the host key
 * fingerprint matching `ssh-keygen -lf`, and MaxStartups throttling seen with --count.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { probeMany } from '../../src/diagnose/probe-many.js';
import { probe } from '../../src/diagnose/probe.js';
import { SSH_KEYGEN } from '../fixtures/sshd/ssh-keys.js';
import { sshdAvailable, startSshd } from '../fixtures/sshd/sshd.js';

const skip = sshdAvailable() ? false : 'OpenSSH server not installed';

test('probe of real sshd: ok, identification, KEXINIT algorithms, host key like ssh-keygen -lf', { skip }, async (t) => {
  const sshd = await startSshd();
  t.after(() => sshd.stop());
  const result = await probe({ host: sshd.host, port: sshd.port, connectTimeoutMs: 2000, timeoutMs: 5000, slowMs: 2000, hostKey: true });
  assert.equal(result.verdict, 'ok');
  assert.equal(result.identification, sshd.banner);
  assert.match(result.softwareVersion ?? '', /^OpenSSH_/);
  assert.deepEqual(result.preLines, []);
  assert.ok(result.algorithms !== null && !('error' in result.algorithms), JSON.stringify(result.algorithms));
  const { offered, weak } = result.algorithms;
  assert.ok(offered.kex.includes('curve25519-sha256'), offered.kex.join());
  assert.deepEqual(offered.hostKey, ['ssh-ed25519']); // the fixture has one ed25519 host key
  assert.ok(offered.ciphers.includes('chacha20-poly1305@openssh.com'));
  assert.ok(offered.macs.length > 0);
  assert.ok(!weak.some((entry) => entry.category === 'hostKey' || entry.category === 'kex'), JSON.stringify(weak));

  const publicKeyPath = path.join(sshd.dir, 'probe-host-key.pub');
  await writeFile(publicKeyPath, `${sshd.hostPublicKey}\n`);
  const { stdout } = await promisify(execFile)(SSH_KEYGEN, ['-lf', publicKeyPath]);
  // ssh-keygen: "256 SHA256:xxxx fixture-host (ED25519)"; ours has no comment (the server sends none).
  const [bits, fingerprint] = stdout.trim().split(' ');
  assert.ok(result.hostKey !== null && !('error' in result.hostKey), JSON.stringify(result.hostKey));
  assert.equal(result.hostKey.fingerprint, fingerprint);
  assert.equal(result.hostKey.fingerprint, sshd.hostKeyFingerprint);
  assert.equal(result.hostKey.summary, `${bits} ${fingerprint} (ED25519)`);
});

test('probe --count against sshd with MaxStartups 1: the distribution shows throttled and ok', { skip }, async (t) => {
  const sshd = await startSshd({ maxStartups: '1' });
  t.after(() => sshd.stop());
  const distribution = await probeMany({ host: sshd.host, port: sshd.port, connectTimeoutMs: 2000, timeoutMs: 5000, slowMs: 2000 }, 12, 6);
  assert.equal(distribution.results.length, 12);
  const throttled = distribution.verdicts.throttled ?? 0;
  const ok = distribution.verdicts.ok ?? 0;
  assert.equal(throttled + ok + (distribution.verdicts['slow-banner'] ?? 0), 12, JSON.stringify(distribution.verdicts));
  assert.ok(throttled >= 1, `expected some throttled: ${JSON.stringify(distribution.verdicts)}`);
  assert.ok(ok >= 1, `expected some ok: ${JSON.stringify(distribution.verdicts)}`);
  const example = distribution.examples.find((result) => result.verdict === 'throttled');
  assert.equal(example?.notice, 'Exceeded MaxStartups');
  assert.match(example?.hint ?? '', /MaxStartups/);
  await sshd.waitForLog(/MaxStartups|drop connection/i, 5000);
});
