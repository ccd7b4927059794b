import { ENV_PREFIX } from '../config/overrides.js';

/** The flags each command takes from the environment; the command is argv's first word (`serve` when none). */
const ENV_FLAGS: Readonly<Record<string, readonly string[]>> = {
  serve: ['config', 'log-level', 'listen', 'admin', 'watch'],
  'check-config': ['json'],
  // The container HEALTHCHECK follows what serve is told: the same config and admin address.
  healthcheck: ['config', 'admin'],
};

const BOOLEAN_FLAGS: ReadonlySet<string> = new Set(['watch', 'json']);
const SHORT_ALIASES: Readonly<Record<string, string>> = { config: '-c' };

/**
 * Turns the SSH_BANNER_PROXY_* variables that name a flag of the command into flags
 * (a flag on the command line wins). Every other variable with that prefix is ignored:
 * Kubernetes injects SSH_BANNER_PROXY_SERVICE_HOST, SSH_BANNER_PROXY_PORT=tcp://… and
 * the like into every pod of a namespace with a Service of that name, and reading those
 * as flags would crash-loop the pod on unknown options.
 */
export function withEnvFlags(argv: readonly string[], env: NodeJS.ProcessEnv): string[] {
  const command = argv.find((word) => !word.startsWith('-')) ?? 'serve';
  const flags = ENV_FLAGS[command] ?? [];
  const added: string[] = [];
  for (const flag of flags) {
    const value = env[`${ENV_PREFIX}${flag.toUpperCase().replaceAll('-', '_')}`];
    const given = (word: string): boolean => word === `--${flag}` || word.startsWith(`--${flag}=`) || word === `--no-${flag}` || word === SHORT_ALIASES[flag];
    if (value === undefined || argv.some(given)) continue;
    if (BOOLEAN_FLAGS.has(flag)) added.push(/^(1|true|yes|on)$/i.test(value) ? `--${flag}` : `--no-${flag}`);
    else added.push(`--${flag}=${value}`);
  }
  return [...argv, ...added];
}
