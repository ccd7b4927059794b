/**
 * Load-test results: per-target summary (successes, failures by reason, rate, latency
 * percentiles per phase, histogram), rendered for humans (side by side when comparing),
 * as JSON, or as CSV (one row per attempt).
 */
import type { LoadAttemptRecord, LoadMode } from './client.js';
import type { LoadTestRun, LoadTarget } from './runner.js';
import { formatMs, histogram, renderHistogram, summarise, type HistogramBucket, type LatencySummary } from '../stats/latency.js';

export const LATENCY_PHASES = ['connect', 'banner', 'handshake', 'auth', 'total'] as const;
export type LatencyPhase = (typeof LATENCY_PHASES)[number];

/** Where an attempt failed: the phases a client goes through, in order. */
export const FAILURE_PHASES = ['connect', 'banner', 'key exchange', 'authentication', 'session'] as const;
export type FailurePhase = (typeof FAILURE_PHASES)[number];

/**
 * The phase of a failure reason. Within `banner` the reasons stay apart, so a penalising
 * or throttling server (`throttled`: it wrote "Not allowed at this time") is told from one
 * that resets or closes (`reset-before-banner`, `closed-before-banner`).
 */
export function failurePhase(reason: string): FailurePhase {
  switch (reason) {
    case 'refused':
    case 'connect-timeout':
    case 'connect-error':
    case 'dns-error':
      return 'connect';
    case 'kex-failed':
    case 'handshake-timeout':
    case 'ssh-closed':
      return 'key exchange';
    case 'auth-failed':
      return 'authentication';
    case 'command-failed':
      return 'session';
    default:
      return 'banner';
  }
}

export interface TargetSummary {
  readonly target: string;
  readonly mode: LoadMode;
  readonly attempts: number;
  readonly successes: number;
  readonly failures: number;
  /** Reason → count, most frequent first. */
  readonly failuresByReason: Readonly<Record<string, number>>;
  /** Phase → failures in it (every phase present, 0 when none). */
  readonly failuresByPhase: Readonly<Record<FailurePhase, number>>;
  /** Completed attempts per second over the run. */
  readonly achievedRate: number;
  /** Successful attempts only. */
  readonly latency: Readonly<Partial<Record<LatencyPhase, LatencySummary>>>;
  /** Total time of successful attempts. */
  readonly histogram: readonly HistogramBucket[];
  /** Why later attempts were refused, when the load itself most likely caused it (see `selfPenaltyNote`). */
  readonly note?: string;
}

export interface LoadTestReport {
  readonly mode: LoadMode;
  readonly loop: 'closed' | 'open';
  readonly clients: number | null;
  readonly rate: number | null;
  readonly elapsedMs: number;
  readonly stoppedBy: LoadTestRun['stoppedBy'];
  readonly skipped: number;
  readonly targets: readonly TargetSummary[];
}

const PHASE_FIELD: Readonly<Record<LatencyPhase, keyof LoadAttemptRecord>> = {
  connect: 'connectMs',
  banner: 'bannerMs',
  handshake: 'handshakeMs',
  auth: 'authMs',
  total: 'totalMs',
};

export function summariseTarget(target: string, mode: LoadMode, records: readonly LoadAttemptRecord[], elapsedMs: number): TargetSummary {
  const mine = records.filter((record) => record.target === target);
  const successes = mine.filter((record) => record.ok);
  const reasons = new Map<string, number>();
  for (const record of mine) if (record.reason !== null) reasons.set(record.reason, (reasons.get(record.reason) ?? 0) + 1);
  const latency: Partial<Record<LatencyPhase, LatencySummary>> = {};
  for (const phase of LATENCY_PHASES) {
    const values = successes.map((record) => record[PHASE_FIELD[phase]]).filter((value): value is number => typeof value === 'number');
    const summary = summarise(values);
    if (summary !== null) latency[phase] = summary;
  }
  return {
    target,
    mode,
    attempts: mine.length,
    successes: successes.length,
    failures: mine.length - successes.length,
    failuresByReason: Object.fromEntries([...reasons.entries()].sort((a, b) => b[1] - a[1])),
    failuresByPhase: byPhase(reasons),
    achievedRate: elapsedMs > 0 ? Math.round((mine.length / (elapsedMs / 1000)) * 10) / 10 : 0,
    latency,
    histogram: histogram(successes.map((record) => record.totalMs)),
    ...optional('note', selfPenaltyNote(mode, mine)),
  };
}

function optional<K extends string, V>(key: K, value: V | undefined): { [key in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [key in K]?: V };
}

/**
 * Modes `banner` and `kex` end every connection without logging in. OpenSSH 9.8+
 * (PerSourcePenalties `noauth`) and ssh-banner-proxy's own penalties charge each one to
 * the source address, and past a few seconds' worth they refuse it with "Not allowed at
 * this time": the load generator locks its own host out. Refusals that start after
 * attempts had succeeded are that, most likely; the note says so and how to exempt it.
 */
