// The Dockerfile against the code: the baked-in config parses, EXPOSE matches its
// ports, the HEALTHCHECK hits /healthz on the admin port, the build steps are the
// ones scripts/docker-build-check.sh performs. The full build-and-start check
// (npm ci, ~30 s) runs with SBP_DOCKER_CHECK=1.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { IMAGE_MALLOC_TRIM_THRESHOLD, IMAGE_NODE_FLAGS } from '../../bench/lib/targets.js';
import { parseConfigText } from '../../src/config/load.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
const script = readFileSync(path.join(ROOT, 'scripts/docker-build-check.sh'), 'utf8');

test('Dockerfile: EXPOSE and HEALTHCHECK match the baked-in config', () => {
  const config = parseConfigText(readFileSync(path.join(ROOT, 'config/container.yaml'), 'utf8'), 'config/container.yaml');
  const exposed = (/^EXPOSE (.+)$/m.exec(dockerfile)?.[1] ?? '').split(/\s+/).map(Number);
  const sshPort = config.listeners[0]?.bind.port;
  const adminPort = config.admin?.bind.port;
  assert.deepEqual(exposed, [sshPort, adminPort]);
  assert.equal(config.admin?.bind.host, '0.0.0.0');
  // The HEALTHCHECK reads the admin address from the config serve runs with, not a port of its own.
  assert.match(dockerfile, /^HEALTHCHECK [^\n]*\\\n {2}CMD \["node", "\/app\/dist\/cli\.js", "healthcheck"(, "--timeout", "\d+ms")?\]$/m);
  assert.doesNotMatch(dockerfile.slice(dockerfile.indexOf('HEALTHCHECK')), new RegExp(`:${adminPort}\\b`));
  assert.match(dockerfile, /^COPY config\/container\.yaml \/etc\/ssh-banner-proxy\/config\.yaml|^COPY --chown=root:root config\/container\.yaml \/etc\/ssh-banner-proxy\/config\.yaml/m);
  assert.match(dockerfile, /^ENV SSH_BANNER_PROXY_CONFIG=\/etc\/ssh-banner-proxy\/config\.yaml$/m);
  assert.match(dockerfile, /^CMD \["serve"\]$/m);
});

test('Dockerfile: OCI labels: version (the package\'s), source, licenses (the package\'s)', () => {
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string; license: string };
  assert.equal(/^ARG VERSION=(\S+)$/m.exec(dockerfile)?.[1], pkg.version);
  for (const label of ['title', 'version', 'source', 'licenses', 'revision']) assert.match(dockerfile, new RegExp(`org\\.opencontainers\\.image\\.${label}=`), label);
  assert.match(dockerfile, new RegExp(`org\\.opencontainers\\.image\\.licenses="${pkg.license}"`));
});

test('Dockerfile: multi-stage, npm ci then prune, non-root, signals handled by tini', () => {
  assert.equal(dockerfile.match(/^FROM /gm)?.length, 2);
  // A supported LTS line, pinned by digest (a moving tag rebuilds onto whatever it points at).
  assert.match(dockerfile, /^ARG NODE_IMAGE=node:(24|26)-slim@sha256:[0-9a-f]{64}$/m);
  const runs = dockerfile.match(/npm (ci|run build|prune --omit=dev)/g);
  assert.deepEqual(runs, ['npm ci', 'npm run build', 'npm prune --omit=dev']);
  for (const step of ['npm ci', 'npm run build', 'npm prune --omit=dev']) assert.ok(script.includes(step), `the check script runs ${step}`);
  const user = /^USER (\S+)$/m.exec(dockerfile)?.[1] ?? 'root';
  assert.notEqual(user.split(':')[0], '0');
  assert.notEqual(user, 'root');
  assert.match(dockerfile, /^ENTRYPOINT \["\/usr\/bin\/tini", "--", "node", "--max-semi-space-size=16", "\/app\/dist\/cli\.js"\]$/m);
});

test('the bench runs the proxy with the image\'s Node flags and allocator setting', () => {
  const entrypoint = /^ENTRYPOINT \[(.*)\]$/m.exec(dockerfile)?.[1] ?? '';
  const nodeFlags = (JSON.parse(`[${entrypoint}]`) as string[]).filter((arg) => arg.startsWith('--') && arg !== '--');
  assert.deepEqual(nodeFlags, [...IMAGE_NODE_FLAGS]);
  assert.match(dockerfile, new RegExp(`^ENV MALLOC_TRIM_THRESHOLD_=${IMAGE_MALLOC_TRIM_THRESHOLD}$`, 'm'));
});

test('.dockerignore lets through exactly what the build stages COPY', () => {
  const ignore = readFileSync(path.join(ROOT, '.dockerignore'), 'utf8');
  const allowed = ignore
    .split('\n')
    .filter((line) => line.startsWith('!'))
    .map((line) => line.slice(1).replace(/\/$/, ''))
    .sort();
  const copied = [...dockerfile.matchAll(/^COPY (?!--from)(?:--chown=\S+ )?(.+) \S+$/gm)]
    .flatMap((match) => (match[1] ?? '').split(' '))
    .map((source) => source.split('/')[0] as string)
    .sort();
  assert.deepEqual([...new Set(copied)], allowed);
});

test('scripts/docker-build-check.sh builds and starts the image contents', { skip: process.env.SBP_DOCKER_CHECK !== '1' && 'set SBP_DOCKER_CHECK=1 (runs npm ci, ~30 s)', timeout: 300_000 }, () => {
  const output = execFileSync(path.join(ROOT, 'scripts/docker-build-check.sh'), { encoding: 'utf8', timeout: 290_000 });
  assert.match(output, /HEALTHCHECK passes/);
  assert.match(output, /exited 0 after SIGTERM/);
  assert.match(output, /^OK$/m);
});
