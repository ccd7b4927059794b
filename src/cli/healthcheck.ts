import type { Argv } from 'yargs';
import { DEFAULT_CONFIG_PATH } from '../version.js';
import { durationFlag } from './duration-flag.js';
import type { CliCommand } from './main.js';

export interface HealthcheckArgs {
  config: string;
  admin: string | undefined;
  timeout: number;
}

/**
 * The container's HEALTHCHECK: GET /healthz on the admin address the config gives (with
 * the same --admin / SSH_BANNER_PROXY_ADMIN override serve takes), so it follows the
 * configured address instead of a port written into the image.
 */
export const healthcheckCommand: CliCommand = {
  register(cli, setExitCode) {
    return cli.command(
      'healthcheck',
      'Exit 0 when the running proxy\'s admin endpoint answers /healthz (for a container HEALTHCHECK)',
      (command: Argv) =>
        command
          .option('config', { alias: 'c', type: 'string', default: DEFAULT_CONFIG_PATH, describe: 'The config serve runs with (its admin.bind is checked)', defaultDescription: 'the packaged config/default.yaml' })
          .option('admin', { type: 'string', describe: 'Override admin.bind, as serve --admin' })
          .option('timeout', { type: 'string', default: '2500ms', coerce: durationFlag('timeout', 'ms', { min: 1 }), describe: 'How long to wait for the answer (bare number: ms)' }),
      (args) => setExitCode(import('./healthcheck-run.js').then((run) => run.healthcheck(args as unknown as HealthcheckArgs))),
    );
  },
};
