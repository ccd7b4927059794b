/**
 * `npm run man`: writes man/ssh-banner-proxy.1 from the CLI's own help (the same yargs
 * definitions), so the man page cannot say other than --help. A unit test fails when it is stale.
 */
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { runCli } from '../src/cli/main.js';
import { VERSION } from '../src/version.js';

const COMMANDS = ['serve', 'check-config', 'probe', 'loadtest', 'demo', 'healthcheck', 'completion'] as const;

/** What `ssh-banner-proxy ARGS` prints, at a fixed width (a terminal's would differ per machine). */
async function helpText(args: readonly string[]): Promise<string> {
  const chunks: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  const columns = process.stdout.columns;
  Object.defineProperty(process.stdout, 'columns', { value: 100, configurable: true });
  process.stdout.write = ((chunk: string | Uint8Array) => {
    chunks.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString());
    return true;
  }) as typeof process.stdout.write;
  try {
    await runCli([...args, '--help']);
  } finally {
    process.stdout.write = write;
    Object.defineProperty(process.stdout, 'columns', { value: columns, configurable: true });
  }
  return chunks.join('');
}

const escape = (text: string): string => text.replaceAll('\\', '\\e').replace(/^([.'])/gm, '\\&$1');

export async function manPage(): Promise<string> {
  const sections = [
    `.TH SSH-BANNER-PROXY 1 "" "ssh-banner-proxy ${VERSION}" "User Commands"`,
    '.SH NAME',
    'ssh-banner-proxy \\- layer-4 SSH proxy that verifies each backend\'s identification banner before splicing clients through',
    '.SH SYNOPSIS',
    '.nf',
    escape((await helpText([])).trimEnd()),
    '.fi',
    '.SH COMMANDS',
  ];
  for (const command of COMMANDS) sections.push(`.SS ${command}`, '.nf', escape((await helpText([command])).trimEnd()), '.fi');
  sections.push(
    '.SH FILES',
    '.TP',
    '/etc/ssh-banner-proxy/config.yaml',
    'The config in the container image and the systemd unit; its JSON Schema is config/schema.json (check-config --schema).',
    '.SH ENVIRONMENT',
    'SSH_BANNER_PROXY_CONFIG, SSH_BANNER_PROXY_ADMIN, SSH_BANNER_PROXY_LOG_LEVEL, SSH_BANNER_PROXY_LISTEN, SSH_BANNER_PROXY_WATCH: flags of serve (and of healthcheck for the first two); a flag on the command line wins.',
    'NOTIFY_SOCKET, WATCHDOG_USEC, LISTEN_FDS, LISTEN_FDNAMES: systemd notification and socket activation.',
    '.SH EXIT STATUS',
    '0 success; 1 runtime failure (a listener could not open, a probe verdict was not ok); 2 usage error (bad flags, an invalid config file).',
    '.SH SEE ALSO',
    'README.md and docs/ in the package: deploy.md (systemd, containers, Kubernetes), operations.md, metrics.md, probe.md.',
  );
  return `${sections.join('\n')}\n`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await writeFile(new URL('../man/ssh-banner-proxy.1', import.meta.url), await manPage());
}
