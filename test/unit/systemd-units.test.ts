/** The packaged systemd units pass `systemd-analyze verify` and keep their hardening. */
import assert from 'node:assert/strict';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { runProcess } from '../fixtures/run-process.js';

const UNITS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../systemd');

const SKIP = existsSync('/usr/bin/systemd-analyze') ? false : 'systemd-analyze is not installed (Debian package systemd)';

test('the service and socket units verify (with ExecStart pointed at a binary that exists here)', { skip: SKIP }, async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sbp-units-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await cp(UNITS, dir, { recursive: true });
  const service = path.join(dir, 'ssh-banner-proxy.service');
  const text = await readFile(service, 'utf8');
  assert.match(text, /^ExecStart=\/usr\/local\/bin\/ssh-banner-proxy serve --config \/etc\/ssh-banner-proxy\/config.yaml$/m);
  await writeFile(service, text.replace(/^ExecStart=\S+/m, `ExecStart=${process.execPath}`));
  const result = await runProcess('systemd-analyze', ['verify', '--man=no', service, path.join(dir, 'ssh-banner-proxy.socket')], { timeoutMs: 30_000, cwd: dir });
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stderr.trim(), '', 'no warnings');
});

test('the service is Type=notify, hardened, and the socket names the listener', async () => {
  const service = await readFile(path.join(UNITS, 'ssh-banner-proxy.service'), 'utf8');
  for (const line of ['Type=notify', 'NotifyAccess=main', 'DynamicUser=yes', 'ProtectSystem=strict', 'NoNewPrivileges=yes', 'CapabilityBoundingSet=CAP_NET_BIND_SERVICE', 'WatchdogSec=30s', 'KillMode=mixed', 'ExecReload=/bin/kill -HUP $MAINPID']) {
    assert.ok(service.split('\n').includes(line), line);
  }
  const socket = await readFile(path.join(UNITS, 'ssh-banner-proxy.socket'), 'utf8');
  assert.match(socket, /^FileDescriptorName=ssh$/m);
  // TimeoutStopSec must leave room for the default drain (30 s).
  assert.ok(Number(/^TimeoutStopSec=(\d+)s$/m.exec(service)?.[1]) > 30);
});
