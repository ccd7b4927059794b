import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { manPage } from '../../scripts/man-page.js';

test('man/ssh-banner-proxy.1 is the CLI\'s own help, up to date (run `npm run man` after changing a command)', async () => {
  const committed = await readFile(new URL('../../man/ssh-banner-proxy.1', import.meta.url), 'utf8');
  const generated = await manPage();
  assert.equal(committed, generated);
  for (const command of ['serve', 'check-config', 'probe', 'loadtest', 'demo', 'healthcheck', 'completion']) assert.match(committed, new RegExp(`^\\.SS ${command}$`, 'm'));
  assert.match(committed, /--schema/);
});
