/**
 * `npm run identity`: with pools[].source: transparent, how many logins sshd logs with the
 * client's own address, out of N per topology, sshd version and address family
 * (docs/identity.md). The topologies are the tests' (test/integration/transparent-source.test.ts):
 * a sidecar namespace, and a bastion (the proxy's namespace in front of sshd's). Each login
 * opens the sftp subsystem (internal-sftp): a real session that runs no shell.
 *   npm run identity                    100 logins per row, 10 at a time
 *   npm run identity -- --logins 20
 */
import { parseArgs } from 'node:util';
import { createBastionNamespaces } from '../test/fixtures/net/bastion-namespaces.js';
import { runSsh } from '../test/fixtures/clients/clients.js';
import { runProcess } from '../test/fixtures/run-process.js';
import { startServeProcess } from '../test/fixtures/proxy/serve-process.js';
import { createSidecarNamespace } from '../test/fixtures/net/sidecar-namespace.js';
import { sshdVersions, startSshd, type SshdHandle } from '../test/fixtures/sshd/sshd.js';

const { values } = parseArgs({ options: { logins: { type: 'string', default: '100' }, concurrency: { type: 'string', default: '10' } } });
const logins = Number(values.logins);
const concurrency = Number(values.concurrency);
const ACCEPTED = /Accepted publickey for \S+ from (\S+) port \d+/g;
const FAMILIES = ['v4', 'v6'] as const;

const rows: string[] = [];
for (const [topology, create] of [
  ['sidecar', createSidecarNamespace],
  ['bastion', createBastionNamespaces],
] as const) {
  const net = create();
  const sshds: SshdHandle[] = [];
  try {
    for (const version of sshdVersions()) {
      const port = 2200 + version;
      sshds.push(await startSshd({ version, wrap: net.sshdExec, listenAddress: net.sshdAddress.v4, port, extraConfig: [`ListenAddress [${net.sshdAddress.v6}]:${port}`, 'Subsystem sftp internal-sftp'] }));
    }
    const ports = sshds.flatMap((sshd) => ['--port', String(sshd.port)]);
    const setup = await runProcess(net.proxyExec[0] ?? '', [...net.proxyExec.slice(1), process.execPath, '--import', 'tsx', 'src/cli.ts', 'transparent', 'setup', '--backend', net.sshdAddress.v4, '--backend', net.sshdAddress.v6, ...ports], { timeoutMs: 30_000 });
    if (setup.code !== 0) throw new Error(setup.stderr);
    const pools = sshds.flatMap((sshd, index) =>
      FAMILIES.map((family) => ({ name: `${family}-${index}`, source: 'transparent', verify: 'kexinit', servers: [{ name: 'sshd', address: family === 'v4' ? `${net.sshdAddress.v4}:${sshd.port}` : `[${net.sshdAddress.v6}]:${sshd.port}` }] })),
    );
    const bind = (pool: string, index: number): string => (pool.startsWith('v4') ? `${net.proxyAddress.v4}:${3000 + index}` : `[${net.proxyAddress.v6}]:${3000 + index}`);
    const proxy = await startServeProcess({ listeners: pools.map((pool, index) => ({ name: pool.name, bind: bind(pool.name, index), pool: pool.name })), pools, log: { level: 'info' } }, { wrap: net.proxyExec, startTimeoutMs: 60_000 });
    try {
      for (const [index, pool] of pools.entries()) {
        const sshd = sshds[Math.floor(index / 2)] as SshdHandle;
        const family = pool.name.startsWith('v4') ? 'v4' : 'v6';
        const client = net.clients[family][0];
        const before = [...(await sshd.readLog()).matchAll(ACCEPTED)].length;
        let failed = 0;
        for (let done = 0; done < logins; done += concurrency) {
          const batch = await Promise.all(
            Array.from({ length: Math.min(concurrency, logins - done) }, () =>
              runSsh({ ...sshd, host: net.proxyAddress[family], port: 3000 + index, command: 'sftp', stdin: '', extraOptions: ['SessionType=subsystem', `BindAddress=${client}`], timeoutMs: 60_000 }),
            ),
          );
          failed += batch.filter((result) => result.code !== 0).length;
        }
        const named = [...(await sshd.readLog()).matchAll(ACCEPTED)].slice(before).filter((match) => match[1] === client).length;
        rows.push(`| ${topology} | ${sshd.banner.replace(/^SSH-2\.0-/, '')} | ${family === 'v4' ? 'IPv4' : 'IPv6'} | ${logins} | ${logins - failed} | ${named}/${logins} |`);
      }
    } finally {
      await proxy.kill();
    }
  } finally {
    for (const sshd of sshds) await sshd.stop();
    net.remove();
  }
}
process.stdout.write(`| topology | sshd | family | logins | succeeded | sshd logged the client's own address |\n|---|---|---|---|---|---|\n${rows.join('\n')}\n`);
