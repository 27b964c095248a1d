import { createHash } from 'node:crypto';

/**
 * `GET /`: a read-only page of the agent's state for a device without Home Assistant (and,
 * later, the add-on's ingress panel). One HTML document with its style and script inline,
 * no framework and nothing fetched from elsewhere; the Content-Security-Policy allows only
 * that style and that script (by their SHA-256) and requests to the agent itself. The
 * script reads `v1/status` and `v1/verdicts` and reads them again shortly after each event
 * of `v1/events`. Every URL is relative, so the page works under a proxy's path prefix;
 * every value goes in as text (textContent), never as markup.
 */

const style = `
:root { color-scheme: light dark; --ok: #1a7f37; --warning: #9a6700; --stale: #9a6700;
  --error: #cf222e; --violation: #cf222e; --muted: #6e7781; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 60rem; padding: 1rem; font: 15px/1.4 system-ui, sans-serif; }
h1 { font-size: 1.2rem; margin: 0 0 .5rem; }
h2 { font-size: 1rem; margin: 1.5rem 0 .5rem; border-bottom: 1px solid var(--muted); }
#overall { padding: .75rem 1rem; border-radius: .5rem; color: #fff; background: var(--muted); }
#overall strong { font-size: 1.5rem; text-transform: uppercase; }
#overall ul { margin: .25rem 0 0; padding-left: 1.25rem; }
#overall.ok { background: var(--ok); } #overall.warning, #overall.stale { background: var(--warning); }
#overall.error, #overall.violation { background: var(--error); }
#live { float: right; font-size: .85rem; color: var(--muted); }
table { width: 100%; border-collapse: collapse; }
th, td { text-align: left; vertical-align: top; padding: .3rem .4rem; border-bottom: 1px solid #8883; }
td { overflow-wrap: anywhere; }
.s { font-weight: 600; white-space: nowrap; }
.TRUSTED, .s.ok { color: var(--ok); } .UNTRUSTED, .REVOKED, .s.failed { color: var(--error); }
.UNKNOWN, .UNSUPPORTED, .none, .s.degraded { color: var(--warning); }
.muted { color: var(--muted); }
@media (max-width: 40rem) {
  thead { display: none; } tr { display: block; border-bottom: 1px solid #8886; padding: .3rem 0; }
  td { display: block; border: 0; padding: .1rem 0; }
}
`;

