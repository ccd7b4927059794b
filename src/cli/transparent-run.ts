import { isIP } from 'node:net';
import { isLocalAddress, runCommand } from '../net/run-command.js';
import { routingPlan, type RoutingStep, type Topology } from '../net/transparent-routing.js';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE } from './exit-codes.js';
import type { TransparentArgs } from './transparent.js';

export async function transparent(args: TransparentArgs): Promise<number> {
  const problems = validate(args);
  if (problems.length > 0) {
    process.stderr.write(problems.map((problem) => `transparent: ${problem}\n`).join(''));
    return EXIT_USAGE;
  }
  for (const backend of args.backend) {
    const topology: Topology = args.topology === 'auto' ? (isLocalAddress(backend) ? 'sidecar' : 'bastion') : args.topology;
    process.stdout.write(`${backend}: ${topology}${args.topology === 'auto' ? (topology === 'sidecar' ? ' (an address of this host)' : ' (not an address of this host)') : ''}\n`);
    const steps = routingPlan({ backend, topology, table: args.table, mark: args.mark, ports: args.port });
    for (const step of args.action === 'setup' ? steps : [...steps].reverse()) {
      const failed = args.action === 'setup' ? await setUp(step, args.dryRun) : await tearDown(step, args.dryRun);
      if (failed !== undefined) {
        process.stderr.write(`transparent: ${step.what}: ${failed}\n`);
        return EXIT_FAILURE;
      }
    }
  }
  return EXIT_OK;
}

function validate(args: TransparentArgs): string[] {
  const problems: string[] = [];
  for (const backend of args.backend) {
    if (isIP(backend) === 0) problems.push(`--backend ${backend}: give the IP address sshd listens on`);
    else if (/^127\.|^::1$/.test(backend)) problems.push(`--backend ${backend}: a loopback address cannot work (the kernel refuses loopback destinations for non-local sources)`);
  }
  if (!Number.isInteger(args.table) || args.table < 1 || args.table > 0xfffffffe || args.table === 253 || args.table === 254 || args.table === 255) {
    problems.push(`--table ${args.table}: give a table number of its own (not 253-255: default, main, local)`);
  }
  if (!Number.isInteger(args.mark) || args.mark < 1 || args.mark > 0xffffffff) problems.push(`--mark ${args.mark}: give a mark from 1 to 4294967295`);
  for (const port of args.port) if (!Number.isInteger(port) || port < 1 || port > 65535) problems.push(`--port ${port}: give a port from 1 to 65535`);
  return problems;
}

/** Adds the step unless its check says it is there; the error text, if it failed. */
async function setUp(step: RoutingStep, dryRun: boolean): Promise<string | undefined> {
  if (step.check !== undefined && !dryRun) {
    const present = await run(step.check);
    // `ip rule show <selector>` exits 0 either way: it prints the matching rules.
    if (present.ok && (step.check[0] !== 'ip' || present.stdout.trim() !== '')) {
      process.stdout.write(`  present: ${step.what}\n`);
      return undefined;
    }
  }
  return announce(step.apply, dryRun);
}

async function tearDown(step: RoutingStep, dryRun: boolean): Promise<string | undefined> {
  if (step.remove === undefined) return undefined;
  if (step.check !== undefined && !dryRun) {
    const present = await run(step.check);
    if (!present.ok || (step.check[0] === 'ip' && present.stdout.trim() === '')) {
      process.stdout.write(`  absent: ${step.what}\n`);
      return undefined;
    }
  }
  return announce(step.remove, dryRun);
}

async function announce(command: readonly string[], dryRun: boolean): Promise<string | undefined> {
  process.stdout.write(`  ${dryRun ? 'would run' : 'run'}: ${command.join(' ')}\n`);
  if (dryRun) return undefined;
  const result = await run(command);
  return result.ok ? undefined : result.error;
}

async function run(command: readonly string[]): Promise<{ readonly ok: true; readonly stdout: string } | { readonly ok: false; readonly error: string }> {
  const result = await runCommand(command);
  if (result.ok) return result;
  if (result.missing) return { ok: false, error: `${command[0] ?? ''} is not installed (iproute2 for ip, iptables for bastion marks)` };
  return { ok: false, error: `${command.join(' ')}: ${result.stderr || result.message}` };
}
