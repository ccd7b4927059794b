/**
 * README says what the proxy does: its reason-code table names exactly the codes the
 * code has, the admin endpoints it names answer, the readiness reasons it names exist,
 * and the commands it lists are the CLI's.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { ATTEMPT_FAILURE_CODES, SESSION_FAILURE_CODES, SPLICED_CLOSE_CODES } from '../../src/errors.js';
import { httpRequest } from '../fixtures/proxy/prometheus.js';
import { startProxy } from '../fixtures/proxy/proxy.js';

const README = await readFile(new URL('../../README.md', import.meta.url), 'utf8');

/** The rows of README's "Reason codes" table: every `CODE` in the first column. */
function documentedReasonCodes(): Set<string> {
  const section = README.slice(README.indexOf('## Reason codes'), README.indexOf('\n## ', README.indexOf('## Reason codes') + 5));
  const codes = new Set<string>();
  for (const row of section.split('\n').filter((line) => line.startsWith('| `'))) {
    const first = row.split('|')[1] ?? '';
    for (const match of first.matchAll(/`([A-Z_]+)`/g)) codes.add(match[1] as string);
  }
  return codes;
}

test('README\'s reason-code table names every code the proxy can log, and no other', () => {
  const documented = documentedReasonCodes();
  const actual = new Set<string>([...ATTEMPT_FAILURE_CODES, ...SESSION_FAILURE_CODES, ...SPLICED_CLOSE_CODES]);
  assert.deepEqual([...actual].filter((code) => !documented.has(code)), [], 'codes missing from README');
  assert.deepEqual([...documented].filter((code) => !actual.has(code)), [], 'README names codes the proxy does not have');
});

test('the admin endpoints README names answer, and /readyz answers the reasons README names', async (t) => {
  const proxy = await startProxy({ servers: [{ name: 'a', host: '127.0.0.1', port: 1 }], config: { admin: { bind: '127.0.0.1:0' } } });
  t.after(() => proxy.stop());
  const port = proxy.runtime.adminPort ?? 0;
  const endpoints = new Set([...README.matchAll(/`(\/(?:metrics|healthz|readyz|api\/[a-z]+))`/g)].map((match) => match[1] as string));
  assert.ok(endpoints.size >= 4, [...endpoints].join(', '));
  for (const endpoint of endpoints) assert.notEqual((await httpRequest(port, endpoint)).status, 404, endpoint);
  const unknown = JSON.parse((await httpRequest(port, '/readyz?pool=nope')).body) as { reason: string };
  assert.equal(unknown.reason, 'UNKNOWN_POOL');
  // The other reasons are each produced in admin-readiness.test.ts and drain-sigterm.test.ts.
  for (const reason of [unknown.reason, 'NO_SERVER_UP', 'DRAINING', 'LISTENER_CLOSED']) assert.ok(README.includes(`\`${reason}\``), `README names ${reason}`);
});

test('README\'s command-line synopsis lists the CLI\'s commands', async () => {
  const { withDefaultCommand } = await import('../../src/cli/main.js');
  assert.deepEqual(withDefaultCommand([]), ['serve']);
  const synopsis = README.slice(README.indexOf('## Command line'));
  for (const command of ['serve', 'check-config', 'probe', 'loadtest', 'demo', 'completion']) assert.match(synopsis, new RegExp(`ssh-banner-proxy ${command}\\b`), command);
});