const script = `
'use strict';
const $ = (id) => document.getElementById(id);
/** An element with text or child elements: values go in as text nodes. */
function el(tag, className, ...children) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(String(child ?? '')));
  }
  return node;
}
function row(...cells) {
  return el('tr', '', ...cells.map((cell) => (cell instanceof Node && cell.tagName === 'TD' ? cell : el('td', '', cell))));
}
function fill(id, ...nodes) { $(id).replaceChildren(...nodes); }
function time(value) {
  if (value == null) return 'never';
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? String(value) : date.toLocaleString();
}
function age(seconds) {
  if (seconds == null) return '';
  if (seconds < 120) return seconds + ' s';
  if (seconds < 7200) return Math.round(seconds / 60) + ' min';
  if (seconds < 172800) return Math.round(seconds / 3600) + ' h';
  return Math.round(seconds / 86400) + ' days';
}
function verdict(status) { return el('td', 's ' + (status ?? 'none'), status ?? 'could not check'); }
function attempt(a) {
  if (!a) return 'never';
  return time(a.at) + ' — ' + (a.ok ? 'ok' : 'failed') + (a.source ? ' from ' + a.source : '') +
    (a.added !== undefined ? ', ' + a.added + ' added' : '') + (a.error ? ': ' + a.error.message : '');
}
function dl(pairs) {
  return el('table', '', el('tbody', '', ...pairs.map(([k, v]) => row(el('td', 'muted', k), v))));
}

function render(status, verdicts) {
  const overall = status.overall ?? { status: 'error', reasons: ['no overall status'] };
  $('overall').className = overall.status;
  fill('overall', el('strong', '', overall.status),
    el('ul', '', ...overall.reasons.map((reason) => el('li', '', reason))));
  fill('trust', dl([
    ['log', status.origin ?? 'no trust state'],
    ['size', status.size + ' entries, ' + status.records + ' records'],
    ['checkpoint', time(status.checkpointTime) + (status.checkpointAgeSeconds == null ? '' : ' (' + age(status.checkpointAgeSeconds) + ' ago)')],
    ['fresh', status.stale ? 'stale (max age ' + age(status.maxAgeSeconds) + ')' : 'since ' + time(status.freshSince)],
    ['fork', status.fork ? 'DETECTED: ' + (status.forkEvidence ?? []).map((f) => f.reason).join('; ') : 'none'],
    ['agent', status.version],
  ]));
  const images = verdicts.images ?? [];
  fill('images', ...(images.length === 0 ? [row('no images')] : images.map((image) => row(
    el('td', '', image.names?.[0] ?? image.ref, el('div', 'muted', (image.id ?? '').slice(0, 19))),
    verdict(image.status),
    el('td', '', image.error?.message ?? image.reason,
      image.decision && image.decision.action !== 'none'
        ? el('div', 'muted', image.decision.action + ' (' + image.decision.mode + ')' + (image.decision.allowedBy ? ', allowed by the allow-list' : ''))
        : ''),
  ))));
  const subjects = verdicts.subjects ?? [];
  fill('subjects', ...(subjects.length === 0 ? [row('none yet')] : subjects.map((subject) => row(
    el('td', '', subject.name ?? subject.subject, el('div', 'muted', subject.kind)),
    verdict(subject.status),
    subject.error?.message ?? subject.reason,
  ))));
  fill('sync', dl([
    ['last attempt', attempt(status.lastSync)],
    ['last success', attempt(status.lastSuccess)],
    ...(status.mirrors ?? []).map((m) => ['mirror ' + m.url, time(m.at) + ' — ' + (m.ok ? 'ok' : 'failed' + (m.error ? ': ' + m.error.message : ''))]),
  ]));
  fill('services', ...Object.entries(status.services ?? {}).map(([name, health]) =>
    row(name, el('td', 's ' + health.state, health.state), health.reason + ' (since ' + time(health.since) + ')')));
  const plan = status.hashing;
  fill('hashing', plan ? dl([
    ['workers', plan.workers],
    ['chunk', Math.round(plan.chunkSize / 1024) + ' KiB'],
    ['in flight', Math.round(plan.inFlightBytes / 1048576) + ' MiB'],
    ['why', el('ul', '', ...plan.reasons.map((reason) => el('li', '', reason)))],
  ]) : el('p', 'muted', 'not planned yet: the pool starts with the first file to hash'));
  $('updated').textContent = 'updated ' + new Date().toLocaleTimeString();
}

async function get(path) {
  const response = await fetch(path, { cache: 'no-store' });
  if (!response.ok) throw new Error(path + ': HTTP ' + response.status);
  return response.json();
}
let busy = false;
let again = false;
async function refresh() {
  if (busy) { again = true; return; }
  busy = true;
  try {
    const [status, verdicts] = await Promise.all([get('v1/status'), get('v1/verdicts')]);
    render(status, verdicts);
  } catch (error) {
    $('updated').textContent = 'cannot read the agent: ' + error.message;
  } finally {
    busy = false;
    if (again) { again = false; refresh(); }
  }
}
// Events come in bursts (a commit re-evaluates every image): one read after the burst.
let timer;
function soon() { clearTimeout(timer); timer = setTimeout(refresh, 300); }
const events = new EventSource('v1/events');
for (const type of ['verdict', 'action', 'sync', 'health']) events.addEventListener(type, soon);
// After a reconnect, what happened meanwhile was not told: read it all again.
let opened = false;
events.onopen = () => { $('live').textContent = 'live'; if (opened) soon(); opened = true; };
events.onerror = () => { $('live').textContent = 'reconnecting…'; };
refresh();
`;

function cspHash(text: string): string {
  return `'sha256-${createHash('sha256').update(text).digest('base64')}'`;
}

/** The page, the same for every request. */
export const statusPageHtml = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>vouch</title>
<style>${style}</style>
</head>
<body>
<span id="live">connecting…</span>
<h1>vouch: trust status</h1>
<div id="overall"><strong>loading</strong></div>
<p id="updated" class="muted"></p>
<h2>Images</h2>
<table><thead><tr><th>image</th><th>verdict</th><th>reason</th></tr></thead><tbody id="images"></tbody></table>
<h2>Files and digests verified</h2>
<table><thead><tr><th>subject</th><th>verdict</th><th>reason</th></tr></thead><tbody id="subjects"></tbody></table>
<h2>Trust state</h2>
<div id="trust"></div>
<h2>Sync</h2>
<div id="sync"></div>
<h2>Services</h2>
<table><tbody id="services"></tbody></table>
<h2>Hashing plan</h2>
<div id="hashing"></div>
<script>${script}</script>
</body>
</html>
`;

/**
 * Only the inline style and script above, and requests to the agent (`connect-src 'self'`:
 * fetch and EventSource); no images, fonts, frames, forms or base URL.
 */
export const statusPageCsp = [
  "default-src 'none'",
  `style-src ${cspHash(style)}`,
  `script-src ${cspHash(script)}`,
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  // Home Assistant's ingress shows the page in a frame of its own origin.
  "frame-ancestors 'self'",
].join('; ');
