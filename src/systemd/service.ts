import cluster from 'node:cluster';
import type { Reloadable } from '../config/reloader.js';
import type { Config } from '../config/schema.js';
import { InheritedSockets } from './listen-fds.js';
import type { SystemdNotifier } from './notify.js';

/**
 * The listening sockets systemd passed, by listener name. A cluster worker reads the
 * primary's variables (LISTEN_PID is its parent) and listens through the primary,
 * which holds the descriptors. Throws with what does not fit.
 */
export function inheritedListenerFds(config: Config, env: NodeJS.ProcessEnv = process.env): ReadonlyMap<string, number> {
  const context = cluster.isWorker ? { pid: process.pid, ppid: process.ppid } : { pid: process.pid };
  return InheritedSockets.fromEnv(env, context).assign(config.listeners.map((listener) => listener.name));
}

/** What systemd is told the proxy serves (`systemctl status` shows it). */
export function serviceStatus(config: Config): string {
  const listeners = config.listeners.map((listener) => listener.name).join(', ');
  const servers = config.pools.reduce((sum, pool) => sum + pool.servers.length, 0);
  return `serving ${config.listeners.length} listener(s) (${listeners}) over ${config.pools.length} pool(s), ${servers} server(s)`;
}

/** A reload that tells systemd RELOADING=1 before and READY=1 after (the old config stays on failure: still ready). */
export function notifyingReloads(target: Reloadable, notifier: SystemdNotifier, status: () => string): Reloadable {
  if (!notifier.enabled) return target;
  return {
    async reload(config, source) {
      await notifier.reloading();
      try {
        return await target.reload(config, source);
      } finally {
        await notifier.ready(status());
      }
    },
    rejectReload: (source, problems) => target.rejectReload(source, problems),
    onIgnoredHangup: () => target.onIgnoredHangup(),
  };
}
