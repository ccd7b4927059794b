// What `npm pack` ships, installed the way a user would: a fresh clone packs dist/ (prepack
// builds it) without source maps (they would point at src/, which is not shipped), the docs
// every README link names, the systemd units, and the installed CLI runs.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cp, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runProcess } from '../fixtures/run-process.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** The npm running this test (npm_execpath, under `npm test`), run by this Node; plain `npm` otherwise. */
const NPM_CLI = process.env.npm_execpath;
const npm = (args: readonly string[]): [string, string[]] => (NPM_CLI ? [process.execPath, [NPM_CLI, ...args]] : ['npm', [...args]]);

test('a fresh clone packs dist/ without maps, LICENSE, config, docs and the systemd units; the installed CLI runs --version and check-config', { timeout: 300_000 }, async (t) => {
  const work = await mkdtemp(path.join(tmpdir(), 'sbp-pack-'));
  t.after(() => rm(work, { recursive: true, force: true }));
  // A fresh clone: the tracked files only (no dist/), with the installed dev dependencies.
  const clone = path.join(work, 'clone');
  const files = execFileSync('git', ['ls-files', '-z'], { cwd: ROOT, encoding: 'utf8' }).split('\0').filter(Boolean);
  for (const file of files) await cp(path.join(ROOT, file), path.join(clone, file));
  await symlink(path.join(ROOT, 'node_modules'), path.join(clone, 'node_modules'));
  const packed = await runProcess(...npm(['pack', '--json', '--pack-destination', work]), { cwd: clone, timeoutMs: 180_000, env: { ...process.env, npm_config_loglevel: 'error' } });
  assert.equal(packed.code, 0, packed.stderr);
  const [report] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as { filename: string; files: { path: string }[] }[];
  assert.ok(report);
  const shipped = new Set(report.files.map((file) => file.path));
  for (const needed of ['dist/cli.js', 'dist/cli/main.js', 'LICENSE', 'README.md', 'config/default.yaml', 'package.json']) assert.ok(shipped.has(needed), `ships ${needed}`);
  assert.ok(![...shipped].some((file) => file.startsWith('src/') || file.startsWith('test/')), 'no sources or tests');
  assert.deepEqual([...shipped].filter((file) => file.endsWith('.map')), [], 'no source maps');
  assert.doesNotMatch(await readFile(path.join(clone, 'dist/cli/main.js'), 'utf8'), /sourceMappingURL/, 'no pointer to a map');
  for (const unit of ['systemd/ssh-banner-proxy.service', 'systemd/ssh-banner-proxy.socket']) assert.ok(shipped.has(unit), `ships ${unit}`);
  // Every relative link in README resolves inside the package (on npm and in an installed copy).
  const readme = await readFile(path.join(ROOT, 'README.md'), 'utf8');
  const links = [...readme.matchAll(/\]\(((?:docs|config|systemd|k8s)\/[^)#\s]+)/g)].map((match) => match[1] as string);
  assert.ok(links.length > 5, 'README links into docs/');
  for (const link of links.filter((target) => !target.startsWith('k8s/'))) assert.ok(shipped.has(link), `README's link ${link} is shipped`);

  // Installed into an empty project, from the tarball alone (dependencies from the registry).
  const user = path.join(work, 'user');
  await cp(path.join(work, report.filename), path.join(user, report.filename));
  await writeFile(path.join(user, 'package.json'), '{ "name": "user", "private": true }\n');
  const installed = await runProcess(...npm(['install', '--no-audit', '--no-fund', `./${report.filename}`]), { cwd: user, timeoutMs: 240_000, env: { ...process.env, npm_config_loglevel: 'error' } });
  assert.equal(installed.code, 0, installed.stderr);
  assert.ok((await readdir(path.join(user, 'node_modules/.bin'))).includes('ssh-banner-proxy'));
  const bin = path.join(user, 'node_modules/.bin/ssh-banner-proxy');
  const version = await runProcess(bin, ['--version'], { timeoutMs: 20_000 });
  const pkg = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
  assert.equal(version.stdout.trim(), pkg.version);
  const checked = await runProcess(bin, ['check-config', path.join(user, 'node_modules/ssh-banner-proxy/config/default.yaml')], { timeoutMs: 20_000 });
  assert.equal(checked.code, 0, checked.stderr);
});
