import yargs, { type Argv } from 'yargs';
import { VERSION } from '../version.js';
import { checkConfigCommand } from './check-config.js';
import { withEnvFlags } from './env-flags.js';
import { EXIT_USAGE } from './exit-codes.js';
import { serveCommand } from './serve.js';
import { probeCommand } from './probe.js';
import { loadtestCommand } from './loadtest.js';
import { demoCommand } from './demo.js';

export interface CliCommand {
  register(cli: Argv, setExitCode: (code: Promise<number>) => void): Argv;
}

const COMMANDS: readonly CliCommand[] = [serveCommand, checkConfigCommand, probeCommand, loadtestCommand, demoCommand];

/** Parses argv, runs the chosen command, and resolves with the exit code. */
export async function runCli(argv: readonly string[]): Promise<number> {
  let result: Promise<number> | undefined;
  let usageError: string | undefined;
  let cli = yargs(withEnvFlags(argv, process.env))
    .scriptName('ssh-banner-proxy')
    .usage('$0 <command> [options]\n\nA layer-4 SSH proxy that verifies each backend\'s identification banner before splicing clients through.')
    .version(VERSION)
    .alias('v', 'version')
    .help()
    .alias('h', 'help')
    .strict()
    .recommendCommands()
    .demandCommand(1, 'Name a command (serve, check-config, ...).')
    .wrap(Math.min(110, process.stdout.columns || 110))
    .exitProcess(false)
    .fail((message: string | null, error: Error | undefined) => {
      usageError = message ?? error?.message ?? 'usage error';
      // Throwing stops yargs here; returning would let it run the command handler anyway.
      throw new Error(usageError);
    });
  for (const command of COMMANDS) cli = command.register(cli, (code) => (result = code));
  try {
    await cli.parseAsync();
  } catch (error) {
    if (usageError === undefined) throw error;
  }
  if (usageError !== undefined) {
    process.stderr.write(`ssh-banner-proxy: ${usageError}\nRun "ssh-banner-proxy --help" for usage.\n`);
    return EXIT_USAGE;
  }
  return result ? await result : 0;
}
