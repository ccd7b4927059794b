import { isIP } from 'node:net';

/** Where the backend is: on this host or pod (`sidecar`), or on another host that routes clients via this one (`bastion`). */
export type Topology = 'sidecar' | 'bastion';

export interface RoutingPlanOptions {
  readonly backend: string;
  readonly topology: Topology;
  /** The routing table the local route lives in (HAProxy's documents use 100). */
  readonly table: number;
  /** bastion: the firewall mark for the backend's replies. */
  readonly mark: number;
  /** bastion: the backend's SSH ports (its replies come from them). */
  readonly ports: readonly number[];
}

/**
 * One idempotent step: `check` exits 0 when the step is already in place (then `apply` is
 * skipped on setup); `remove` undoes it on teardown (its failure when absent is ignored).
 */
export interface RoutingStep {
  readonly what: string;
  readonly check: readonly string[] | undefined;
  readonly apply: readonly string[];
  readonly remove: readonly string[] | undefined;
}

/**
 * The rules that bring a backend's replies to a client's address back to this host,
 * as HAProxy documents them for `usesrc clientip`. Sidecar: replies from the backend's
 * own (local) address are looked up in a table whose default route is local. Bastion:
 * replies arriving from the backend's SSH port are marked, and marked packets use that table.
 */
export function routingPlan(options: RoutingPlanOptions): RoutingStep[] {
  const v6 = isIP(options.backend) === 6;
  const family = v6 ? '-6' : '-4';
  const table = String(options.table);
  const localDefault = v6 ? '::/0' : '0.0.0.0/0';
  const route: RoutingStep = {
    what: `table ${table}: every destination is local`,
    check: undefined,
    // `replace` is idempotent by itself; the route stays on teardown while another rule may use the table.
    apply: ['ip', family, 'route', 'replace', 'local', localDefault, 'dev', 'lo', 'table', table],
    remove: undefined,
  };
  if (options.topology === 'sidecar') {
    const selector = ['from', options.backend, 'lookup', table];
    return [
      route,
      {
        what: `replies from ${options.backend} use table ${table}`,
        check: ['ip', family, 'rule', 'show', ...selector],
        apply: ['ip', family, 'rule', 'add', ...selector],
        remove: ['ip', family, 'rule', 'del', ...selector],
      },
    ];
  }
  const mark = `0x${options.mark.toString(16)}`;
  const iptables = v6 ? 'ip6tables' : 'iptables';
  const selector = ['fwmark', mark, 'lookup', table];
  const marks = options.ports.map((port): RoutingStep => {
    const match = ['PREROUTING', '-p', 'tcp', '-s', options.backend, '--sport', String(port), '-j', 'MARK', '--set-mark', mark];
    return {
      what: `replies from ${options.backend} port ${port} are marked ${mark}`,
      check: [iptables, '-t', 'mangle', '-C', ...match],
      apply: [iptables, '-t', 'mangle', '-A', ...match],
      remove: [iptables, '-t', 'mangle', '-D', ...match],
    };
  });
  return [
    route,
    {
      what: `marked packets (${mark}) use table ${table}`,
      check: ['ip', family, 'rule', 'show', ...selector],
      apply: ['ip', family, 'rule', 'add', ...selector],
      remove: ['ip', family, 'rule', 'del', ...selector],
    },
    ...marks,
  ];
}
