import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { runProcess } from '../fixtures/run-process.js';

const MAIN = new URL('../../src/cli/main.ts', import.meta.url).href;
const CONFIG = fileURLToPath(new URL('../../config/default.yaml', import.meta.url));

/** Runs the CLI in a child and lists the packages it loaded (CommonJS ones land in require.cache, ESM imports of them too). */
async function packagesLoadedBy(args: readonly string[]): Promise<string[]> {
  const script = `
    import { createRequire } from 'node:module';
    const { runCli } = await import(${JSON.stringify(MAIN)});
    const code = await runCli(${JSON.stringify(args)});
    const names = new Set(Object.keys(createRequire(import.meta.url).cache).map((file) => /node_modules\\/((?:@[^/]+\\/)?[^/]+)\\//.exec(file)?.[1]).filter(Boolean));
    process.stderr.write('\\nLOADED ' + JSON.stringify([...names]) + ' EXIT ' + code + '\\n');
  `;
  const result = await runProcess(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { timeoutMs: 20_000 });
  const match = /LOADED (\[.*\]) EXIT (\d+)/.exec(result.stderr);
  assert.ok(match, `no report from the child: ${result.stderr}`);
  assert.equal(match[2], '0', result.stderr);
  return JSON.parse(match[1] as string) as string[];
}

test('check-config loads neither ssh2 (probe, loadtest, demo) nor prom-client nor ioredis (serve)', async () => {
  const loaded = await packagesLoadedBy(['check-config', CONFIG]);
  assert.ok(loaded.includes('yaml'), `the report lists what was loaded: ${loaded.join(', ')}`);
  assert.ok(!loaded.includes('ssh2'), `ssh2 loaded: ${loaded.join(', ')}`);
  assert.ok(!loaded.includes('prom-client'), `prom-client loaded: ${loaded.join(', ')}`);
  assert.ok(!loaded.includes('ioredis'), `ioredis loaded: ${loaded.join(', ')}`);
});

test('help for every command loads no command implementation', async () => {
  const loaded = await packagesLoadedBy(['--help']);
  for (const heavy of ['ssh2', 'prom-client', 'pino']) assert.ok(!loaded.includes(heavy), `${heavy} loaded for --help: ${loaded.join(', ')}`);
});
