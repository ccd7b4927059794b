import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { formatHostPort, normaliseAddress, type HostPort } from './address.js';
import { isLocalAddress, runCommand } from './run-command.js';
import { loadTransparentSockets, TransparentSocketError } from './transparent-socket.js';

/** Documentation addresses (RFC 5737, RFC 3849): a route lookup for a client the kernel has never seen, and no packet sent. */
const SAMPLE_CLIENT = { 4: '192.0.2.1', 6: '2001:db8::1' } as const;

export interface TransparentCheckOptions {
  /** The backends of every transparent pool. */
  readonly servers: readonly HostPort[];
  /** iproute2's `ip`, run for route lookups (tests point it elsewhere to see it missing). */
  readonly ipCommand?: string;
}

export interface TransparentCheckResult {
  /** What stops transparent mode from working: start must fail with these. */
  readonly problems: readonly string[];
  /** What could not be checked. */
  readonly warnings: readonly string[];
}

/**
 * Before any listener opens: is every piece of transparent source addressing in place?
 * The bindings (koffi), the capability (the socket option itself is tried), and per
 * backend a return route: replies to a client's address must be delivered to this host.
 * Each missing piece is named, so that start fails clearly instead of every session
 * timing out in connect.
 */
export async function checkTransparentSetup(options: TransparentCheckOptions): Promise<TransparentCheckResult> {
  const problems: string[] = [];
  const warnings: string[] = [];
  let sockets;
  try {
    sockets = await loadTransparentSockets();
  } catch (error) {
    return { problems: [`source: transparent: ${(error as Error).message}`], warnings };
  }
  const backends = await resolveAll(options.servers, problems);
  for (const family of new Set(backends.map((backend) => backend.family))) {
    try {
      sockets.close(sockets.open(SAMPLE_CLIENT[family]));
    } catch (error) {
      if (!(error instanceof TransparentSocketError)) throw error;
      problems.push(`source: transparent: cannot make a transparent IPv${family} socket, ${error.message}`);
    }
  }
  if (problems.length > 0) return { problems, warnings };
  for (const backend of backends) {
    const shown = formatHostPort(backend.server);
    const route = await routeType(options.ipCommand ?? 'ip', backend, isLocalAddress(backend.address));
    if (route.kind === 'unknown') warnings.push(`source: transparent: cannot check the return route for ${shown}: ${route.message}`);
    else if (route.kind !== 'local') problems.push(missingRoute(backend, shown, isLocalAddress(backend.address)));
  }
  return { problems, warnings };
}

interface Backend {
  readonly server: HostPort;
  readonly address: string;
  readonly family: 4 | 6;
}

async function resolveAll(servers: readonly HostPort[], problems: string[]): Promise<Backend[]> {
  const backends: Backend[] = [];
  for (const server of servers) {
    try {
      const address = isIP(server.host) !== 0 ? server.host : (await lookup(server.host)).address;
      backends.push({ server, address: normaliseAddress(address) ?? address, family: isIP(address) === 6 ? 6 : 4 });
    } catch (error) {
      problems.push(`source: transparent: cannot resolve ${formatHostPort(server)} to check its route: ${(error as Error).message}`);
    }
  }
  return backends;
}

type RouteVerdict = { readonly kind: 'local' | 'elsewhere' } | { readonly kind: 'unknown'; readonly message: string };

/**
 * Where the kernel sends a reply from this backend to a client's address. A backend on
 * this host (sidecar): the route looked up from its address. Another host (bastion): the
 * replies arrive marked (iptables MARK), so the route looked up for each fwmark rule.
 */
async function routeType(ip: string, backend: Backend, isLocal: boolean): Promise<RouteVerdict> {
  const client = SAMPLE_CLIENT[backend.family];
  const family = `-${backend.family}`;
  if (isLocal) return routeOf(await run(ip, [family, '-j', 'route', 'get', client, 'from', backend.address]));
  const rules = await run(ip, [family, '-j', 'rule', 'show']);
  if (rules.kind === 'unknown') return rules;
  const marks = (JSON.parse(rules.stdout) as { fwmark?: string }[]).flatMap((rule) => (rule.fwmark === undefined ? [] : [rule.fwmark]));
  for (const mark of marks) {
    const verdict = routeOf(await run(ip, [family, '-j', 'route', 'get', client, 'mark', mark]));
    if (verdict.kind !== 'elsewhere') return verdict;
  }
  return { kind: 'elsewhere' };
}

function routeOf(result: RunResult): RouteVerdict {
  if (result.kind === 'unknown') return result;
  const [route] = JSON.parse(result.stdout) as { type?: string }[];
  return { kind: route?.type === 'local' ? 'local' : 'elsewhere' };
}

function missingRoute(backend: Backend, shown: string, isLocal: boolean): string {
  const setup = `ssh-banner-proxy transparent setup --backend ${backend.address}`;
  return isLocal
    ? `source: transparent: sshd's replies from ${shown} to client addresses would leave this host: no rule delivers them locally (run \`${setup}\`, or: ip rule add from ${backend.address} lookup 100; ip route add local ${backend.family === 6 ? '::/0' : '0.0.0.0/0'} dev lo table 100)`
    : `source: transparent: ${shown} is on another host, and no fwmark rule delivers its marked replies locally (run \`${setup}\` here, and route the clients' addresses via this host on the backend; docs/identity.md)`;
}

type RunResult = { readonly kind: 'ok'; readonly stdout: string } | { readonly kind: 'unknown'; readonly message: string };

async function run(command: string, args: readonly string[]): Promise<RunResult> {
  const result = await runCommand([command, ...args], 5000);
  if (result.ok) return { kind: 'ok', stdout: result.stdout.trim() === '' ? '[]' : result.stdout };
  if (result.missing) return { kind: 'unknown', message: `${command} (iproute2) is not installed` };
  // `ip route get` fails (network unreachable) when no route at all leads to a client: not local either.
  if (/unreachable/i.test(result.stderr)) return { kind: 'ok', stdout: '[{"type":"unreachable"}]' };
  return { kind: 'unknown', message: `${command} ${args.join(' ')}: ${result.stderr || result.message}` };
}
