import type { ListenerStatus, PenaltiesStatus, PoolStatus, ProxyStatus, ServerStatus } from './status.js';

/**
 * The HTML status page: one self-contained document (inline CSS, no scripts, no
 * external assets), a table per pool with one row per server colour-coded by
 * state, like HAProxy's stats page. Reloads itself every `refreshSeconds`.
 */
export function renderStatusPage(status: ProxyStatus, refreshSeconds = 5): string {
  const ready = status.ready.ready ? '<span class="pill up">READY</span>' : `<span class="pill down">NOT READY</span> ${escapeHtml(status.ready.message)}`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="${refreshSeconds}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ssh-banner-proxy status</title>
<style>${STYLE}</style>
</head>
<body>
<header>
  <h1>ssh-banner-proxy <small>${escapeHtml(status.version)}</small></h1>
  <p class="meta">${ready}
    &middot; pid ${status.pid} &middot; node ${escapeHtml(status.nodeVersion)}
    &middot; up ${formatDuration(status.uptimeSeconds)}
    &middot; connections <b>${status.connections.active}</b> / ${status.connections.limit}
    ${status.draining ? '&middot; <span class="pill draining">DRAINING</span>' : ''}
    ${storeLine(status.store)}
    &middot; <span class="muted">refreshes every ${refreshSeconds}s</span></p>
  <p class="legend"><span class="pill up">UP</span> <span class="pill down">DOWN</span> <span class="pill draining">DRAINING</span> <span class="pill maint">MAINT</span>
    <span class="muted">banner latency: ok &lt; 1 s, <span class="slow">slow</span> &ge; 1 s, <span class="bad">bad</span> &ge; 5 s</span></p>
</header>
<main>
<section>
<h2>Listeners</h2>
<table class="listeners">
<thead><tr><th>Listener</th><th>Address</th><th>Pool</th><th>State</th><th class="num">Active sessions</th></tr></thead>
<tbody>
${status.listeners.map(listenerRow).join('\n')}
</tbody>
</table>
</section>
${status.pools.map(poolSection).join('\n')}
${penaltiesSection(status.penalties)}
</main>
<footer class="muted">Generated ${new Date().toISOString()} &middot; JSON at <a href="/api/status">/api/status</a> &middot; <a href="/metrics">/metrics</a></footer>
</body>
</html>
`;
}

function listenerRow(listener: ListenerStatus): string {
  const state = listener.listening ? '<span class="pill up">OPEN</span>' : '<span class="pill down">CLOSED</span>';
  return `<tr><td>${escapeHtml(listener.name)}</td><td class="mono">${escapeHtml(listener.address ?? '-')}</td><td>${escapeHtml(listener.pool)}</td><td>${state}</td><td class="num">${listener.activeSessions}</td></tr>`;
}

function penaltiesSection(penalties: PenaltiesStatus): string {
  if (!penalties.enabled) return '<section class="penalties"><h2>Penalised sources</h2><p class="muted">Penalties are off.</p></section>';
  const rows = penalties.penalised.map(
    (entry) =>
      `<tr><td class="mono">${escapeHtml(entry.source)}</td><td>${escapeHtml(entry.kind)}</td><td class="num">${Math.ceil(entry.remainingMs / 1000)} s</td><td class="num">${entry.charges}</td><td class="num">${formatDuration(Math.round(entry.activeForMs / 1000))}</td></tr>`,
  );
  const shown = penalties.penalisedCount > penalties.penalised.length ? ` (newest ${penalties.penalised.length} shown)` : '';
  return `<section class="penalties">
<h2>Penalised sources <small><b class="${penalties.penalisedCount > 0 ? 'bad' : ''}">${penalties.penalisedCount}</b> refused now${shown} &middot; ${penalties.sourcesTracked} with a penalty running</small></h2>
${rows.length === 0 ? '<p class="muted">None.</p>' : `<table class="penalised">
<thead><tr><th>Source</th><th>Last charge</th><th class="num">Refused for</th><th class="num">Charges</th><th class="num">Since</th></tr></thead>
<tbody>
${rows.join('\n')}
</tbody>
</table>`}
</section>`;
}

function poolSection(pool: PoolStatus): string {
  const health = pool.serversUp === 0 ? 'down' : pool.serversUp < pool.servers.length ? 'partial' : 'up';
  return `<section class="pool" data-pool="${escapeHtml(pool.name)}">
<h2>Pool <b>${escapeHtml(pool.name)}</b> <span class="pill ${health}">${pool.serversUp}/${pool.servers.length} UP</span>
  <small>balance ${escapeHtml(pool.balance)} &middot; queue <b class="${pool.queueLength > 0 ? 'slow' : ''}">${pool.queueLength}</b> / ${pool.queueMaxLength}</small></h2>
<table class="servers">
<thead><tr>
  <th>Server</th><th>Address</th><th>State</th><th>Since</th><th class="num">Weight</th>
  <th class="num">Sessions<br><small>now / total</small></th><th class="num">Handshake slots<br><small>used / limit</small></th>
  <th class="num">Failed<br><small>attempts</small></th><th>Last check</th><th class="num">Banner latency<br><small>check / session</small></th><th>Identification</th>
</tr></thead>
<tbody>
${pool.servers.map(serverRow).join('\n')}
</tbody>
</table>
</section>`;
}

/** The shared store's state in the header: shared limits, or this replica alone. */
function storeLine(store: ProxyStatus['store']): string {
  if (!store) return '';
  const pill = store.state === 'up' ? '<span class="pill up">SHARED</span>' : `<span class="pill down">STORE ${escapeHtml(store.state.toUpperCase())}</span>`;
  const detail = store.state === 'up' ? '' : ` <small>${escapeHtml(store.reason ?? '')}, onStoreDown: ${escapeHtml(store.onStoreDown)}</small>`;
  return `&middot; <span class="store" title="${escapeHtml(store.url)} as ${escapeHtml(store.replica)}">store ${pill}${detail} <small class="muted">since ${escapeHtml(ago(store.since))}</small></span>`;
}

function serverRow(server: ServerStatus): string {
  const state = server.state.toLowerCase();
  const slotsFull = server.handshakeSlots.used >= server.handshakeSlots.limit;
  const check = server.lastCheck
    ? `<span class="${server.lastCheck.ok ? 'ok' : 'bad'}">${server.lastCheck.ok ? 'OK' : escapeHtml(server.lastCheck.code ?? 'FAILED')}</span> <small class="muted">${escapeHtml(ago(server.lastCheck.at))}</small>`
    : '<span class="muted">none yet</span>';
  const title = server.lastCheck?.message ? ` title="${escapeHtml(server.lastCheck.message)}"` : '';
  return `<tr class="server ${state}" data-server="${escapeHtml(server.name)}" data-state="${server.state}">
  <td class="name">${escapeHtml(server.name)}${server.backup ? ' <small class="muted">backup</small>' : ''}</td>
  <td class="mono">${escapeHtml(server.address)}</td>
  <td><span class="pill ${state}">${server.state}</span>${server.stateReason ? ` <small>${escapeHtml(server.stateReason)}</small>` : ''}</td>
  <td><small>${escapeHtml(ago(server.lastStateChange))}</small></td>
  <td class="num">${server.weight}</td>
  <td class="num"><b>${server.activeSessions}</b> / ${server.totalSessions ?? '-'}</td>
  <td class="num ${slotsFull ? 'slow' : ''}">${server.handshakeSlots.used} / ${server.handshakeSlots.limit}${server.handshakeSlots.cluster === null ? '' : ` <small class="muted" title="held by all replicas">(${server.handshakeSlots.cluster} in cluster)</small>`}</td>
  <td class="num ${server.failedAttempts ? 'bad' : ''}">${server.failedAttempts ?? '-'}</td>
  <td${title}>${check}</td>
  <td class="num">${latency(server.lastBannerMs)} / ${latency(server.lastSessionBannerMs)}</td>
  <td class="mono ident">${escapeHtml(server.identification ?? '-')}</td>
</tr>`;
}

function latency(ms: number | null): string {
  if (ms === null) return '<span class="muted">-</span>';
  const text = ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(1)} ms`;
  const tone = ms >= 5000 ? 'bad' : ms >= 1000 ? 'slow' : 'ok';
  return `<span class="${tone}">${text}</span>`;
}

