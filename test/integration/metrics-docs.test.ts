import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { parse } from 'yaml';
import { startFixtureBackend } from '../fixtures/backends/hostile-backends.js';
import { scrape, type Metrics } from '../fixtures/proxy/prometheus.js';
import { startProxy } from '../fixtures/proxy/proxy.js';
import { startRedis } from '../fixtures/backends/redis-server.js';

const HISTOGRAM_SUFFIX = /_(bucket|count|sum)$/;
/** Labels Prometheus adds at scrape time, not the exporter. */
const TARGET_LABELS = new Set(['instance', 'job', 'le']);

interface Family {
  readonly type: string;
  readonly labels: Set<string>;
}

function families(metrics: Metrics): Map<string, Family> {
  const result = new Map<string, Family>();
  for (const match of metrics.text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    result.set(match[1] as string, { type: match[2] as string, labels: new Set() });
  }
  for (const sample of metrics.samples) {
    const family = result.get(sample.name) ?? result.get(sample.name.replace(HISTOGRAM_SUFFIX, ''));
    for (const label of Object.keys(sample.labels)) family?.labels.add(label);
  }
  return result;
}

/** Every `name{labels}` or bare `name` of ours (or of the default metrics) in a PromQL expression. */
function selectors(expr: string): { name: string; labels: string[] }[] {
  const found: { name: string; labels: string[] }[] = [];
  for (const match of expr.matchAll(/\b((?:sshproxy|process|nodejs)_[a-z0-9_]+)(\{([^}]*)\})?/g)) {
    const labels = [...(match[3] ?? '').matchAll(/([a-z_]+)\s*(?:=~|!=|!~|=)/g)].map((m) => m[1] as string);
    found.push({ name: match[1] as string, labels });
  }
  return found;
}

function checkExpr(expr: string, known: Map<string, Family>, where: string): void {
  const used = selectors(expr);
  assert.ok(used.length > 0, `${where}: no metric in ${expr}`);
  for (const { name, labels } of used) {
    const family = known.get(name) ?? known.get(name.replace(HISTOGRAM_SUFFIX, ''));
    assert.ok(family, `${where}: ${name} is not exported`);
    for (const label of labels) {
      if (TARGET_LABELS.has(label)) continue;
      assert.ok(family.labels.has(label), `${where}: ${name} has no label "${label}" (has ${[...family.labels].join(', ')})`);
    }
  }
}

test('docs/metrics.md, config/alerts.yaml and config/grafana-dashboard.json name only exported metrics and labels', async (t) => {
  const echo = await startFixtureBackend('ssh-echo');
  t.after(() => echo.close());
  // With a shared store, so its metrics (registered only then) are checked too.
  const store = await startRedis();
  t.after(() => store.stop());
  const proxy = await startProxy({ servers: [{ name: 'echo', host: echo.host, port: echo.port }], config: { admin: { bind: '127.0.0.1:0' }, cluster: { store: store.url, prefix: 'docs:' } } });
  t.after(() => proxy.stop());
  const known = families(await scrape(proxy.runtime.adminPort));
  // Series that have no sample yet (failures by reason): their label names come from the registry.
  for (const [name, family] of known) {
    const metric = proxy.runtime.metrics.registry.getSingleMetric(name) as unknown as { labelNames?: string[] } | undefined;
    for (const label of metric?.labelNames ?? []) family.labels.add(label);
  }
  const ours = [...known.keys()].filter((name) => name.startsWith('sshproxy_'));
  assert.ok(ours.length >= 18, ours.join(', '));

  // Docs: every metric of ours has a table row with its type, and the doc names nothing else.
  const doc = await readFile(new URL('../../docs/metrics.md', import.meta.url), 'utf8');
  for (const name of ours) {
    const row = new RegExp(`^\\| \`${name}\` \\| (\\w+) \\|`, 'm').exec(doc);
    assert.ok(row, `docs/metrics.md documents ${name}`);
    assert.equal(row[1], known.get(name)?.type, `${name} type in docs`);
  }
  for (const match of doc.matchAll(/\bsshproxy_[a-z_]+/g)) {
    const name = match[0].replace(HISTOGRAM_SUFFIX, '');
    assert.ok(known.has(name) || known.has(match[0]), `docs/metrics.md mentions unknown ${match[0]}`);
  }
  for (const block of doc.matchAll(/```promql\n([\s\S]*?)```/g)) {
    for (const line of (block[1] as string).split('\n')) if (line.includes('sshproxy_')) checkExpr(line, known, 'docs PromQL');
  }

  // Alert rules: the three the issue asks for exist, each with a summary.
  const rules = parse(await readFile(new URL('../../config/alerts.yaml', import.meta.url), 'utf8')) as {
    groups: { name: string; rules: { alert: string; expr: string; for?: string; annotations: { summary: string } }[] }[];
  };
  const all = rules.groups.flatMap((group) => group.rules);
  for (const rule of all) {
    checkExpr(rule.expr, known, `alert ${rule.alert}`);
    assert.ok(rule.annotations.summary.length > 0);
  }
  const byName = new Map(all.map((rule) => [rule.alert, rule]));
  assert.match(byName.get('SshProxyServerDown')?.expr ?? '', /sshproxy_server_up == 0/);
  assert.match(byName.get('SshProxyBannerP99Slow')?.expr ?? '', /histogram_quantile\(0\.99,[\s\S]*sshproxy_banner_latency_seconds_bucket[\s\S]*> 5/);
  assert.match(byName.get('SshProxySessionsFailing')?.expr ?? '', /sshproxy_sessions_total\{result!="spliced"\}/);

  // Dashboard: valid JSON, every panel query uses exported metrics and labels; covers the key metrics.
  const dashboard = JSON.parse(await readFile(new URL('../../config/grafana-dashboard.json', import.meta.url), 'utf8')) as {
    panels: { type: string; title: string; targets?: { expr: string }[] }[];
  };
  const exprs = dashboard.panels.flatMap((panel) => (panel.targets ?? []).map((target) => ({ title: panel.title, expr: target.expr })));
  assert.ok(exprs.length >= 15);
  for (const { title, expr } of exprs) checkExpr(expr.replace(/\$__rate_interval/g, '5m'), known, `panel "${title}"`);
  const charted = new Set(exprs.flatMap(({ expr }) => selectors(expr).map((s) => s.name.replace(HISTOGRAM_SUFFIX, ''))));
  for (const name of ours.filter((n) => n !== 'sshproxy_build_info')) assert.ok(charted.has(name), `dashboard charts ${name}`);

  // Every ${VAR} the dashboard uses is one of its own variables: an import-time __inputs
  // placeholder would stay literal under file or sidecar provisioning and break every panel.
  const text = JSON.stringify(dashboard);
  const variables = new Set((dashboard as unknown as { templating: { list: { name: string }[] } }).templating.list.map((variable) => variable.name));
  const used = new Set([...text.matchAll(/\$\{(\w+)\}/g)].map((match) => match[1] ?? ''));
  assert.ok(used.has('DS_PROMETHEUS'));
  for (const name of used) assert.ok(variables.has(name), `\${${name}} is defined as a dashboard variable`);
  assert.equal((dashboard as unknown as { __inputs?: unknown }).__inputs, undefined, 'no import-only inputs');
});
