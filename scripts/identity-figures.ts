/**
 * `npm run identity`: with pools[].source: transparent in a sidecar namespace
 * (test/fixtures/sidecar-namespace.ts), how many logins sshd logs with the client's own
 * address, out of N per sshd version and address family (docs/identity.md). Each login
 * opens the sftp subsystem (internal-sftp): a real session that runs no shell.
 *   npm run identity                    100 logins per row, 10 at a time
 *   npm run identity -- --logins 20
 */
import { parseArgs } from 'node:util';
import { runSsh } from '../test/fixtures/clients.js';
import { startServeProcess } from '../test/fixtures/serve-process.js';
import { createSidecarNamespace } from '../test/fixtures/sidecar-namespace.js';
import { sshdVersions, startSshd, type SshdHandle } from '../test/fixtures/sshd.js';
import { runProcess } from '../test/fixtures/run-process.js';

const { values } = parseArgs({ options: { logins: { type: 'string', default: '100' }, concurrency: { type: 'string', default: '10' } } });
const logins = Number(values.logins);
const concurrency = Number(values.concurrency);
const ACCEPTED = /Accepted publickey for \S+ from (\S+) port \d+/g;

const ns = createSidecarNamespace();
const sshds: SshdHandle[] = [];
try {
  const rows: string[] = [];
  for (const version of sshdVersions()) {
    const port = 2200 + version;
    const sshd = await startSshd({ version, wrap: ns.proxyExec, listenAddress: ns.sshdAddress.v4, port, extraConfig: [`ListenAddress [${ns.sshdAddress.v6}]:${port}`, 'Subsystem sftp internal-sftp'] });
    sshds.push(sshd);
  }
  const setup = await runProcess(ns.proxyExec[0] ?? '', [...ns.proxyExec.slice(1), process.execPath, '--import', 'tsx', 'src/cli.ts', 'transparent', 'setup', '--backend', ns.sshdAddress.v4, '--backend', ns.sshdAddress.v6], { timeoutMs: 30_000 });
  if (setup.code !== 0) throw new Error(setup.stderr);
  const pools = sshds.flatMap((sshd, index) => (['v4', 'v6'] as const).map((family) => ({ name: `${family}-${index}`, source: 'transparent', servers: [{ name: 'sshd', address: family === 'v4' ? `${ns.sshdAddress.v4}:${sshd.port}` : `[${ns.sshdAddress.v6}]:${sshd.port}` }] })));
  const proxy = await startServeProcess(
    {
      listeners: pools.map((pool, index) => ({ name: pool.name, bind: pool.name.startsWith('v4') ? `${ns.proxyAddress.v4}:${3000 + index}` : `[${ns.proxyAddress.v6}]:${3000 + index}`, pool: pool.name })),
      pools: pools.map((pool) => ({ ...pool, verify: 'kexinit' })),
      log: { level: 'info' },
    },
    { wrap: ns.proxyExec, startTimeoutMs: 60_000 },
  );
  try {
    for (const [index, pool] of pools.entries()) {
      const sshd = sshds[Math.floor(index / 2)] as SshdHandle;
      const family = pool.name.startsWith('v4') ? 'v4' : 'v6';
      const client = ns.clients[family][0];
      const before = [...(await sshd.readLog()).matchAll(ACCEPTED)].length;
      let failed = 0;
      for (let done = 0; done < logins; done += concurrency) {
        const batch = await Promise.all(
          Array.from({ length: Math.min(concurrency, logins - done) }, () =>
            runSsh({ ...sshd, host: ns.proxyAddress[family], port: 3000 + index, command: 'sftp', stdin: '', extraOptions: ['SessionType=subsystem', `BindAddress=${client}`], timeoutMs: 60_000 }),
          ),
        );
        failed += batch.filter((result) => result.code !== 0).length;
      }
      const froms = [...(await sshd.readLog()).matchAll(ACCEPTED)].slice(before).map((match) => match[1]);
      const named = froms.filter((from) => from === client).length;
      rows.push(`| ${sshd.banner.replace(/^SSH-2\.0-/, '')} | ${family === 'v4' ? 'IPv4' : 'IPv6'} | ${logins} | ${logins - failed} | ${named}/${logins} |`);
    }
  } finally {
    await proxy.kill();
  }
  process.stdout.write(`| sshd | family | logins | succeeded | sshd logged the client's own address |\n|---|---|---|---|---|\n${rows.join('\n')}\n`);
} finally {
  for (const sshd of sshds) await sshd.stop();
  ns.remove();
}
