// source: transparent in both topologies, in network namespaces of our own: a sidecar
// (proxy and sshd in one namespace, test/fixtures/net/sidecar-namespace.ts) and a bastion (the
// proxy's namespace in front of sshd's, test/fixtures/net/bastion-namespaces.ts). Clients are on
// this side. sshd 9.2 and 10.0 must log each client's own address over IPv4 and IPv6,
// authorized_keys from="…" must tell clients apart, a proxy that lacks a piece (the
// capability, the return route) must say which at start, and the routing command must be
// idempotent and undo itself.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createBastionNamespaces } from '../fixtures/net/bastion-namespaces.js';
import { runSsh } from '../fixtures/clients/clients.js';
import type { NamespaceTopology } from '../fixtures/net/namespace-topology.js';
import { netnsUnavailable } from '../fixtures/net/netns.js';
import { runProcess, type RunResult } from '../fixtures/run-process.js';
import { startServeProcess, type ServeProcess } from '../fixtures/proxy/serve-process.js';
import { createSidecarNamespace } from '../fixtures/net/sidecar-namespace.js';
import { sshdAvailable, sshdVersions, startSshd, type SshdHandle, type SshdVersion } from '../fixtures/sshd/sshd.js';

const SKIP = netnsUnavailable() ?? (sshdAvailable() ? false : 'openssh-server is not installed');
const CLI = ['--import', 'tsx', path.resolve('src/cli.ts')];
const PROXY_PORT = 2222;
const SSHD_PORT = { 9: 2209, 10: 2210 } as const;
const ACCEPTED = /Accepted publickey for \S+ from (\S+) port (\d+)/g;
const escaped = (text: string): string => text.replace(/[.[\]]/g, '\\$&');

const TOPOLOGIES = [
  { name: 'sidecar', create: createSidecarNamespace, missingRoute: "sshd's replies from .* to client addresses would leave this host", added: /run: ip -4 rule add from \S+ lookup 100/ },
  { name: 'bastion', create: createBastionNamespaces, missingRoute: 'is on another host, and no fwmark rule delivers its marked replies locally', added: /run: iptables -t mangle -A PREROUTING -p tcp -s \S+ --sport 2209 -j MARK --set-mark 0x1/ },
] as const;

