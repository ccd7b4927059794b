/** config/schema.json: generated from the zod schema, in step with it, and it checks the configs we ship. */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { parse } from 'yaml';
import { configJsonSchema } from '../../src/config/json-schema.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SHIPPED_CONFIGS = ['config/default.yaml', 'config/container.yaml', 'k8s/base/config/proxy.yaml', 'k8s/overlays/bastion/config/proxy.yaml', 'k8s/overlays/sidecar/config/proxy.yaml'];

async function validator(): Promise<ReturnType<Ajv2020['compile']>> {
  const schema = JSON.parse(await readFile(path.join(ROOT, 'config/schema.json'), 'utf8')) as Record<string, unknown>;
  return new Ajv2020({ allErrors: true, strict: false }).compile(schema);
}

test('config/schema.json is what the zod schema generates (run `npm run schema` after changing src/config/schema.ts)', async () => {
  const file = JSON.parse(await readFile(path.join(ROOT, 'config/schema.json'), 'utf8')) as unknown;
  assert.deepEqual(file, configJsonSchema());
});

test('every config we ship passes the schema and names it in a yaml-language-server modeline', async () => {
  const validate = await validator();
  for (const file of SHIPPED_CONFIGS) {
    const text = await readFile(path.join(ROOT, file), 'utf8');
    const modeline = /^# yaml-language-server: \$schema=(\S+)$/m.exec(text)?.[1];
    assert.ok(modeline, `${file} has a modeline`);
    assert.equal(path.resolve(path.dirname(path.join(ROOT, file)), modeline), path.join(ROOT, 'config/schema.json'), `${file}'s modeline points at config/schema.json`);
    assert.ok(validate(parse(text)), `${file}: ${JSON.stringify(validate.errors)}`);
  }
});

test('the schema refuses what the loader refuses: an unknown key, a bad duration, a bad address, a missing pool', async () => {
  const validate = await validator();
  const good = { listeners: [{ name: 'ssh', bind: '127.0.0.1:2222', pool: 'main' }], pools: [{ name: 'main', servers: [{ name: 'a', address: '[::1]:22' }] }], timeouts: { banner: '8s', connect: 3000 } };
  assert.ok(validate(good), JSON.stringify(validate.errors));
  const cases: [string, unknown][] = [
    ['unknown key', { ...good, timeout: {} }],
    ['bad duration', { ...good, timeouts: { banner: '8 seconds' } }],
    ['bad address', { ...good, listeners: [{ name: 'ssh', bind: '127.0.0.1', pool: 'main' }] }],
    ['missing pools', { listeners: good.listeners }],
  ];
  for (const [what, config] of cases) assert.equal(validate(config), false, what);
});
