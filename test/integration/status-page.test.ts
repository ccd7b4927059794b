import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { chromium } from 'playwright-core';
import { startFixtureBackend } from '../fixtures/backends/hostile-backends.js';
import { untilEvent } from '../fixtures/proxy/proxy-wait.js';
import { startProxy } from '../fixtures/proxy/proxy.js';
import { rawExchange, untilBytes } from '../fixtures/clients/raw-client.js';
import { freePort } from '../fixtures/wait.js';

const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOT = path.resolve('test-results', 'status-page.png');

test('the status page renders in headless Chromium, one colour-coded row per server', { skip: !existsSync(CHROMIUM) && `${CHROMIUM} missing` }, async (t) => {
  const alpha = await startFixtureBackend('ssh-echo');
  const charlie = await startFixtureBackend('ssh-echo', { identification: 'SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3' });
  t.after(() => alpha.close());
  t.after(() => charlie.close());
  const deadPort = await freePort();
  const proxy = await startProxy({
    servers: [
      { name: 'alpha', host: alpha.host, port: alpha.port, weight: 2 },
      { name: 'bravo', host: '127.0.0.1', port: deadPort },
      { name: 'charlie', host: charlie.host, port: charlie.port, maxStartups: 4 },
    ],
    pool: { healthCheck: { enabled: true, interval: 200, timeout: 500, rise: 1, fall: 1, jitter: 0 } },
    config: { admin: { bind: '127.0.0.1:0' } },
  });
  t.after(() => proxy.stop());
  const pool = proxy.runtime.server.pools.get('main');
  assert.ok(pool);
  const [alphaServer, bravoServer, charlieServer] = pool.servers;
  assert.ok(alphaServer && bravoServer && charlieServer);
  await untilEvent(proxy, 'server-state', () => bravoServer.state === 'DOWN', 3_000);
  await untilEvent(proxy, 'health-check', () => alphaServer.lastCheck?.ok === true && charlieServer.lastCheck?.ok === true, 3_000);

  // A few sessions so the counts are not all zero, then drain charlie.
  const ident = 'SSH-2.0-StatusPageTest\r\n';
  for (let index = 0; index < 4; index += 1) {
    const result = await rawExchange({ port: proxy.port, send: ident, until: untilBytes(ident.length + 20), timeoutMs: 5_000 });
    assert.equal(result.outcome, 'matched');
  }
  pool.setDraining(charlieServer, true, 'admin:maintenance');
  // Checks hold a handshake slot while open: stop them so the slot counts on the page are exact.
  for (const checker of proxy.runtime.healthCheckers) checker.stop();
  assert.equal(charlieServer.handshakesActive, 0);

  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    timeout: 30_000,
  });
  t.after(() => browser.close());
  // A common laptop width: the page must fit it, identification column included.
  const page = await browser.newPage({ viewport: { width: 1280, height: 700 } });
  const external: string[] = [];
  page.on('request', (request) => {
    if (!request.url().startsWith(`http://127.0.0.1:${proxy.runtime.adminPort}/`)) external.push(request.url());
  });
  const response = await page.goto(`http://127.0.0.1:${proxy.runtime.adminPort}/`, { timeout: 10_000 });
  assert.equal(response?.status(), 200);
  assert.equal(await page.title(), 'ssh-banner-proxy status');

  // Computed in the page (the project compiles without the DOM lib, hence the narrow cast).
  type Styled = { getComputedStyle(element: unknown): { backgroundColor: string } };
  const rows = [];
  for (const row of await page.locator('tr.server').all()) {
    rows.push({
      name: await row.getAttribute('data-server'),
      state: await row.getAttribute('data-state'),
      background: await row.evaluate((element) => (globalThis as unknown as Styled).getComputedStyle(element).backgroundColor),
      text: await row.innerText(),
    });
  }
  assert.deepEqual(
    rows.map((row) => [row.name, row.state]),
    [
      ['alpha', 'UP'],
      ['bravo', 'DOWN'],
      ['charlie', 'DRAINING'],
    ],
  );
  const [up, down, draining] = rows;
  assert.ok(up && down && draining);
  // Colour-coded: green-ish, red-ish, blue-ish backgrounds, all different.
  const rgb = (css: string): number[] => (css.match(/\d+/g) ?? []).slice(0, 3).map(Number);
  const [ur, ug] = rgb(up.background);
  const [dr, dg] = rgb(down.background);
  const [br, , bb] = rgb(draining.background);
  assert.ok(ug !== undefined && ur !== undefined && ug > ur, `UP row is green: ${up.background}`);
  assert.ok(dr !== undefined && dg !== undefined && dr > dg, `DOWN row is red: ${down.background}`);
  assert.ok(bb !== undefined && br !== undefined && bb > br, `DRAINING row is blue: ${draining.background}`);

  // What an operator reads at a glance.
  assert.match(up.text, /SSH-2\.0-EchoFixture_1\.0/);
  assert.match(up.text, /\d+(\.\d+)? ms/, 'banner latency shown');
  assert.match(up.text, /OK/);
  assert.match(down.text, /CONNECT_REFUSED/);
  assert.match(down.text, /check:CONNECT_REFUSED/);
  assert.match(draining.text, /admin:maintenance/);
  assert.match(draining.text, /0 \/ 4/, 'handshake slots used / limit');
  assert.match(draining.text, /OpenSSH_9\.2p1/);
  // Sessions now / total: the four sessions went to alpha and charlie, none to the dead bravo.
  const total = (text: string): number => Number(/\b\d+ \/ (\d+)\s/.exec(text)?.[1]);
  assert.equal(total(up.text) + total(draining.text), 4, `${up.text} | ${draining.text}`);
  assert.equal(total(down.text), 0);
  type Sized = { document: { documentElement: { scrollWidth: number; clientWidth: number } } };
  const widths = await page.evaluate(() => {
    const root = (globalThis as unknown as Sized).document.documentElement;
    return { scroll: root.scrollWidth, client: root.clientWidth };
  });
  assert.ok(widths.scroll <= widths.client, `no sideways scrolling at 1280 px: ${widths.scroll} > ${widths.client}`);
  type Boxed = { getBoundingClientRect(): { right: number; width: number } };
  for (const cell of await page.locator('tr.server td.ident').all()) {
    const box = await cell.evaluate((element) => (element as unknown as Boxed).getBoundingClientRect());
    assert.ok(box.right <= 1280 && box.width > 100, `the identification column is on screen: right ${box.right}, width ${box.width}`);
  }
  const header = await page.locator('header').innerText();
  assert.match(header, /READY/);
  assert.doesNotMatch(header, /NOT READY/, 'one server UP in the pool is enough');
  const poolHeading = await page.locator('section.pool h2').innerText();
  assert.match(poolHeading, /1\/3 UP/);
  assert.match(poolHeading, /queue 0 \/ 1000/);
  assert.deepEqual(external, [], 'no external assets');

  await mkdir(path.dirname(SCREENSHOT), { recursive: true });
  await page.screenshot({ path: SCREENSHOT, fullPage: true });
  assert.ok((await stat(SCREENSHOT)).size > 10_000);
});
