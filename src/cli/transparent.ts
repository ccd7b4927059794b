import type { Argv } from 'yargs';
import type { CliCommand } from './main.js';

export interface TransparentArgs {
  action: 'setup' | 'teardown';
  backend: string[];
  topology: 'auto' | 'sidecar' | 'bastion';
  table: number;
  mark: number;
  port: number[];
  dryRun: boolean;
}

/**
 * `transparent setup|teardown`: the routing that `source: transparent` needs, set up
 * idempotently and removed again (usable as an init container; docs/identity.md).
 */
export const transparentCommand: CliCommand = {
  register(cli, setExitCode) {
    return cli.command(
      'transparent <action>',
      'Set up (or tear down) the routing that pools[].source: transparent needs: replies to client addresses come back to the proxy',
      (command: Argv) =>
        command
          .positional('action', { choices: ['setup', 'teardown'] as const, describe: 'setup: add what is missing; teardown: remove it' })
          .option('backend', { type: 'string', array: true, demandOption: true, describe: 'A backend address sshd listens on (IP address; repeat for several)' })
          .option('topology', { choices: ['auto', 'sidecar', 'bastion'] as const, default: 'auto', describe: 'sidecar: the backend is on this host or pod; bastion: on another host that routes clients via this one; auto: sidecar when the address is this host\'s' })
          .option('table', { type: 'number', default: 100, describe: 'The routing table for the local route' })
          .option('mark', { type: 'number', default: 1, describe: 'bastion: the firewall mark for the backend\'s replies' })
          .option('port', { type: 'number', array: true, default: [22], describe: 'bastion: the backends\' SSH ports (repeat for several)' })
          .option('dry-run', { type: 'boolean', default: false, describe: 'Print the commands instead of running them' }),
      (args) => setExitCode(import('./transparent-run.js').then((run) => run.transparent(args as unknown as TransparentArgs))),
    );
  },
};
