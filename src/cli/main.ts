import yargs, { type Argv } from 'yargs';
import { VERSION } from '../version.js';
import { checkConfigCommand } from './check-config.js';
import { withEnvFlags } from './env-flags.js';
import { EXIT_USAGE } from './exit-codes.js';
import { serveCommand } from './serve.js';
import { probeCommand } from './probe.js';
import { loadtestCommand } from './loadtest.js';
import { demoCommand } from './demo.js';
import { healthcheckCommand } from './healthcheck.js';
import { ctlCommand } from './ctl.js';
import { transparentCommand } from './transparent.js';

export interface CliCommand {
  register(cli: Argv, setExitCode: (code: Promise<number>) => void): Argv;
}

const COMMANDS: readonly CliCommand[] = [serveCommand, checkConfigCommand, probeCommand, loadtestCommand, demoCommand, healthcheckCommand, transparentCommand, ctlCommand];
const COMMAND_NAMES: ReadonlySet<string> = new Set(['serve', 'check-config', 'probe', 'loadtest', 'demo', 'healthcheck', 'transparent', 'ctl', 'completion']);
/** Options that mean the program, not `serve`: asked alone, they answer for the whole CLI. */
const PROGRAM_OPTIONS: ReadonlySet<string> = new Set(['--help', '-h', '--version', '-V', '--get-yargs-completions']);

/**
 * `serve` is what runs when no command is named (`ssh-banner-proxy -c proxy.yaml`). It is
 * not yargs' default command: that would swallow a mistyped command as serve's argument
 * ("Unknown arguments: chek-config") and list serve's flags as the program's.
 */
export function withDefaultCommand(argv: readonly string[]): string[] {
  const first = argv[0];
  if (first === undefined) return ['serve'];
  if (!first.startsWith('-') || PROGRAM_OPTIONS.has(first) || COMMAND_NAMES.has(first)) return [...argv];
  return ['serve', ...argv];
}

/** Parses argv, runs the chosen command, and resolves with the exit code. */
export async function runCli(argv: readonly string[]): Promise<number> {
  let result: Promise<number> | undefined;
  let usageError: string | undefined;
  let cli = yargs(withEnvFlags(withDefaultCommand(argv), process.env))
    .scriptName('ssh-banner-proxy')
    .usage('$0 <command> [options]\n\nA layer-4 SSH proxy that verifies each backend\'s identification banner before splicing clients through.\nWith no command (or only options), it runs `serve`.')
    .version(VERSION)
    .alias('V', 'version')
    .help()
    .alias('h', 'help')
    .completion('completion', 'Print a bash/zsh completion script (source it from ~/.bashrc or ~/.zshrc)')
    .strict()
    .recommendCommands()
    .demandCommand(1, 'Name a command (serve, check-config, ...).')
    .wrap(Math.min(110, process.stdout.columns || 110))
    .exitProcess(false)
    .fail((message: string | null, error: Error | undefined) => {
      usageError = message ?? error?.message ?? 'usage error';
      // yargs says only "Did you mean X?" for a mistyped command: name what was typed.
      const typed = argv[0] ?? '';
      if (usageError.startsWith('Did you mean')) usageError = `unknown command "${typed}". ${usageError}`;
      else if (!typed.startsWith('-') && !COMMAND_NAMES.has(typed)) usageError = `unknown command "${typed}" (commands: ${[...COMMAND_NAMES].join(', ')})`;
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
