// source: transparent in a sidecar pod of our own (test/fixtures/sidecar-namespace.ts):
// clients on this side, the proxy and sshd 9.2 and 10.0 in the namespace. sshd must log
// each client's own address, authorized_keys from="…" must tell clients apart, and a
// proxy that lacks a piece (the capability, the return route) must say which at start.
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runProcess } from '../fixtures/run-process.js';
import { runSsh } from '../fixtures/clients.js';
import { netnsUnavailable } from '../fixtures/netns.js';
import { startServeProcess, type ServeProcess } from '../fixtures/serve-process.js';
import { createSidecarNamespace, type SidecarNamespace } from '../fixtures/sidecar-namespace.js';
import { sshdAvailable, sshdVersions, startSshd, type SshdHandle, type SshdVersion } from '../fixtures/sshd.js';

const SKIP = netnsUnavailable() ?? (sshdAvailable() ? false : 'openssh-server is not installed');
const CLI = ['--import', 'tsx', path.resolve('src/cli.ts')];
const PROXY_PORT = 2222;
const SSHD_PORT = { 9: 2209, 10: 2210 } as const;
const ACCEPTED = /Accepted publickey for \S+ from (\S+) port (\d+)/g;

describe('source: transparent, proxy and sshd in one namespace (sidecar)', { skip: SKIP, timeout: 180_000 }, () => {
  let ns: SidecarNamespace;
  const sshds = new Map<SshdVersion, SshdHandle>();
  let proxy: ServeProcess | undefined;

  /** A pool per sshd version and address family: the client's family is the connection's. */
  const config = (): Record<string, unknown> => ({
    listeners: sshdVersions().flatMap((version) => [
      { name: `v4-${version}`, bind: `${ns.proxyAddress.v4}:${PROXY_PORT + version * 10}`, pool: `v4-${version}` },
      { name: `v6-${version}`, bind: `[${ns.proxyAddress.v6}]:${PROXY_PORT + version * 10}`, pool: `v6-${version}` },
    ]),
    pools: sshdVersions().flatMap((version) => [
      { name: `v4-${version}`, source: 'transparent', verify: 'kexinit', servers: [{ name: 'sshd', address: `${ns.sshdAddress.v4}:${SSHD_PORT[version]}` }], healthCheck: { interval: '1s' } },
      { name: `v6-${version}`, source: 'transparent', verify: 'kexinit', servers: [{ name: 'sshd', address: `[${ns.sshdAddress.v6}]:${SSHD_PORT[version]}` }], healthCheck: { interval: '1s' } },
    ]),
    admin: { bind: `${ns.proxyAddress.v4}:9100` },
    log: { level: 'info' },
  });

  /** `serve` in the namespace, expected to refuse to start: its stderr and exit code. */
  const refusedStart = async (wrap: readonly string[]): Promise<{ code: number | null; text: string }> => {
    const dir = path.join(sshds.get(9)?.dir ?? '/tmp', 'refused.json');
    await writeFile(dir, JSON.stringify({ penalties: 'off', ...config() }));
    const result = await runProcess(wrap[0] ?? '', [...wrap.slice(1), process.execPath, ...CLI, 'serve', '-c', dir], { timeoutMs: 60_000 });
    return { code: result.code, text: result.stdout + result.stderr };
  };

  before(async () => {
    ns = createSidecarNamespace();
    for (const version of sshdVersions()) {
      // Both families: one ListenAddress from the fixture, the other added.
      sshds.set(version, await startSshd({ version, wrap: ns.exec, listenAddress: ns.sshdAddress.v4, port: SSHD_PORT[version], extraConfig: [`ListenAddress [${ns.sshdAddress.v6}]:${SSHD_PORT[version]}`] }));
    }
  });
  after(async () => {
    await proxy?.kill();
    for (const sshd of sshds.values()) await sshd.stop();
    ns?.remove();
  });

  it('will not start without the return route, and says which command sets it up', async () => {
    const { code, text } = await refusedStart(ns.exec);
    assert.notEqual(code, 0);
    assert.match(text, new RegExp(`sshd's replies from ${ns.sshdAddress.v4.replace(/\./g, '\\.')}:\\d+ to client addresses would leave this host`));
    assert.match(text, /ssh-banner-proxy transparent setup --backend/);
  });

  it('will not start without CAP_NET_ADMIN or CAP_NET_RAW, and says so', async () => {
    const { code, text } = await refusedStart([...ns.exec, 'setpriv', '--bounding-set', '-net_admin,-net_raw', '--inh-caps', '-all']);
    assert.notEqual(code, 0);
    assert.match(text, /setsockopt\(IP_TRANSPARENT\): EPERM: the proxy needs CAP_NET_ADMIN or CAP_NET_RAW/);
  });

  it('transparent setup adds the rules once (a second run finds them), and the proxy starts', async () => {
    const setup = ['transparent', 'setup', '--backend', ns.sshdAddress.v4, '--backend', ns.sshdAddress.v6];
    const first = await runProcess(ns.exec[0] ?? '', [...ns.exec.slice(1), process.execPath, ...CLI, ...setup], { timeoutMs: 30_000 });
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /sidecar \(an address of this host\)/);
    assert.match(first.stdout, new RegExp(`run: ip -4 rule add from ${ns.sshdAddress.v4.replace(/\./g, '\\.')} lookup 100`));
    const second = await runProcess(ns.exec[0] ?? '', [...ns.exec.slice(1), process.execPath, ...CLI, ...setup], { timeoutMs: 30_000 });
    assert.equal(second.code, 0, second.stderr);
    assert.doesNotMatch(second.stdout, /run: ip -[46] rule add/, 'nothing added twice');
    assert.equal(ns.ip('-4', 'rule', 'show', 'from', ns.sshdAddress.v4).trim().split('\n').length, 1);
    proxy = await startServeProcess(config() as never, { wrap: ns.exec, startTimeoutMs: 60_000 });
  });

  for (const version of sshdVersions()) {
    for (const family of ['v4', 'v6'] as const) {
      it(`OpenSSH ${version === 9 ? '9.2' : '10.0'} over ${family === 'v4' ? 'IPv4' : 'IPv6'}: sshd logs the client's own address, and the proxy's line joins it`, async () => {
        const sshd = sshds.get(version) as SshdHandle;
        const running = proxy as ServeProcess;
        const client = ns.clients[family][0];
        const seen = [...(await sshd.readLog()).matchAll(ACCEPTED)].length;
        const result = await runSsh({ ...sshd, host: ns.proxyAddress[family], port: PROXY_PORT + version * 10, command: 'true', extraOptions: [`BindAddress=${client}`], timeoutMs: 30_000 });
        assert.equal(result.code, 0, result.stderr);
        const [, from = '', port = ''] = [...(await sshd.readLog()).matchAll(ACCEPTED)][seen] ?? [];
        assert.equal(from, client, 'sshd saw the client, not the proxy');
        const line = await running.waitForLog((entry) => entry.event === 'session' && entry.backendLocalPort === Number(port), 10_000);
        assert.equal(line.backendLocalAddress, client);
        assert.equal(line['client.ip'] ?? line.client, client);
      });
    }
  }

  it('authorized_keys from="<client>" admits that client and refuses another address with the same key', async () => {
    const sshd = sshds.get(9) as SshdHandle;
    const key = (await readFile(`${sshd.identityFile}.pub`, 'utf8')).trim();
    await writeFile(path.join(sshd.dir, 'authorized_keys'), `from="${ns.clients.v4[0]}" ${key}\n`);
    const target = { ...sshd, host: ns.proxyAddress.v4, port: PROXY_PORT + 90, command: 'true', timeoutMs: 30_000 };
    const allowed = await runSsh({ ...target, extraOptions: [`BindAddress=${ns.clients.v4[0]}`] });
    assert.equal(allowed.code, 0, allowed.stderr);
    const other = await runSsh({ ...target, extraOptions: [`BindAddress=${ns.clients.v4[1]}`, 'BatchMode=yes'] });
    assert.notEqual(other.code, 0);
    assert.match(other.stderr, /Permission denied/);
    assert.match(await sshd.readLog(), new RegExp(`from ${ns.clients.v4[1].replace(/\./g, '\\.')} port \\d+`));
  });

  it('transparent teardown removes the rules', async () => {
    await proxy?.kill();
    proxy = undefined;
    const result = await runProcess(ns.exec[0] ?? '', [...ns.exec.slice(1), process.execPath, ...CLI, 'transparent', 'teardown', '--backend', ns.sshdAddress.v4, '--backend', ns.sshdAddress.v6], { timeoutMs: 30_000 });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(ns.ip('-4', 'rule', 'show', 'from', ns.sshdAddress.v4).trim(), '');
    assert.equal(ns.ip('-6', 'rule', 'show', 'from', ns.sshdAddress.v6).trim(), '');
  });
});
