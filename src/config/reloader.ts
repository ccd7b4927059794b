import { unwatchFile, watchFile, type Stats } from 'node:fs';
import { loadConfigFile } from './load.js';
import type { ConfigOverrides } from './overrides.js';
import type { Config } from './schema.js';
import { ConfigError } from '../errors.js';

/** What a reload is applied to: a ProxyRuntime, or with workers the cluster primary (src/cluster/primary-reload.ts). */
export interface Reloadable {
  /** Applies a valid config (logs and counts the outcome; throws when it could not be applied). */
  reload(config: Config, source: string): Promise<unknown>;
  /** Records a config that could not be used (parse or validation errors). */
  rejectReload(source: string, problems: readonly string[]): void;
  /** Logs a SIGHUP that came while the proxy drains (no reload then; the process must live on). */
  onIgnoredHangup(): void;
}

export interface ReloaderOptions {
  readonly path: string;
  /** The same CLI overrides as at start (--listen, --admin, --log-level). */
  readonly overrides: ConfigOverrides;
  /** Also reload when the file changes. */
  readonly watch: boolean;
  /** Poll period for --watch (stat-based, so a ConfigMap's symlink swap is seen). */
  readonly watchIntervalMs?: number;
}

/**
 * SIGHUP (and with `watch`, a change of the file) reloads the config file into the
 * running proxy. Reloads never overlap: one arriving during another runs after it.
 * An invalid file is logged and counted; the running config stays. Returns detach.
 */
export function attachReloader(runtime: Reloadable, options: ReloaderOptions): () => void {
  let running: Promise<void> | undefined;
  let again: string | undefined;

  const reload = (source: string): void => {
    if (running) {
      again = source;
      return;
    }
    running = (async () => {
      try {
        const config = await loadConfigFile(options.path, options.overrides);
        await runtime.reload(config, source);
      } catch (error) {
        if (error instanceof ConfigError) runtime.rejectReload(source, error.problems);
        // Other errors were logged and counted by reload itself.
      }
    })().finally(() => {
      running = undefined;
      if (again !== undefined) {
        const next = again;
        again = undefined;
        reload(next);
      }
    });
  };

  const onHangup = (): void => reload('SIGHUP');
  process.on('SIGHUP', onHangup);
  const onChange = (current: Stats, previous: Stats): void => {
    if (current.mtimeMs === previous.mtimeMs && current.size === previous.size && current.ino === previous.ino) return;
    reload('watch');
  };
  if (options.watch) watchFile(options.path, { interval: options.watchIntervalMs ?? 1000, persistent: false }, onChange);
  return () => {
    // SIGHUP's default action ends the process: a reloader that stops (a drain) leaves a
    // listener that ignores it, or a logrotate during the drain would cut every session.
    ignoreHangups(runtime.onIgnoredHangup);
    process.off('SIGHUP', onHangup);
    if (options.watch) unwatchFile(options.path, onChange);
  };
}

let ignoring = false;

/** From now on SIGHUP is reported to `report` and otherwise ignored (idempotent: one listener). */
export function ignoreHangups(report: () => void): void {
  if (ignoring) return;
  ignoring = true;
  process.on('SIGHUP', report);
}
