import cluster from 'node:cluster';
import { runPrimary } from '../cluster/primary.js';
import { workerCount } from '../cluster/messages.js';
import { inheritedConfig, workerRuntime } from '../cluster/worker.js';
import { loadConfigFile } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { createLogger } from '../observe/log.js';
import { logIdentity } from '../observe/log-identity.js';
import { ConfigError } from '../errors.js';
import { ProxyRuntime } from '../runtime.js';
import { SystemdNotifier } from '../systemd/notify.js';
import { inheritedListenerFds, notifyingReloads, serviceStatus } from '../systemd/service.js';
import { attachReloader } from '../config/reloader.js';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE } from './exit-codes.js';
import type { ServeArgs } from './serve.js';

export async function serve(args: ServeArgs): Promise<number> {
  let runtime: ProxyRuntime;
  const overrides = { logLevel: args.logLevel, listen: args.listen, admin: args.admin };
  try {
    // A worker runs the config the primary has in force (after reloads), not the file.
    const inherited = inheritedConfig();
    const config = inherited?.config ?? (await loadConfigFile(args.config, overrides));
    const inheritedFds = systemdSockets(config);
    if (inheritedFds === undefined) return EXIT_FAILURE;
    // workers > 1: the primary forks workers that run this same command (src/cluster/).
    const workers = inherited?.workers ?? workerCount(config.workers);
    if (workers > 1 && cluster.isPrimary) {
      // The primary owns reload (SIGHUP, --watch) and sends each valid config to the workers.
      return await runPrimary(config, workers, createLogger(config.log, logIdentity(config.cluster?.replicaId)), { path: args.config, overrides, watch: args.watch });
    }
    runtime = cluster.isWorker ? workerRuntime(config, workers, inheritedFds) : new ProxyRuntime(config, { inheritedFds });
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      return EXIT_USAGE;
    }
    throw error;
  }
  // A worker is not the service systemd watches: its primary notifies.
  const notifier = SystemdNotifier.fromEnv(cluster.isWorker ? {} : process.env, process.pid, (message, error) => {
    runtime.logger.warn({ event: 'systemd-notify', err: error }, message);
  });
  try {
    await runtime.start();
  } catch (error) {
    runtime.logger.fatal({ err: error }, 'cannot start');
    await runtime.stop(0);
    notifier.close();
    return EXIT_FAILURE;
  }
  await notifier.ready(serviceStatus(runtime.config));
  // Reload (SIGHUP, --watch) in a single process; with workers the primary owns signals.
  const detachReloader = cluster.isWorker
    ? () => {}
    : attachReloader(notifyingReloads(runtime, notifier, () => serviceStatus(runtime.config)), { path: args.config, overrides, watch: args.watch });
  return new Promise<number>((resolve) => {
    let signals = 0;
    const onSignal = (signal: NodeJS.Signals): void => {
      signals += 1;
      if (signals > 1) {
        runtime.logger.warn({ event: 'shutdown', signal }, 'second signal: exiting now');
        resolve(EXIT_FAILURE);
        process.exit(EXIT_FAILURE);
      }
      detachReloader();
      const { drain: drainMs, shutdownGrace: graceMs } = runtime.config.timeouts;
      runtime.logger.info({ event: 'shutdown', signal, graceMs, drainMs }, graceMs > 0 ? `not ready; accepting for ${graceMs}ms more, then draining` : 'draining');
      void notifier.stopping(`draining ${runtime.server.sessionCount()} session(s) for at most ${drainMs}ms`);
      void runtime.stop().then(() => {
        runtime.logger.info({ event: 'shutdown' }, 'stopped');
        notifier.close();
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        resolve(EXIT_OK);
      });
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}

/** The sockets systemd passed, matched to listeners; undefined (after saying why) when they do not fit. */
function systemdSockets(config: Config): ReadonlyMap<string, number> | undefined {
  try {
    return inheritedListenerFds(config);
  } catch (error) {
    process.stderr.write(`ssh-banner-proxy: socket activation: ${error instanceof Error ? error.message : String(error)}\n`);
    return undefined;
  }
}