function ago(iso: string): string {
  const seconds = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  return `${formatDuration(seconds)} ago`;
}

function formatDuration(totalSeconds: number): string {
  const d = Math.floor(totalSeconds / 86400);
  const h = Math.floor((totalSeconds % 86400) / 3600);
  const m = Math.floor((totalSeconds % 3600) / 60);
  const s = totalSeconds % 60;
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${m}m`;
  if (m > 0) return `${m}m ${s}s`;
  return `${s}s`;
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/**
 * Text for HTML, also safe to `curl` to a terminal: control characters (a backend's
 * banner may carry ESC sequences that clear a screen or retitle a window) are shown as
 * `\xNN`, never written raw.
 */
export function escapeHtml(text: string): string {
  return text
    // eslint-disable-next-line no-control-regex -- matching control characters is the point
    .replace(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/g, (char) => `\\x${char.charCodeAt(0).toString(16).padStart(2, '0')}`)
    .replace(/[&<>"']/g, (char) => ESCAPES[char] ?? char);
}

const STYLE = `
:root { color-scheme: light; }
body { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; background: #f4f5f7; color: #1d2330; }
header { background: #1d2330; color: #f4f5f7; padding: 12px 20px; }
header h1 { margin: 0 0 4px; font-size: 20px; }
header h1 small { font-weight: normal; color: #a9b1c3; font-size: 14px; }
header .meta, header .legend { margin: 4px 0; }
header .muted { color: #a9b1c3; }
main { padding: 8px 20px 20px; }
section { margin-top: 16px; }
h2 { font-size: 16px; margin: 0 0 6px; font-weight: normal; }
h2 small { color: #5b6475; margin-left: 8px; }
table { border-collapse: collapse; width: 100%; background: #fff; box-shadow: 0 1px 2px rgba(0,0,0,.08); }
/* A table wider than the screen anyway (many columns, a narrow window) scrolls inside its section, not the page. */
section { overflow-x: auto; }
th, td { padding: 6px 10px; border-bottom: 1px solid #e3e6ec; text-align: left; vertical-align: middle; }
th { background: #e9ecf2; font-size: 12px; text-transform: uppercase; letter-spacing: .03em; color: #3b4354; }
th small { text-transform: none; font-weight: normal; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.num { white-space: nowrap; }
.mono { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, monospace; font-size: 13px; }
/* The identification wraps instead of widening the table: the page fits a 1280 px screen. */
.ident { min-width: 14ch; max-width: 32ch; overflow-wrap: anywhere; }
tr.server.up { background: #e6f6e9; }
tr.server.up td.name { border-left: 6px solid #2e9e4f; }
tr.server.down { background: #fbe3e3; }
tr.server.down td.name { border-left: 6px solid #d33a3a; }
tr.server.draining { background: #e3ecfb; }
tr.server.draining td.name { border-left: 6px solid #3a6fd3; }
td.name { font-weight: 600; }
.pill { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 700; color: #fff; }
.pill.up { background: #2e9e4f; }
.pill.down { background: #d33a3a; }
.pill.draining { background: #3a6fd3; }
.pill.maint { background: #6b6b6b; }
.pill.partial { background: #d98a1c; }
.ok { color: #1f7a3a; }
.slow { color: #b36b00; font-weight: 600; }
.bad { color: #c62828; font-weight: 700; }
.muted { color: #7a8294; }
footer { padding: 0 20px 16px; font-size: 12px; }
a { color: inherit; }
`;
