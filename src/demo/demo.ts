/**
 * The demo: three embedded SSH backends on loopback and the proxy in front of them,
 * with health checks and the admin endpoint, so failover and metrics can be seen with
 * no sshd on the machine.
 */
import ssh2 from 'ssh2';
import type { Logger } from 'pino';
import { validateConfig } from '../config/load.js';
import { ProxyRuntime } from '../runtime.js';
import { startDemoBackend, type DemoBackend, type MaxStartups } from './ssh-backend.js';

export interface DemoOptions {
  /** Proxy listener, host:port (port 0 picks one). */
  readonly listen: string;
  /** Admin endpoint, host:port, or undefined for none. */
  readonly admin: string | undefined;
  readonly bannerDelayMs: number;
  readonly maxStartups: MaxStartups;
  readonly logger: Logger;
  /** Loopback ports for the healthy, slow and throttling backends (0: any free one). */
  readonly backendPorts?: readonly [number, number, number];
}

export interface Demo {
  readonly runtime: ProxyRuntime;
  readonly backends: readonly DemoBackend[];
  readonly port: number;
  readonly adminPort: number | undefined;
  /** Idempotent. */
  stop(): Promise<void>;
}

export async function startDemo(options: DemoOptions): Promise<Demo> {
  const { private: hostKey } = ssh2.utils.generateKeyPairSync('ed25519', { comment: 'ssh-banner-proxy demo host key' });
  const backends: DemoBackend[] = [];
  let runtime: ProxyRuntime | undefined;
  try {
    const [healthyPort = 0, slowPort = 0, throttlePort = 0] = options.backendPorts ?? [];
    backends.push(await startDemoBackend({ name: 'healthy', kind: 'healthy', hostKey, port: healthyPort }));
    backends.push(await startDemoBackend({ name: 'slow', kind: 'slow', hostKey, bannerDelayMs: options.bannerDelayMs, port: slowPort }));
    backends.push(await startDemoBackend({ name: 'throttle', kind: 'throttle', hostKey, maxStartups: options.maxStartups, port: throttlePort }));
    const config = validateConfig(
      {
        listeners: [{ name: 'ssh', bind: options.listen, pool: 'demo', acl: { allow: ['127.0.0.0/8', '::1/128'], deny: [] } }],
        pools: [
          {
            name: 'demo',
            balance: 'roundrobin',
            retries: 2,
            healthCheck: { interval: '2s', timeout: '1500ms', rise: 2, fall: 2 },
            servers: backends.map((backend) => ({ name: backend.name, address: `127.0.0.1:${backend.port}` })),
          },
        ],
        timeouts: { connect: '1s', banner: '3s', drain: '2s' },
        // The loadtests suggested below leave without logging in, all from loopback.
        penalties: { exempt: ['127.0.0.0/8', '::1/128'] },
        ...(options.admin === undefined ? {} : { admin: { bind: options.admin } }),
      },
      'demo',
    );
    runtime = new ProxyRuntime(config, { logger: options.logger });
    await runtime.start();
  } catch (error) {
    await runtime?.stop(0);
    await Promise.all(backends.map((backend) => backend.close()));
    throw error;
  }
  const started = runtime;
  let stopping: Promise<void> | undefined;
  return {
    runtime: started,
    backends,
    port: started.port('ssh'),
    adminPort: started.adminPort,
    stop() {
      stopping ??= (async () => {
        await started.stop();
        await Promise.all(backends.map((backend) => backend.close()));
      })();
      return stopping;
    },
  };
}

/** What to try, printed once the demo is up. */
export function demoInstructions(demo: Demo, host: string): string {
  const port = demo.port;
  const self = 'ssh-banner-proxy';
  const backend = (name: string): number => demo.backends.find((entry) => entry.name === name)?.port ?? 0;
  const lines = [
    `ssh-banner-proxy demo: proxy listening on ${host}:${port}`,
    '',
    'Backends (embedded SSH servers, every login accepted):',
    `  healthy   127.0.0.1:${backend('healthy')}   answers at once`,
    `  slow      127.0.0.1:${backend('slow')}   identification only after a long delay`,
    `  throttle  127.0.0.1:${backend('throttle')}   refuses like sshd MaxStartups ("Exceeded MaxStartups")`,
    '',
    'Try:',
    `  ssh -p ${port} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null demo@${host} hostname`,
    `      (any user and password; the proxy fails over past slow and throttled backends)`,
    `  ${self} probe 127.0.0.1:${backend('slow')} --timeout 3000        # banner-timeout`,
    `  ${self} probe 127.0.0.1:${backend('throttle')} --count 20 --concurrency 10   # "N/20 throttled"`,
    `  ${self} probe ${host}:${port}                    # through the proxy: ok`,
    `  ${self} loadtest 127.0.0.1:${backend('throttle')} --compare ${host}:${port} --mode kex --clients 10 --total 100`,
    '  (loopback is exempt from per-source penalties in the demo: load tests leave without logging in; docs/penalties.md)',
  ];
  if (demo.adminPort === undefined) {
    lines.push('', 'Admin endpoint off (--admin off): no metrics or status page.');
  } else {
    lines.push(
      '',
      `Status page  http://127.0.0.1:${demo.adminPort}/`,
      `Metrics      curl -s http://127.0.0.1:${demo.adminPort}/metrics | grep ^sshproxy_`,
    );
  }
  lines.push('', 'Session logs go to stderr. Ctrl-C stops the demo.');
  return `${lines.join('\n')}\n`;
}