for (const topology of TOPOLOGIES) {
  const skip = SKIP || (topology.name === 'bastion' && !existsSync('/usr/sbin/iptables') ? 'iptables is not installed (the bastion marks replies)' : false);
  describe(`source: transparent, ${topology.name}`, { skip, timeout: 180_000 }, () => {
    let net: NamespaceTopology;
    const sshds = new Map<SshdVersion, SshdHandle>();
    let proxy: ServeProcess | undefined;

    /** A pool per sshd version and address family: the client's family is the connection's. */
    const config = (): Record<string, unknown> => ({
      listeners: sshdVersions().flatMap((version) => [
        { name: `v4-${version}`, bind: `${net.proxyAddress.v4}:${PROXY_PORT + version * 10}`, pool: `v4-${version}` },
        { name: `v6-${version}`, bind: `[${net.proxyAddress.v6}]:${PROXY_PORT + version * 10}`, pool: `v6-${version}` },
      ]),
      pools: sshdVersions().flatMap((version) => [
        { name: `v4-${version}`, source: 'transparent', verify: 'kexinit', servers: [{ name: 'sshd', address: `${net.sshdAddress.v4}:${SSHD_PORT[version]}` }], healthCheck: { interval: '1s' } },
        { name: `v6-${version}`, source: 'transparent', verify: 'kexinit', servers: [{ name: 'sshd', address: `[${net.sshdAddress.v6}]:${SSHD_PORT[version]}` }], healthCheck: { interval: '1s' } },
      ]),
      log: { level: 'info' },
    });

    /** The CLI in the proxy's namespace, with an optional extra prefix inside it. */
    const cli = (args: readonly string[], inside: readonly string[] = []): Promise<RunResult> =>
      runProcess(net.proxyExec[0] ?? '', [...net.proxyExec.slice(1), ...inside, process.execPath, ...CLI, ...args], { timeoutMs: 60_000 });

    /** `serve` expected to refuse to start: what it said. */
    const refusedStart = async (inside: readonly string[] = []): Promise<RunResult> => {
      const file = path.join(sshds.get(9)?.dir ?? '/tmp', 'refused.json');
      await writeFile(file, JSON.stringify({ penalties: 'off', ...config() }));
      return cli(['serve', '-c', file], inside);
    };

    const routing = (action: 'setup' | 'teardown'): Promise<RunResult> =>
      cli(['transparent', action, '--backend', net.sshdAddress.v4, '--backend', net.sshdAddress.v6, '--port', String(SSHD_PORT[9]), '--port', String(SSHD_PORT[10])]);

    before(async () => {
      net = topology.create();
      for (const version of sshdVersions()) {
        // Both families: one ListenAddress from the fixture, the other added.
        // 10.0 keeps its default PerSourcePenalties, exempting only the proxy's own address (its health checks).
        const extraConfig = [`ListenAddress [${net.sshdAddress.v6}]:${SSHD_PORT[version]}`, 'Subsystem sftp internal-sftp', ...(version === 10 ? [`PerSourcePenaltyExemptList ${net.proxySources.join(',')}`] : [])];
        sshds.set(version, await startSshd({ version, wrap: net.sshdExec, listenAddress: net.sshdAddress.v4, port: SSHD_PORT[version], exemptLoopback: false, extraConfig }));
      }
    });
    after(async () => {
      await proxy?.kill();
      for (const sshd of sshds.values()) await sshd.stop();
      net?.remove();
    });

    it('will not start without the return route, and says which command sets it up', async () => {
      const { code, stdout, stderr } = await refusedStart();
      assert.notEqual(code, 0);
      assert.match(stdout + stderr, new RegExp(topology.missingRoute));
      assert.match(stdout + stderr, /ssh-banner-proxy transparent setup --backend/);
    });

    it('will not start without CAP_NET_ADMIN or CAP_NET_RAW, and says so', async () => {
      const { code, stdout, stderr } = await refusedStart(['setpriv', '--bounding-set', '-net_admin,-net_raw', '--inh-caps', '-all']);
      assert.notEqual(code, 0);
      assert.match(stdout + stderr, /setsockopt\(IP_TRANSPARENT\): EPERM: the proxy needs CAP_NET_ADMIN or CAP_NET_RAW/);
    });

    it('transparent setup adds the rules once (a second run finds them), and the proxy starts', async () => {
      const first = await routing('setup');
      assert.equal(first.code, 0, first.stderr);
      assert.match(first.stdout, new RegExp(`${escaped(net.sshdAddress.v4)}: ${topology.name}`));
      assert.match(first.stdout, topology.added);
      const second = await routing('setup');
      assert.equal(second.code, 0, second.stderr);
      assert.doesNotMatch(second.stdout, /run: (ip -[46] rule add|ip6?tables)/, 'nothing added twice');
      proxy = await startServeProcess(config() as never, { wrap: net.proxyExec, startTimeoutMs: 60_000 });
    });

    for (const version of sshdVersions()) {
      for (const family of ['v4', 'v6'] as const) {
        it(`OpenSSH ${version === 9 ? '9.2' : '10.0'} over ${family === 'v4' ? 'IPv4' : 'IPv6'}: sshd logs the client's own address, and the proxy's line joins it`, async () => {
          const sshd = sshds.get(version) as SshdHandle;
          const running = proxy as ServeProcess;
          const client = net.clients[family][0];
          const seen = [...(await sshd.readLog()).matchAll(ACCEPTED)].length;
          const result = await runSsh({ ...sshd, host: net.proxyAddress[family], port: PROXY_PORT + version * 10, command: 'true', extraOptions: [`BindAddress=${client}`], timeoutMs: 30_000 });
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
      await writeFile(path.join(sshd.dir, 'authorized_keys'), `from="${net.clients.v4[0]}" ${key}\n`);
      const target = { ...sshd, host: net.proxyAddress.v4, port: PROXY_PORT + 90, command: 'true', timeoutMs: 30_000 };
      const allowed = await runSsh({ ...target, extraOptions: [`BindAddress=${net.clients.v4[0]}`] });
      assert.equal(allowed.code, 0, allowed.stderr);
      const other = await runSsh({ ...target, extraOptions: [`BindAddress=${net.clients.v4[1]}`, 'BatchMode=yes'] });
      assert.notEqual(other.code, 0);
      assert.match(other.stderr, /Permission denied/);
      assert.match(await sshd.readLog(), new RegExp(`from ${escaped(net.clients.v4[1])} port \\d+`));
      await writeFile(path.join(sshd.dir, 'authorized_keys'), `${key}\n`);
    });

    it('OpenSSH 10.0 penalises a client with a wrong key itself, while 20 good clients from another address log in', { skip: sshdVersions().includes(10) ? false : 'OpenSSH 10.0 is not unpacked' }, async () => {
      const sshd = sshds.get(10) as SshdHandle;
      const running = proxy as ServeProcess;
      const target = { ...sshd, host: net.proxyAddress.v4, port: PROXY_PORT + 100, timeoutMs: 30_000 };
      const [good, bad] = net.clients.v4;
      // The host key is no key of the user's: each login fails (authfail, 5 s each; enforced past 15 s).
      const wrongKey = { ...target, identityFile: path.join(sshd.dir, 'ssh_host_ed25519_key'), command: 'true', extraOptions: [`BindAddress=${bad}`, 'BatchMode=yes'] };
      let refused = false;
      for (let attempt = 0; attempt < 8 && !refused; attempt += 1) {
        const result = await runSsh(wrongKey);
        assert.notEqual(result.code, 0);
        refused = !/Permission denied/.test(result.stderr);
      }
      assert.ok(refused, 'sshd stopped answering the bad client');
      await sshd.waitForLog(new RegExp(`drop connection #\\d+ from \\[?${escaped(bad)}\\]?:\\d+ .*penalty: failed authentication`), 10_000);
      // The proxy did not hold that against the server: the refusal was the client's (SOURCE_REFUSED).
      const refusal = await running
        .waitForLog((entry) => entry.event === 'session' && (entry['client.ip'] ?? entry.client) === bad && JSON.stringify(entry.attempts).includes('SOURCE_REFUSED'), 10_000)
        .catch(() => assert.fail(JSON.stringify(running.logs.filter((entry) => entry.event === 'session' && (entry['client.ip'] ?? entry.client) === bad).slice(-2))));
      assert.equal(refusal.spliced, false);
      const logins = await Promise.all(
        Array.from({ length: 20 }, () => runSsh({ ...target, command: 'sftp', stdin: '', extraOptions: ['SessionType=subsystem', `BindAddress=${good}`] })),
      );
      assert.deepEqual(logins.map((login) => login.code), Array.from({ length: 20 }, () => 0), logins.map((login) => login.stderr).join(''));
      assert.ok(!running.logs.some((entry) => entry.event === 'server-state' && entry.to === 'DOWN'), 'no server went DOWN');
    });

    it('a return route lost at run time: connects time out, the attempt is SOURCE_UNUSABLE, logged once, and the server stays UP', async () => {
      const running = proxy as ServeProcess;
      const sshd = sshds.get(9) as SshdHandle;
      const removed = await routing('teardown');
      assert.equal(removed.code, 0, removed.stderr);
      try {
        const target = { ...sshd, host: net.proxyAddress.v4, port: PROXY_PORT + 90, command: 'true', extraOptions: [`BindAddress=${net.clients.v4[0]}`], timeoutMs: 30_000 };
        for (let attempt = 0; attempt < 2; attempt += 1) assert.notEqual((await runSsh(target)).code, 0, 'no route back: no login');
        // ssh may exit before the proxy's line for its session is read: wait for both lines.
        let unusable = 0;
        await running.waitForLog((entry) => entry.event === 'session' && JSON.stringify(entry.attempts).includes('SOURCE_UNUSABLE') && ++unusable >= 2, 10_000);
        assert.equal(running.logs.filter((entry) => entry.event === 'transparent-unrouted').length, 1, 'told once per server');
        assert.ok(!running.logs.some((entry) => entry.event === 'server-state' && entry.to === 'DOWN'), 'not held against the server');
      } finally {
        const restored = await routing('setup');
        assert.equal(restored.code, 0, restored.stderr);
      }
    });

    it('transparent teardown removes the rules', async () => {
      await proxy?.kill();
      proxy = undefined;
      const result = await routing('teardown');
      assert.equal(result.code, 0, result.stderr);
      assert.doesNotMatch(net.proxyIp('-4', 'rule', 'show'), /lookup 100/);
      assert.doesNotMatch(net.proxyIp('-6', 'rule', 'show'), /lookup 100/);
      for (const iptables of ['iptables', 'ip6tables']) {
        const marks = await runProcess(net.proxyExec[0] ?? '', [...net.proxyExec.slice(1), iptables, '-t', 'mangle', '-S', 'PREROUTING'], { timeoutMs: 10_000 });
        assert.doesNotMatch(marks.stdout, /MARK/, `${iptables}: no mark left`);
      }
    });
  });
}
