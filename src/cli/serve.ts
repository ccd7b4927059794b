import type { Argv } from 'yargs';
import { DEFAULT_CONFIG_PATH } from '../version.js';
import type { CliCommand } from './main.js';

export interface ServeArgs {
  config: string;
  logLevel: string | undefined;
  listen: string | undefined;
  admin: string | undefined;
  watch: boolean;
}

export const serveCommand: CliCommand = {
  register(cli, setExitCode) {
    return cli.command(
      'serve',
      'Run the proxy (the command when none is named)',
      (command: Argv) =>
        command
          .option('config', { alias: 'c', type: 'string', default: DEFAULT_CONFIG_PATH, describe: 'YAML config file', defaultDescription: 'the packaged config/default.yaml' })
          .option('log-level', { type: 'string', choices: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], describe: 'Override log.level' })
          .option('listen', { type: 'string', describe: 'Override the first listener\'s bind address (host:port)' })
          .option('admin', { type: 'string', describe: 'Override admin.bind (host:port, or "off")' })
          .option('watch', { type: 'boolean', default: false, describe: 'Reload the config when the file changes (SIGHUP always reloads)' }),
      (args) => setExitCode(import('./serve-run.js').then((run) => run.serve(args as unknown as ServeArgs))),
    );
  },
};
