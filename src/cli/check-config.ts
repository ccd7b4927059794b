import type { Argv } from 'yargs';
import { stringify } from 'yaml';
import { loadConfigFile } from '../config/load.js';
import { effectiveConfig } from '../config/effective.js';
import { ConfigError } from '../errors.js';
import { EXIT_OK, EXIT_USAGE } from './exit-codes.js';
import type { CliCommand } from './main.js';

export const checkConfigCommand: CliCommand = {
  register(cli, setExitCode) {
    return cli.command(
      'check-config [file]',
      'Validate a config file and print the effective config (defaults filled in)',
      (command: Argv) =>
        command
          .positional('file', { type: 'string', describe: 'YAML config file' })
          .option('json', { type: 'boolean', default: false, describe: 'Print JSON instead of YAML' })
          .option('schema', { type: 'boolean', default: false, describe: 'Print the config file\'s JSON Schema (for editors; also config/schema.json)' })
          .check((args) => {
            if (args.schema || typeof args.file === 'string') return true;
            throw new Error('name a config file to check (or --schema to print the JSON Schema)');
          }),
      (args) => setExitCode(args.schema ? printSchema() : checkConfig(String(args.file), Boolean(args.json))),
    );
  },
};

async function printSchema(): Promise<number> {
  const { configJsonSchema } = await import('../config/json-schema.js');
  process.stdout.write(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
  return EXIT_OK;
}

async function checkConfig(file: string, json: boolean): Promise<number> {
  try {
    const config = effectiveConfig(await loadConfigFile(file));
    process.stdout.write(json ? `${JSON.stringify(config, null, 2)}\n` : stringify(config));
    process.stderr.write(`${file}: configuration is valid\n`);
    return EXIT_OK;
  } catch (error) {
    if (error instanceof ConfigError) {
      // --json: the problems as JSON on stdout too, for tools; the human text stays on stderr.
      if (json) process.stdout.write(`${JSON.stringify({ valid: false, file, problems: error.problems }, null, 2)}\n`);
      process.stderr.write(`${error.message}\n`);
      return EXIT_USAGE;
    }
    throw error;
  }
}