export function selfPenaltyNote(mode: LoadMode, records: readonly LoadAttemptRecord[]): string | undefined {
  if (mode !== 'banner' && mode !== 'kex') return undefined;
  const ordered = [...records].sort((a, b) => a.startMs - b.startMs);
  const firstRefused = ordered.findIndex((record) => record.reason === 'throttled');
  if (firstRefused <= 0) return undefined;
  const succeededBefore = ordered.slice(0, firstRefused).filter((record) => record.ok).length;
  if (succeededBefore === 0) return undefined;
  const refused = ordered.filter((record) => record.reason === 'throttled').length;
  return (
    `${refused} attempt(s) were refused with "Not allowed at this time" after ${succeededBefore} had succeeded. Mode ${mode} ends every connection without logging in, ` +
    'which OpenSSH 9.8+ PerSourcePenalties (noauth) and ssh-banner-proxy\'s own penalties charge to this host\'s address: the load test has most likely penalised its own source. ' +
    'Exempt the load generator\'s address: in ssh-banner-proxy, penalties.exempt: [<address>]; in sshd_config, PerSourcePenaltyExemptList <address> (docs/penalties.md). Or use --mode auth.'
  );
}

export function buildReport(
  run: LoadTestRun,
  targets: readonly LoadTarget[],
  settings: { readonly mode: LoadMode; readonly clients?: number | undefined; readonly rate?: number | undefined },
): LoadTestReport {
  return {
    mode: settings.mode,
    loop: settings.rate === undefined ? 'closed' : 'open',
    clients: settings.rate === undefined ? (settings.clients ?? 1) : null,
    rate: settings.rate ?? null,
    elapsedMs: Math.round(run.elapsedMs),
    stoppedBy: run.stoppedBy,
    skipped: run.skipped,
    targets: targets.map((target) => summariseTarget(target.label, settings.mode, run.records, run.elapsedMs)),
  };
}

/** Side by side: one column per target. */
export function formatReport(report: LoadTestReport): string {
  const load = report.loop === 'closed' ? `${report.clients} client(s) per target` : `${report.rate}/s per target`;
  const lines = [
    `loadtest: mode ${report.mode}, ${load}, ${(report.elapsedMs / 1000).toFixed(1)}s (stopped by ${report.stoppedBy})` +
      (report.skipped > 0 ? `, ${report.skipped} launches skipped (too many in flight)` : ''),
    '',
  ];
  const columns = report.targets;
  const width = Math.max(22, ...columns.map((column) => column.target.length + 2));
  const row = (label: string, cells: readonly string[]): string => `${label.padEnd(18)}${cells.map((cell) => cell.padStart(width)).join('')}`;
  lines.push(row('', columns.map((column) => column.target)));
  lines.push(row('attempts', columns.map((column) => String(column.attempts))));
  lines.push(row('ok', columns.map((column) => `${column.successes} (${percent(column.successes, column.attempts)})`)));
  lines.push(row('failed', columns.map((column) => `${column.failures} (${percent(column.failures, column.attempts)})`)));
  const reasons = [...new Set(columns.flatMap((column) => Object.keys(column.failuresByReason)))];
  // By phase, each phase's reasons under it: a glance tells a penalising server (banner: throttled) from a flaky network (connect).
  for (const phase of FAILURE_PHASES) {
    const inPhase = reasons.filter((reason) => failurePhase(reason) === phase);
    if (inPhase.length === 0) continue;
    lines.push(row(`  at ${phase}`, columns.map((column) => String(column.failuresByPhase[phase]))));
    for (const reason of inPhase) lines.push(row(`    ${reason}`, columns.map((column) => String(column.failuresByReason[reason] ?? 0))));
  }
  lines.push(row('rate', columns.map((column) => `${column.achievedRate}/s`)));
  for (const phase of LATENCY_PHASES) {
    if (!columns.some((column) => column.latency[phase] !== undefined)) continue;
    lines.push(row(`${phase} p50/p90`, columns.map((column) => pair(column.latency[phase], 'p50', 'p90'))));
    lines.push(row(`${phase} p99/max`, columns.map((column) => pair(column.latency[phase], 'p99', 'max'))));
  }
  for (const column of columns) if (column.note !== undefined) lines.push('', `note (${column.target}): ${column.note}`);
  for (const column of columns) {
    lines.push('', `total time of successful attempts, ${column.target}:`);
    lines.push(...(column.histogram.length === 0 ? ['  (no successful attempts)'] : renderHistogram(column.histogram)));
  }
  return `${lines.join('\n')}\n`;
}

function byPhase(reasons: ReadonlyMap<string, number>): Record<FailurePhase, number> {
  const counts = Object.fromEntries(FAILURE_PHASES.map((phase) => [phase, 0])) as Record<FailurePhase, number>;
  for (const [reason, count] of reasons) counts[failurePhase(reason)] += count;
  return counts;
}

function pair(summary: LatencySummary | undefined, a: 'p50' | 'p90' | 'p99' | 'max', b: 'p50' | 'p90' | 'p99' | 'max'): string {
  if (summary === undefined) return '-';
  return `${formatMs(summary[a])} / ${formatMs(summary[b])}`;
}

function percent(part: number, whole: number): string {
  return whole === 0 ? '-' : `${((part / whole) * 100).toFixed(part === whole || part === 0 ? 0 : 1)}%`;
}

const CSV_COLUMNS: readonly (keyof LoadAttemptRecord)[] = ['target', 'index', 'startMs', 'ok', 'reason', 'connectMs', 'bannerMs', 'handshakeMs', 'authMs', 'totalMs'];

export function formatCsv(records: readonly LoadAttemptRecord[]): string {
  const sorted = [...records].sort((a, b) => a.startMs - b.startMs);
  const cell = (value: unknown): string => {
    if (value === null || value === undefined) return '';
    const text = String(value);
    return /[",\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
  };
  const lines = [CSV_COLUMNS.join(','), ...sorted.map((record) => CSV_COLUMNS.map((column) => cell(record[column])).join(','))];
  return `${lines.join('\n')}\n`;
}
