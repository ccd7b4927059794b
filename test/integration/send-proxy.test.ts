// servers[].sendProxy: two ssh-banner-proxy instances in a chain, the first sending a PROXY
// header (as HAProxy's send-proxy does), the second trusting it, then a real sshd. The second
// must see the real client; the first's health checks (v2 LOCAL / v1 UNKNOWN) must pass.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { runSsh } from '../fixtures/clients/clients.js';
import { startProxy, type TestProxy } from '../fixtures/proxy/proxy.js';
import { sshdAvailable, startSshd, type SshdHandle } from '../fixtures/sshd/sshd.js';

/** A loopback address of its own for the client, so that the second proxy can tell it from the first. */
const CLIENT = '127.0.0.2';

for (const version of ['v2', 'v1'] as const) {
  describe(`sendProxy: ${version}, through a second proxy that accepts it, to sshd`, { skip: sshdAvailable() ? false : 'openssh-server is not installed' }, () => {
    let sshd: SshdHandle;
    let inner: TestProxy;
    let outer: TestProxy;

    before(async () => {
      sshd = await startSshd();
      inner = await startProxy({
        servers: [{ name: 'sshd', host: sshd.host, port: sshd.port }],
        pool: { verify: 'kexinit' },
        listener: { proxyProtocol: { accept: version, trusted: ['127.0.0.1/32'] } },
      });
      outer = await startProxy({
        servers: [{ name: 'inner', host: inner.host, port: inner.port, sendProxy: version }],
        pool: { verify: 'kexinit', healthCheck: { enabled: true, interval: '200ms', timeout: '2s' } },
      });
    });
    after(async () => {
      await outer?.stop();
      await inner?.stop();
      await sshd?.stop();
    });

    it("the second proxy's session line names the real client, and an ssh login goes through", async () => {
      const result = await runSsh({ ...sshd, port: outer.port, command: 'echo chained', extraOptions: [`BindAddress=${CLIENT}`], timeoutMs: 30_000 });
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout, 'chained\n');
      const line = await inner.waitForLog((entry) => entry.event === 'session' && entry.spliced === true && (entry['client.ip'] ?? entry.client) === CLIENT, 10_000);
      assert.equal(line.server, 'sshd');
      // And the first proxy's health checks, sent as the proxy's own connections, pass through the second.
      const check = await outer.waitForLog((entry) => entry.event === 'health-check' && entry.ok === true && entry.server === 'inner', 10_000);
      assert.equal(check.ok, true);
      const checked = await inner.waitForLog((entry) => entry.event === 'session' && (entry['client.ip'] ?? entry.client) === '127.0.0.1', 10_000);
      assert.equal(checked.client ?? checked['client.ip'], '127.0.0.1', 'a LOCAL header: the real connection address');
    });
  });
}
