import type { Argv } from 'yargs';
import { DEFAULT_CONFIG_PATH } from '../version.js';
import { durationFlag } from './duration-flag.js';
import type { CliCommand } from './main.js';

export const CTL_ACTIONS = ['drain', 'ready', 'maint', 'weight', 'resolve', 'status'] as const;
export type CtlAction = (typeof CTL_ACTIONS)[number];

export interface CtlArgs {
  action: CtlAction;
  target: string | undefined;
  value: string | undefined;
  config: string;
  admin: string | undefined;
  tokenFile: string | undefined;
  tokenEnv: string | undefined;
  timeout: number;
  json: boolean;
}

/**
 * Runtime control of a running proxy through its admin endpoint (docs/operations.md,
 * "Runtime control"): drain, ready or maint a server (or every member of a DNS set),
 * set its weight, re-resolve a pool's DNS sets now, or list the servers.
 */
export const ctlCommand: CliCommand = {
  register(cli, setExitCode) {
    return cli.command(
      'ctl <action> [target] [value]',
      'Change a running proxy: drain|ready|maint POOL/SERVER, weight POOL/SERVER N, resolve POOL, status',
      (command: Argv) =>
        command
          .positional('action', { choices: CTL_ACTIONS, describe: 'What to do' })
          .positional('target', { type: 'string', describe: 'POOL/SERVER (SERVER may be a servers[] entry: all its DNS members), or POOL for resolve' })
          .positional('value', { type: 'string', describe: 'The weight, for weight (0-256)' })
          .option('config', { alias: 'c', type: 'string', default: DEFAULT_CONFIG_PATH, describe: "The running proxy's config: its admin.bind, admin.tokenFile / admin.tokenEnv", defaultDescription: 'the packaged config/default.yaml' })
          .option('admin', { type: 'string', describe: 'The admin address (host:port) instead of the config\'s admin.bind' })
          .option('token-file', { type: 'string', describe: 'Read the admin token from this file instead of the config\'s source' })
          .option('token-env', { type: 'string', describe: 'Read the admin token from this environment variable', defaultDescription: "the config's admin.tokenEnv, else SBP_ADMIN_TOKEN" })
          .option('timeout', { type: 'string', default: '5s', coerce: durationFlag('timeout', 'ms', { min: 1 }), describe: 'How long to wait for the answer (bare number: ms)' })
          .option('json', { type: 'boolean', default: false, describe: 'Print the admin endpoint\'s JSON answer as it is' }),
      (args) => setExitCode(import('./ctl-run.js').then((run) => run.ctl(args as unknown as CtlArgs))),
    );
  },
};
