// The alert rules, checked and unit-tested by Prometheus's own promtool (Debian's
// `prometheus` package): each alert fires on the series that mean it and stays silent
// on those that must not page (config/alerts.test.yaml).
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { runProcess } from '../fixtures/run-process.js';

const PROMTOOL = '/usr/bin/promtool';
const CONFIG = fileURLToPath(new URL('../../config/', import.meta.url));
const skip = existsSync(PROMTOOL) ? false : 'promtool (Debian package prometheus) is not installed';

test('promtool check rules accepts config/alerts.yaml', { skip }, async () => {
  const result = await runProcess(PROMTOOL, ['check', 'rules', `${CONFIG}alerts.yaml`], { timeoutMs: 30_000 });
  assert.equal(result.code, 0, result.stdout + result.stderr);
  const rules = (await readFile(`${CONFIG}alerts.yaml`, 'utf8')).match(/^\s+- alert: /gm)?.length ?? 0;
  assert.ok(rules >= 11);
  assert.match(result.stdout, new RegExp(`SUCCESS: ${rules} rules found`));
});

test('promtool test rules: every alert fires in config/alerts.test.yaml, with its runbook', { skip }, async () => {
  const result = await runProcess(PROMTOOL, ['test', 'rules', `${CONFIG}alerts.test.yaml`], { timeoutMs: 30_000 });
  assert.equal(result.code, 0, result.stdout + result.stderr);
  const { parse } = await import('yaml');
  const rules = parse(await readFile(`${CONFIG}alerts.yaml`, 'utf8')) as { groups: { rules: { alert: string; annotations: { runbook_url?: string } }[] }[] };
  const tests = await readFile(`${CONFIG}alerts.test.yaml`, 'utf8');
  const runbook = await readFile(new URL('../../docs/runbook.md', import.meta.url), 'utf8');
  for (const rule of rules.groups.flatMap((group) => group.rules)) {
    assert.match(tests, new RegExp(`alertname: ${rule.alert}\\n\\s+exp_alerts:\\n\\s+- exp_labels`), `${rule.alert} is shown firing`);
    const anchor = rule.annotations.runbook_url?.split('#')[1];
    assert.ok(anchor, `${rule.alert} has a runbook_url`);
    assert.ok(runbook.toLowerCase().includes(`## ${rule.alert.toLowerCase()}`), `docs/runbook.md has a section for ${rule.alert} (#${anchor})`);
  }
});
