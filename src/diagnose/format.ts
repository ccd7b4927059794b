/**
 * Human output for probe results. JSON output is the result objects themselves.
 */
import { formatMs, type LatencySummary } from '../stats/latency.js';
import type { ProbeDistribution } from './probe-many.js';
import type { ProbeResult } from './probe.js';

export function formatProbe(result: ProbeResult): string {
  const lines: string[] = [];
  const mark = result.ok ? 'OK ' : 'FAIL';
  lines.push(`${mark} ${result.target}: ${result.verdict}${result.code === null ? '' : ` (${result.code})`}`);
  if (result.connectMs !== null) lines.push(`  connect        ${formatMs(result.connectMs)}`);
  if (result.bannerMs !== null) lines.push(`  banner         ${formatMs(result.bannerMs)} after connect`);
  else lines.push(`  failed after   ${formatMs(result.latencyMs)}`);
  if (result.identification !== null) {
    lines.push(`  identification ${result.identification}${result.lineEnding === 'lf' ? '   (bare LF line ending)' : ''}`);
    lines.push(`  software       ${result.softwareVersion ?? ''}${result.comments === null ? '' : `  comments: ${result.comments}`}`);
  }
  if (result.preLines.length > 0) {
    lines.push(`  pre-lines      ${result.preLines.length} line(s) before the identification:`);
    for (const line of result.preLines.slice(0, 5)) lines.push(`                 | ${line}`);
  }
  if (result.protocol !== null) lines.push(`  protocol       ${result.protocol}`);
  if (result.notice !== null) lines.push(`  server said    ${result.notice}`);
  if (result.errno !== null) lines.push(`  errno          ${result.errno}`);
  if (!result.ok) {
    lines.push(`  detail         ${result.message}`);
    lines.push(`  received       ${result.receivedBytes} byte(s)${result.receivedBytes > 0 ? `: "${result.received}"` : ''}`);
  }
  lines.push(...formatAlgorithms(result));
  if (result.hostKey !== null) {
    lines.push('error' in result.hostKey ? `  host key       unavailable: ${result.hostKey.error}` : `  host key       ${result.hostKey.summary}`);
  }
  lines.push(`  hint           ${result.hint}`);
  return `${lines.join('\n')}\n`;
}

function formatAlgorithms(result: ProbeResult): string[] {
  const algorithms = result.algorithms;
  if (algorithms === null) return [];
  if ('error' in algorithms) return [`  kexinit        unavailable: ${algorithms.error}`];
  const weak = new Set(algorithms.weak.map((entry) => `${entry.category}:${entry.name}`));
  const list = (category: keyof typeof algorithms.offered): string =>
    algorithms.offered[category].map((name) => (weak.has(`${category}:${name}`) ? `${name}[WEAK]` : name)).join(', ') || '(none)';
  const lines = [
    `  kex            ${list('kex')}`,
    `  host key algs  ${list('hostKey')}`,
    `  ciphers        ${list('ciphers')}`,
    `  macs           ${list('macs')}`,
    `  compression    ${list('compression')}`,
  ];
  if (algorithms.weak.length === 0) lines.push('  weak           none offered');
  for (const entry of algorithms.weak) lines.push(`  weak           ${entry.category} ${entry.name}: ${entry.why}`);
  return lines;
}

export function formatDistribution(distribution: ProbeDistribution): string {
  const lines: string[] = [];
  const ok = (distribution.verdicts.ok ?? 0) + (distribution.verdicts['slow-banner'] ?? 0);
  lines.push(
    `${distribution.target}: ${distribution.count} probes, concurrency ${distribution.concurrency}: ${ok}/${distribution.count} identified`,
  );
  for (const [verdict, count] of Object.entries(distribution.verdicts)) {
    const share = ((count / distribution.count) * 100).toFixed(0);
    lines.push(`  ${String(count).padStart(5)}/${distribution.count} ${verdict.padEnd(22)} ${share.padStart(3)}%`);
  }
  lines.push(...latencyLine('banner latency', distribution.bannerLatency));
  lines.push(...latencyLine('time to verdict', distribution.latency));
  for (const example of distribution.examples) {
    lines.push('');
    lines.push(`first ${example.verdict}:`);
    lines.push(...formatProbe(example).trimEnd().split('\n').slice(1));
  }
  return `${lines.join('\n')}\n`;
}

function latencyLine(label: string, summary: LatencySummary | null): string[] {
  if (summary === null) return [];
  return [
    `  ${label}: p50 ${formatMs(summary.p50)}  p90 ${formatMs(summary.p90)}  p99 ${formatMs(summary.p99)}  max ${formatMs(summary.max)}`,
  ];
}
