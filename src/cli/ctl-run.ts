import { loadConfigFile } from '../config/load.js';
import { ConfigError } from '../errors.js';
import { formatHostPort, parseHostPort, type HostPort } from '../net/address.js';
import type { CtlArgs } from './ctl.js';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE } from './exit-codes.js';
import { callAdmin, reachableHost, type AdminCall } from './admin-http.js';
import { readAdminToken } from '../observe/admin-auth.js';

interface ServerLine {
  readonly name: string;
  readonly state: string;
  readonly admin: string;
  readonly weight: number;
}

export async function ctl(args: CtlArgs): Promise<number> {
  const plan = requestFor(args);
  if (typeof plan === 'string') {
    process.stderr.write(`ctl ${args.action}: ${plan}\n`);
    return EXIT_USAGE;
  }
  let admin: { bind: HostPort; token: string | undefined };
  try {
    admin = await adminOf(args);
  } catch (error) {
    if (!(error instanceof ConfigError) && !(error instanceof UsageError)) throw error;
    process.stderr.write(`${error.message}\n`);
    return EXIT_USAGE;
  }
  const target = { host: reachableHost(admin.bind.host), port: admin.bind.port };
  const answer = await callAdmin(target, { ...plan, token: admin.token }, args.timeout);
  if (typeof answer === 'string') {
    process.stderr.write(`http://${formatHostPort(target)}${plan.path}: ${answer}\n`);
    return EXIT_FAILURE;
  }
  if (args.json) process.stdout.write(answer.body.endsWith('\n') ? answer.body : `${answer.body}\n`);
  const parsed = parseJson(answer.body);
  if (answer.status !== 200) {
    const message = typeof parsed === 'object' && parsed !== null && 'message' in parsed ? String((parsed as { message: unknown }).message) : answer.body.trim();
    if (!args.json) process.stderr.write(`${plan.path}: HTTP ${answer.status}: ${message}\n`);
    return EXIT_FAILURE;
  }
  if (!args.json) process.stdout.write(render(args, parsed));
  return EXIT_OK;
}

class UsageError extends Error {}

type Plan = Omit<AdminCall, 'token'>;

function requestFor(args: CtlArgs): Plan | string {
  if (args.action === 'status') return { method: 'GET', path: '/api/status' };
  if (args.target === undefined || args.target === '') return args.action === 'resolve' ? 'give the pool: ctl resolve POOL' : `give the server: ctl ${args.action} POOL/SERVER`;
  if (args.action === 'resolve') return { method: 'POST', path: '/api/pool/resolve', body: { pool: args.target } };
  const slash = args.target.indexOf('/');
  if (slash <= 0 || slash === args.target.length - 1) return `"${args.target}": expected POOL/SERVER, e.g. main/sshd-0`;
  const pool = args.target.slice(0, slash);
  const server = args.target.slice(slash + 1);
  if (args.action === 'weight') {
    const weight = Number(args.value);
    if (args.value === undefined || !/^\d{1,3}$/.test(args.value) || weight > 256) return `give the weight, a whole number from 0 to 256: ctl weight ${args.target} N (got ${JSON.stringify(args.value ?? '')})`;
    return { method: 'POST', path: '/api/server/weight', body: { pool, server, weight } };
  }
  return { method: 'POST', path: '/api/server/state', body: { pool, server, state: args.action } };
}

/**
 * The admin address and token: from the flags, else from the config the proxy runs with.
 * With --admin the config is optional (a proxy elsewhere, e.g. through a port-forward).
 */
async function adminOf(args: CtlArgs): Promise<{ bind: HostPort; token: string | undefined }> {
  const flagged = args.admin === undefined ? undefined : parseHostPort(args.admin);
  if (typeof flagged === 'string') throw new UsageError(`--admin ${flagged}`);
  const admin = await loadConfigFile(args.config, { admin: args.admin }).then(
    (config) => config.admin,
    (error: unknown) => {
      if (flagged === undefined) throw error;
      return undefined;
    },
  );
  const bind = flagged ?? admin?.bind;
  if (bind === undefined) throw new UsageError(`${args.config} has no admin section (and no --admin): the proxy has no admin endpoint to talk to`);
  const tokenFile = args.tokenFile ?? (args.tokenEnv === undefined ? admin?.tokenFile : undefined);
  const token = await readAdminToken({ tokenFile, tokenEnv: args.tokenEnv ?? admin?.tokenEnv ?? 'SBP_ADMIN_TOKEN' }, process.env).catch((error: NodeJS.ErrnoException) => {
    throw new UsageError(`cannot read the admin token from ${tokenFile ?? ''}: ${error.code ?? error.message}`);
  });
  return { bind, token };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** One line per server: `pool/server  STATE  admin=…  weight=…`. */
function render(args: CtlArgs, answer: unknown): string {
  const lines: string[] = [];
  const serverLine = (pool: string, server: ServerLine): string => `${pool}/${server.name}  ${server.state}  admin=${server.admin}  weight=${server.weight}`;
  if (args.action === 'status') {
    const pools = (answer as { pools?: { name: string; servers: ServerLine[] }[] } | undefined)?.pools ?? [];
    for (const pool of pools) for (const server of pool.servers) lines.push(serverLine(pool.name, server));
  } else {
    const outcome = answer as { pool: string; servers: ServerLine[]; resolvedSets?: number; workers?: { applied: number; of: number } };
    if (args.action === 'resolve') lines.push(`${outcome.pool}: ${outcome.resolvedSets ?? 0} DNS sets looked up`);
    for (const server of outcome.servers) lines.push(serverLine(outcome.pool, server));
    if (outcome.workers !== undefined) lines.push(`applied by ${outcome.workers.applied} of ${outcome.workers.of} workers`);
  }
  return lines.map((line) => `${line}\n`).join('');
}
