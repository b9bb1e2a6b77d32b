/*
 * jobd monitor page: the App Monitor "Jobs" screen over the JSON API.
 *
 * Vanilla JS, no libraries. Every piece of job data goes into the DOM as
 * text (textContent and text nodes, never parsed as HTML), so a payload, type or
 * log line holding markup is shown, not run. Views are chosen by the URL
 * hash (#/, #/jobs/ID, #/stats, #/kafka); the visible view refreshes every 2 s and
 * live values (waiting, duration) tick every second between refreshes,
 * from the server's values plus the time elapsed since they were read.
 */
'use strict';

const REFRESH_MS = 2000;
const TERMINAL = new Set(['finished', 'canceled']);
const LABELS = {
  pending: 'Pending', in_progress: 'In Progress', stopping: 'Stopping',
  stopped: 'Stopped', finished: 'Finished', canceled: 'Canceled',
};
const OPS = [
  { op: 'stop', label: 'Stop', ok: (j) => (j.status === 'pending' || j.status === 'in_progress') && j.stoppable },
  { op: 'resume', label: 'Resume', ok: (j) => j.status === 'stopped' },
  { op: 'force-stop', label: 'Force Stop', danger: true, ok: (j) => j.status === 'stopping',
    confirm: 'Force stop kills the handlers of the selected jobs and may leave inconsistent data. Continue?' },
  { op: 'cancel', label: 'Cancel', danger: true, ok: (j) => j.status === 'stopped',
    confirm: 'Canceled jobs cannot be resumed. Continue?' },
  { op: 'restart', label: 'Restart', ok: (j) => j.status === 'finished' && j.parent === null && j.restartable },
  { op: 'low-priority', label: 'Set low priority', ok: (j) => !TERMINAL.has(j.status) },
  { op: 'low-priority-off', label: 'Remove low priority', ok: (j) => !TERMINAL.has(j.status) },
];

const $ = (id) => document.getElementById(id);

/* el('td', {class: 'x'}, 'text', child): strings become text nodes. */
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

/* --- API ---------------------------------------------------------------- */

const state = {
  token: localStorage.getItem('jobd.token') || '',
  selected: new Map(), /* id -> last seen job */
  list: { cursors: [0], page: 0, next: null, rows: [], at: 0 },
  detail: null,
  timer: null,
};

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(path, body) {
  const opts = { headers: {}, cache: 'no-store' };
  if (state.token) opts.headers.Authorization = 'Bearer ' + state.token;
  if (body !== undefined) {
    opts.method = 'POST';
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, opts);
  } catch (e) {
    throw new ApiError(0, 'the monitor is unreachable');
  }
  let data = null;
  try { data = await res.json(); } catch (e) { data = null; }
  if (!res.ok && !(res.status === 409 && data && data.ids)) {
    const msg = (data && data.error) || ('HTTP ' + res.status);
    if (res.status === 401) showTokenBox(msg);
    throw new ApiError(res.status, msg);
  }
  return data;
}

function qs(params) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== '' && v !== null && v !== undefined && v !== false) p.set(k, v === true ? '1' : String(v));
  }
  const s = p.toString();
  return s ? '?' + s : '';
}

function banner(msg) {
  const b = $('banner');
  b.hidden = !msg;
  b.textContent = msg || '';
  $('live').classList.toggle('down', !!msg);
  $('live').textContent = msg ? 'offline' : 'live';
}

function showTokenBox(msg) {
  $('token-box').hidden = false;
  if (msg) banner(msg + ': enter an API token');
  $('token-input').focus();
}

/* --- formatting ---------------------------------------------------------- */

function human(ms) {
  if (ms === null || ms === undefined) return '–';
  ms = Math.max(0, Math.round(ms));
  const pad = (n) => String(n).padStart(2, '0');
  if (ms < 1000) return ms + 'ms';
  if (ms < 60000) return (ms / 1000).toFixed(1) + 's';
  if (ms < 3600000) return Math.floor(ms / 60000) + 'm' + pad(Math.floor(ms / 1000) % 60) + 's';
  if (ms < 86400000) return Math.floor(ms / 3600000) + 'h' + pad(Math.floor(ms / 60000) % 60) + 'm';
  return Math.floor(ms / 86400000) + 'd' + pad(Math.floor(ms / 3600000) % 24) + 'h';
}

function when(iso) {
  if (!iso) return '–';
  const d = new Date(iso);
  if (isNaN(d)) return iso;
  const pad = (n) => String(n).padStart(2, '0');
  return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' +
    pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
}

function pct(p) { return (Math.round(p * 10) / 10) + '%'; }

function statusBadge(status) {
  return el('span', { class: 'badge st-' + status }, LABELS[status] || status);
}

function hasErrors(j) {
  return j.errors > 0 || j.finished_with_errors || (j.children && j.children.errors > 0);
}

function bar(p, done) {
  const inner = el('span');
  inner.style.width = Math.max(0, Math.min(100, p)) + '%';
  return el('span', { class: 'bar' + (done ? ' done' : ''), role: 'progressbar',
    'aria-valuenow': Math.round(p), 'aria-valuemin': 0, 'aria-valuemax': 100 }, inner);
}

function progressCell(p, done) {
  return el('td', {}, bar(p, done), el('span', { class: 'pct' }, pct(p)));
}

function childrenCell(j) {
  const c = j.children;
  if (!c || !c.total) return el('td', { class: 'muted' }, '–');
  const ended = c.finished + c.canceled;
  return el('td', { title: `${c.pending} pending, ${c.in_progress} in progress, ${c.stopping} stopping, ` +
      `${c.stopped} stopped, ${c.finished} finished, ${c.canceled} canceled, ${c.errors} with errors` },
    bar(c.progress, ended === c.total), el('span', { class: 'pct' }, `${ended}/${c.total}`));
}

/* Live values: the server's value plus the time since it was read. */
function waitingNow(j, at) {
  /* As the server counts it: until the first start, also while stopped
   * before it (a job canceled before it started waits no more). */
  const waiting = !j.started_at && j.status !== 'finished' && j.status !== 'canceled';
  return waiting ? j.waiting_ms + (performance.now() - at) : j.waiting_ms;
}
function durationNow(j, at) {
  /* As the server counts it: a parent waiting for its children runs too. */
  const running = j.status === 'in_progress' || j.status === 'stopping';
  return running ? j.duration_ms + (performance.now() - at) : j.duration_ms;
}
function durationText(j, at) {
  return j.started_at || j.duration_ms ? human(durationNow(j, at)) : '–';
}

/* Cells that tick between refreshes: [cell, fn] pairs. */
let tickers = [];
function tick() {
  for (const [cell, fn] of tickers) cell.textContent = fn();
}

/* --- counts in the header --------------------------------------------- */

async function loadCounts() {
  const c = await api('/api/counts');
  const box = $('counts');
  clear(box);
  for (const s of Object.keys(LABELS)) {
    box.append(el('button', { type: 'button', class: 'count', title: 'Show ' + LABELS[s] + ' jobs',
      onclick: () => { $('f-status').value = s; location.hash = '#/'; resetPaging(); refresh(); } },
    LABELS[s], el('b', {}, (c[s] || 0).toLocaleString())));
  }
}

/* --- jobs list ----------------------------------------------------------- */

function filters() {
  return {
    status: $('f-status').value, type: $('f-type').value, run_by: $('f-runby').value.trim(),
    system: $('f-system').checked, all: $('f-all').checked,
  };
}

function resetPaging() {
  state.list.cursors = [0];
  state.list.page = 0;
}

function saveFilters() {
  const f = filters();
  f.limit = $('page-size').value;
  localStorage.setItem('jobd.filters', JSON.stringify(f));
}

function restoreFilters() {
  try {
    const f = JSON.parse(localStorage.getItem('jobd.filters') || '{}');
    $('f-status').value = f.status || '';
    $('f-runby').value = f.run_by || '';
    $('f-system').checked = !!f.system;
    $('f-all').checked = !!f.all;
    if (f.limit) $('page-size').value = f.limit;
    state.savedType = f.type || '';
  } catch (e) { /* a bad saved value: defaults */ }
}

async function loadJobs() {
  const L = state.list;
  const data = await api('/api/jobs' + qs({ ...filters(), limit: $('page-size').value, cursor: L.cursors[L.page] || '' }));
  L.next = data.next;
  L.rows = data.jobs;
  L.at = performance.now();
  for (const j of data.jobs) if (state.selected.has(j.id)) state.selected.set(j.id, j);
  renderJobs();
}

function renderJobs() {
  const L = state.list;
  const body = $('jobs-body');
  const frag = document.createDocumentFragment();
  tickers = [];
  for (const j of L.rows) {
    const at = L.at;
    const check = el('input', { type: 'checkbox', 'aria-label': 'Select job ' + j.id });
    check.checked = state.selected.has(j.id);
    check.addEventListener('click', (ev) => {
      ev.stopPropagation();
      if (check.checked) state.selected.set(j.id, j); else state.selected.delete(j.id);
      tr.classList.toggle('sel', check.checked);
      renderActions();
    });
    const waiting = el('td', { class: 'num' }, human(waitingNow(j, at)));
    const duration = el('td', { class: 'num' }, durationText(j, at));
    const tr = el('tr', { 'data-id': j.id, class: state.selected.has(j.id) ? 'sel' : null,
      onclick: () => { location.hash = '#/jobs/' + j.id; } },
    el('td', { class: 'c-check' }, check),
    el('td', { class: 'mono' }, el('a', { href: '#/jobs/' + j.id, onclick: (ev) => ev.stopPropagation() }, String(j.id))),
    el('td', { class: 'type', title: j.type }, j.type, j.system ? el('span', { class: 'muted' }, ' (system)') : null,
      j.parent !== null ? el('span', { class: 'muted' }, ' ↳ ' + j.parent) : null),
    el('td', { title: j.created_at }, when(j.created_at)),
    waiting,
    el('td', { title: j.started_at || '' }, when(j.started_at)),
    duration,
    el('td', {}, statusBadge(j.status)),
    el('td', {}, hasErrors(j) ? el('span', { class: 'badge err' }, 'Errors') : ''),
    el('td', {}, j.low_priority ? el('span', { class: 'badge low' }, 'Low') : ''),
    el('td', {}, j.run_by || ''),
    progressCell(j.progress, j.status === 'finished'),
    childrenCell(j));
    tickers.push([waiting, () => human(waitingNow(j, at))], [duration, () => durationText(j, at)]);
    frag.append(tr);
  }
  clear(body);
  body.append(frag);
  $('jobs-empty').hidden = L.rows.length > 0;
  $('check-all').checked = L.rows.length > 0 && L.rows.every((j) => state.selected.has(j.id));
  $('page-info').textContent = 'Page ' + (L.page + 1);
  $('page-prev').disabled = L.page === 0;
  $('page-first').disabled = L.page === 0;
  $('page-next').disabled = !L.next;
  renderActions();
}

/* Operation buttons for JOBS (an array), results into BOX. */
function renderOpButtons(container, jobs, box, after) {
  for (const b of container.querySelectorAll('button[data-op]')) b.remove();
  for (const o of OPS) {
    const valid = jobs.length > 0 && jobs.every(o.ok);
    const b = el('button', { type: 'button', class: 'btn' + (o.danger ? ' danger' : ''), 'data-op': o.op,
      title: valid ? '' : 'Not valid for ' + (jobs.length ? 'every selected job' : 'an empty selection') },
    o.label);
    b.disabled = !valid;
    b.addEventListener('click', () => runOp(o, jobs.map((j) => j.id), box, after));
    container.append(b);
  }
}

function renderActions() {
  const jobs = [...state.selected.values()];
  $('selinfo').textContent = jobs.length ? jobs.length + ' selected' : 'No job selected';
  renderOpButtons($('actions'), jobs, $('results'), refresh);
  if (jobs.length) {
    const clr = el('button', { type: 'button', class: 'btn', 'data-op': 'clear' }, 'Clear selection');
    clr.addEventListener('click', () => { state.selected.clear(); renderJobs(); });
    $('actions').append(clr);
  }
}

async function runOp(o, ids, box, after) {
  if (o.confirm && !window.confirm(o.confirm)) return;
  clear(box);
  box.hidden = false;
  const close = el('button', { type: 'button', class: 'btn close', onclick: () => { box.hidden = true; } }, 'Dismiss');
  box.append(close, el('strong', {}, o.label + ': '));
  try {
    const res = await api('/api/jobs/ops', { op: o.op, ids });
    const okCount = res.results.filter((r) => r.ok).length;
    box.append(`${okCount} of ${res.results.length} done`);
    const ul = el('ul');
    for (const r of res.results) {
      ul.append(el('li', { class: r.ok ? 'ok' : 'no' }, r.ok ? `job ${r.id}: ${o.label.toLowerCase()} done` : r.error));
    }
    box.append(ul);
  } catch (e) {
    box.append(el('span', { class: 'no' }, e.message));
  }
  await after();
}

/* --- job detail ------------------------------------------------------------ */

function field(dl, name, value) {
  dl.append(el('dt', {}, name), el('dd', {}, value));
}

async function loadDetail() {
  const d = state.detail;
  const job = await api('/api/jobs/' + d.id);
  d.job = job;
  d.at = performance.now();
  renderDetail();
  await loadChildren();
}

function renderDetail() {
  const d = state.detail;
  const j = d.job;
  const at = d.at;
  $('d-title').textContent = 'Job ' + j.id + ' · ' + j.type;
  document.title = 'Job ' + j.id + ' · jobd monitor';
  const st = $('d-status');
  st.className = 'badge st-' + j.status;
  st.textContent = LABELS[j.status] || j.status;
  $('d-errors').hidden = !hasErrors(j);
  $('d-low').hidden = !j.low_priority;
  const crumb = $('crumb-parent');
  clear(crumb);
  if (j.parent !== null) {
    crumb.append('parent ', el('a', { href: '#/jobs/' + j.parent }, 'job ' + j.parent));
    if (j.root !== j.parent) crumb.append(' · root ', el('a', { href: '#/jobs/' + j.root }, 'job ' + j.root));
  }
  renderOpButtons($('d-actions'), [j], $('d-results'), refresh);

  const dl = $('d-fields');
  clear(dl);
  tickers = [];
  const waiting = el('span', {}, human(waitingNow(j, at)));
  const duration = el('span', {}, durationText(j, at));
  tickers.push([waiting, () => human(waitingNow(j, at))], [duration, () => durationText(j, at)]);
  field(dl, 'ID', String(j.id));
  field(dl, 'Type', j.type + (j.system ? ' (system)' : ''));
  field(dl, 'Status', statusBadge(j.status));
  field(dl, 'Create date', when(j.created_at) + '  (' + j.created_at + ')');
  field(dl, 'Waiting', waiting);
  field(dl, 'Start date', j.started_at ? when(j.started_at) + '  (' + j.started_at + ')' : '–');
  field(dl, 'Duration', duration);
  field(dl, 'Finish date', j.finished_at ? when(j.finished_at) + '  (' + j.finished_at + ')' : '–');
  field(dl, 'Progress', el('span', {}, bar(j.progress, j.status === 'finished'), pct(j.progress)));
  field(dl, 'Overall progress', el('span', {}, bar(j.overall_progress, j.status === 'finished'), pct(j.overall_progress)));
  field(dl, 'Errors', j.errors + (j.finished_with_errors ? ' · finished with errors' : ''));
  field(dl, 'Low priority', j.low_priority ? 'yes' : 'no');
  field(dl, 'Run by', j.run_by || '–');
  field(dl, 'Parent', j.parent === null ? '– (root job)' : el('a', { href: '#/jobs/' + j.parent }, String(j.parent)));
  field(dl, 'Root', el('a', { href: '#/jobs/' + j.root }, String(j.root)));
  field(dl, 'Attempt', String(j.attempt));
  field(dl, 'Restarts', String(j.restarts));
  field(dl, 'Key', j.key || '–');
  field(dl, 'Source', j.source || '–');
  field(dl, 'Instance', j.instance || '–');
  field(dl, 'Waiting for children', j.waiting_for_children ? 'yes' : 'no');
  field(dl, 'Inconsistent', j.inconsistent ? 'yes: force-stopped, data may be inconsistent' : 'no');
  $('d-payload').textContent = JSON.stringify(j.payload, null, 2);
  $('d-checkpoint').textContent = j.checkpoint === null ? '–' : JSON.stringify(j.checkpoint, null, 2);

  const c = j.children;
  $('d-children-sum').textContent = c.total ? `${c.finished + c.canceled} of ${c.total} ended` : '';
  const chips = $('d-children-counts');
  clear(chips);
  for (const s of Object.keys(LABELS)) chips.append(el('span', { class: 'badge st-' + s }, LABELS[s] + ' ' + c[s]));
  chips.append(el('span', { class: 'badge err' }, 'With errors ' + c.errors));
  const ov = $('d-overall').firstChild;
  ov.style.width = Math.min(100, j.overall_progress) + '%';
  $('d-overall-text').textContent = pct(j.overall_progress);
}

async function loadChildren() {
  const d = state.detail;
  const data = await api('/api/jobs/' + d.id + '/children' + qs({ limit: 20, cursor: d.cursors[d.page] || '' }));
  d.childNext = data.next;
  const body = $('d-children');
  const frag = document.createDocumentFragment();
  const at = performance.now();
  for (const j of data.jobs) {
    const waiting = el('td', { class: 'num' }, human(waitingNow(j, at)));
    const duration = el('td', { class: 'num' }, durationText(j, at));
    tickers.push([waiting, () => human(waitingNow(j, at))], [duration, () => durationText(j, at)]);
    frag.append(el('tr', { onclick: () => { location.hash = '#/jobs/' + j.id; } },
      el('td', { class: 'mono' }, el('a', { href: '#/jobs/' + j.id }, String(j.id))),
      el('td', { class: 'type' }, j.type),
      el('td', {}, statusBadge(j.status)),
      waiting, duration,
      el('td', {}, hasErrors(j) ? el('span', { class: 'badge err' }, 'Errors') : ''),
      progressCell(j.progress, j.status === 'finished'),
      childrenCell(j)));
  }
  clear(body);
  body.append(frag);
  $('d-children-empty').hidden = data.jobs.length > 0;
  $('c-info').textContent = data.jobs.length || d.page ? 'Page ' + (d.page + 1) : '';
  $('c-prev').disabled = d.page === 0;
  $('c-first').disabled = d.page === 0;
  $('c-next').disabled = !d.childNext;
}

/* --- logs ------------------------------------------------------------------ */

const LOG_PAGE = 500;

function logParams() {
  const grep = $('l-grep').value.trim();
  return {
    level: $('l-level').value,
    grep: $('l-regex').checked ? '' : grep,
    regex: $('l-regex').checked ? grep : '',
    since: $('l-since').value.trim(),
    until: $('l-until').value.trim(),
    tree: $('l-tree').checked,
    limit: LOG_PAGE,
  };
}

function logLine(e, tree) {
  return el('div', { class: 'logline', 'data-id': e.id },
    el('span', { class: 't', title: e.time }, when(e.time) + '.' + e.time.slice(20, 23)),
    el('span', { class: 'j' }, tree ? '#' + e.job : ''),
    el('span', { class: 'lv-' + e.level }, e.level.toUpperCase()),
    el('span', { class: 'a', title: 'attempt' }, e.attempt ? 'a' + e.attempt : ''),
    el('span', { class: 'm' }, e.message));
}

/* Loads the log from the start (RESET) or the entries after the last one. */
async function loadLogs(reset) {
  const d = state.detail;
  if (!d || (!reset && (d.resetPending || !d.logLoaded))) return;
  const seq = ++d.logSeq;
  const p = logParams();
  if (reset) d.resetPending = true;
  else if (d.lastLog) p.after = d.lastLog;
  let data;
  try {
    data = await api('/api/jobs/' + d.id + '/logs' + qs(p));
  } catch (e) {
    if (seq !== d.logSeq) return;
    d.resetPending = false;
    const n = $('l-notice');
    n.hidden = false;
    n.textContent = e.status >= 400 && e.status < 500 ? e.message : 'cannot read the log: ' + e.message;
    return;
  }
  if (seq !== d.logSeq || state.detail !== d) return; /* a newer request won */
  if (reset) {
    d.resetPending = false;
    d.logLoaded = true;
  }
  const box = $('logs');
  const stick = box.scrollTop + box.clientHeight >= box.scrollHeight - 30;
  if (reset) {
    clear(box);
    d.logCount = 0;
    d.lastLog = '';
  }
  const frag = document.createDocumentFragment();
  for (const e of data.entries) frag.append(logLine(e, p.tree));
  box.append(frag);
  d.logCount += data.entries.length;
  if (data.entries.length) d.lastLog = data.entries[data.entries.length - 1].id;
  if (!d.logCount && !box.querySelector('.none')) box.append(el('div', { class: 'none' }, 'No log entries match.'));
  else if (d.logCount) { const none = box.querySelector('.none'); if (none) none.remove(); }
  d.truncated = data.truncated;
  const notes = [];
  if (data.dropped) notes.push(data.dropped.toLocaleString() + ' earlier entries dropped');
  if (data.truncated) notes.push('more entries match: showing the first ' + d.logCount.toLocaleString());
  $('l-notice').hidden = notes.length === 0;
  $('l-notice').textContent = notes.join(' · ');
  $('l-more').hidden = !data.truncated;
  $('l-count').textContent = d.logCount ? d.logCount.toLocaleString() + ' entries' : '';
  if (stick || reset) box.scrollTop = box.scrollHeight;
}

/* --- statistics ------------------------------------------------------------ */

const SVGNS = 'http://www.w3.org/2000/svg';
function svg(tag, attrs, ...children) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  for (const c of children) if (c) e.append(c);
  return e;
}
function svgTitle(text) {
  const t = document.createElementNS(SVGNS, 'title');
  t.textContent = text;
  return t;
}

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

/*
 * A chart of TIMES (ms) with SERIES [{name, cls, values, kind: 'bar'|'line'}];
 * FMT formats a y value.
 */
function drawChart(box, times, series, fmt, spanMs) {
  clear(box);
  const W = Math.max(box.clientWidth || 800, 320), H = 240;
  const left = 64, right = 12, top = 12, bottom = 28;
  const pw = W - left - right, ph = H - top - bottom;
  const n = times.length;
  let max = 0;
  for (const s of series) for (const v of s.values) if (v !== null && v > max) max = v;
  max = niceMax(max);
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': series.map((s) => s.name).join(', ') });
  for (let i = 0; i <= 4; i++) {
    const y = top + ph - (ph * i) / 4;
    root.append(svg('line', { class: 'grid', x1: left, x2: W - right, y1: y, y2: y }));
    const t = svg('text', { class: 'axis', x: left - 8, y: y + 4, 'text-anchor': 'end' });
    t.textContent = fmt((max * i) / 4);
    root.append(t);
  }
  const slot = pw / Math.max(n, 1);
  const x = (i) => left + slot * i + slot / 2;
  const y = (v) => top + ph - (ph * v) / max;
  const labelEvery = Math.max(1, Math.ceil(n / Math.max(2, Math.floor(pw / 70))));
  const pad = (v) => String(v).padStart(2, '0');
  const stamp = (ms) => {
    const d = new Date(ms);
    return (spanMs >= 3600000 ? pad(d.getDate()) + ' ' : '') + pad(d.getHours()) + ':' + pad(d.getMinutes());
  };
  for (let i = 0; i < n; i += labelEvery) {
    const t = svg('text', { class: 'axis', x: x(i), y: H - 8, 'text-anchor': 'middle' });
    t.textContent = stamp(times[i]);
    root.append(t);
  }
  for (const s of series) {
    if (s.kind === 'bar') {
      const bw = Math.max(1, slot * 0.7);
      s.values.forEach((v, i) => {
        const h = ph * (v || 0) / max;
        root.append(svg('rect', { class: 'barc', x: x(i) - bw / 2, y: top + ph - h, width: bw, height: Math.max(h, v ? 1 : 0) },
          svgTitle(stamp(times[i]) + ': ' + fmt(v || 0) + ' ' + s.name)));
      });
    } else {
      let d = '';
      let pen = false;
      s.values.forEach((v, i) => {
        if (v === null) { pen = false; return; }
        d += (pen ? 'L' : 'M') + x(i).toFixed(1) + ' ' + y(v).toFixed(1);
        pen = true;
      });
      if (d) root.append(svg('path', { class: 'l-' + s.cls, d, fill: 'none', 'stroke-width': 2 }));
      s.values.forEach((v, i) => {
        if (v === null) return;
        root.append(svg('circle', { class: 'p-' + s.cls, cx: x(i), cy: y(v), r: n > 120 ? 1.5 : 3 },
          svgTitle(stamp(times[i]) + ': ' + s.name + ' ' + fmt(v))));
      });
    }
  }
  box.append(root);
}

function statsWindow() { return localStorage.getItem('jobd.window') || '1h'; }

async function loadStats() {
  const w = statsWindow();
  for (const b of $('s-window').querySelectorAll('button')) b.classList.toggle('on', b.dataset.w === w);
  const data = await api('/api/stats' + qs({ since: w, type: $('s-type').value }));
  const type = $('s-type').value;
  const rows = data.minutes.map((m) => {
    const c = type ? (m.by_type[type] || { created: 0, started: 0, finished: 0, errors: 0,
      wait_avg_ms: null, wait_min_ms: null, wait_max_ms: null, wait_p95_ms: null }) : m;
    return { t: Date.parse(m.minute), ...c };
  });
  const unit = data.span_ms >= 3600000 ? 'hour' : 'minute';
  $('s-span').textContent = 'one point per ' + unit;
  $('s-created-title').textContent = 'Jobs created per ' + unit;
  const sum = (k) => rows.reduce((a, r) => a + r[k], 0);
  const started = sum('started');
  const waitSum = rows.reduce((a, r) => a + (r.wait_avg_ms === null ? 0 : r.wait_avg_ms * r.started), 0);
  const mins = rows.map((r) => r.wait_min_ms).filter((v) => v !== null);
  const maxs = rows.map((r) => r.wait_max_ms).filter((v) => v !== null);
  const tiles = $('s-tiles');
  clear(tiles);
  for (const [k, v] of [['Created', sum('created').toLocaleString()], ['Started', started.toLocaleString()],
    ['Finished', sum('finished').toLocaleString()], ['Finished with errors', sum('errors').toLocaleString()],
    ['Average waiting', started ? human(waitSum / started) : '–'],
    ['Min waiting', mins.length ? human(Math.min(...mins)) : '–'],
    ['Max waiting', maxs.length ? human(Math.max(...maxs)) : '–']]) {
    tiles.append(el('div', { class: 'tile' }, el('div', { class: 'v' }, v), el('div', { class: 'k' }, k)));
  }
  const times = rows.map((r) => r.t);
  drawChart($('chart-created'), times, [{ name: 'created', values: rows.map((r) => r.created), kind: 'bar' }],
    (v) => String(Math.round(v * 10) / 10), data.span_ms);
  drawChart($('chart-wait'), times, [
    { name: 'max', cls: 'max', values: rows.map((r) => r.wait_max_ms), kind: 'line' },
    { name: 'average', cls: 'avg', values: rows.map((r) => r.wait_avg_ms), kind: 'line' },
    { name: 'min', cls: 'min', values: rows.map((r) => r.wait_min_ms), kind: 'line' },
  ], human, data.span_ms);
}

/* --- Kafka view ------------------------------------------------------------ */

/*
 * What every live instance with the consume role publishes of its input
 * partitions (GET /api/kafka): one card per instance, one row per
 * partition. Lag is high watermark - committed offset, so it grows while
 * an instance is paused or wedged.
 */
const KAFKA_COLUMNS = [
  ['Topic', ''], ['Partition', 'num'], ['Committed', 'num'], ['High watermark', 'num'],
  ['Lag', 'num'], ['Messages/s', 'num'], ['Dead letters', 'num'],
];

function kafkaNumber(v) { return v === null || v === undefined ? '–' : v.toLocaleString(); }

function kafkaInstance(inst) {
  const paused = el('span', { class: 'badge ' + (inst.paused ? 'st-stopped' : 'st-in_progress') },
    inst.paused ? 'Paused' : 'Consuming');
  const head = el('h2', { class: 'k-head' }, inst.instance, ' ', paused,
    el('span', { class: 'muted' }, ' group ', inst.group, ' · lag ', kafkaNumber(inst.lag),
      ' · updated ', when(inst.updated_at)));
  const minutes = inst.dead_letters_minutes;
  const thead = el('tr', null, ...KAFKA_COLUMNS.map(([name, cls]) =>
    el('th', { class: cls || null, title: name === 'Dead letters' ? 'in the last ' + minutes + ' minutes' : null },
      name === 'Dead letters' ? name + ' (' + minutes + ' min)' : name)));
  const rows = inst.partitions.map((p) => el('tr', { class: p.lag > 0 ? 'k-lag' : null },
    el('td', { class: 'mono' }, p.topic),
    el('td', { class: 'num' }, String(p.partition)),
    el('td', { class: 'num' }, kafkaNumber(p.committed)),
    el('td', { class: 'num' }, kafkaNumber(p.high_watermark)),
    el('td', { class: 'num k-lagv' }, kafkaNumber(p.lag)),
    el('td', { class: 'num' }, String(p.messages_per_s)),
    el('td', { class: 'num' + (p.dead_letters ? ' k-dead' : '') }, kafkaNumber(p.dead_letters))));
  const body = rows.length ? rows
    : [el('tr', null, el('td', { class: 'empty', colspan: KAFKA_COLUMNS.length }, 'No partition assigned to this instance.'))];
  return el('div', { class: 'card k-instance', 'data-instance': inst.instance }, head,
    el('div', { class: 'table-wrap' }, el('table', { class: 'jobs compact k-table' },
      el('thead', null, thead), el('tbody', null, ...body))));
}

async function loadKafka() {
  const data = await api('/api/kafka');
  const box = $('k-instances');
  clear(box);
  const parts = data.instances.reduce((n, i) => n + i.partitions.length, 0);
  const lag = data.instances.reduce((n, i) => n + (i.lag || 0), 0);
  $('k-summary').textContent = data.instances.length
    ? data.instances.length + ' instance' + (data.instances.length === 1 ? '' : 's') + ' consuming, '
      + parts + ' partition' + (parts === 1 ? '' : 's') + ', total lag ' + lag.toLocaleString()
    : '';
  if (!data.instances.length) {
    box.append(el('p', { class: 'empty' }, 'No jobd instance with the consume role is publishing its Kafka view.'));
    return;
  }
  for (const inst of data.instances) box.append(kafkaInstance(inst));
}

/* --- routing and refresh ---------------------------------------------------- */

function route() {
  const h = location.hash || '#/';
  const m = /^#\/jobs\/(\d+)$/.exec(h);
  const view = m ? 'detail' : h === '#/stats' ? 'stats' : h === '#/kafka' ? 'kafka' : 'jobs';
  for (const v of ['jobs', 'detail', 'stats', 'kafka']) $('view-' + v).hidden = v !== view;
  $('tab-jobs').classList.toggle('active', view === 'jobs' || view === 'detail');
  $('tab-stats').classList.toggle('active', view === 'stats');
  $('tab-kafka').classList.toggle('active', view === 'kafka');
  tickers = [];
  if (view === 'detail') {
    const id = Number(m[1]);
    if (!state.detail || state.detail.id !== id) {
      state.detail = { id, job: null, cursors: [0], page: 0, childNext: null, lastLog: '', logCount: 0, logSeq: 0 };
      clear($('logs'));
      clear($('d-fields'));
      clear($('d-children'));
      $('d-results').hidden = true;
      $('d-title').textContent = 'Job ' + id;
      loadLogs(true);
    }
  } else {
    state.detail = null;
    document.title = { stats: 'Statistics', kafka: 'Kafka' }[view] || 'Jobs';
    document.title += ' · jobd monitor';
  }
  state.view = view;
  refresh();
}

let refreshing = false;
async function refresh() {
  if (refreshing) { state.again = true; return; }
  refreshing = true;
  try {
    const tasks = [loadCounts()];
    if (state.view === 'jobs') tasks.push(loadJobs());
    else if (state.view === 'stats') tasks.push(loadStats());
    else if (state.view === 'kafka') tasks.push(loadKafka());
    else if (state.view === 'detail') {
      tasks.push(loadDetail());
      const d = state.detail;
      if ($('l-follow').checked && d && !d.truncated) tasks.push(loadLogs(false));
    }
    await Promise.all(tasks);
    banner('');
  } catch (e) {
    if (e.status === 404 && state.view === 'detail') banner(e.message);
    else banner(e.status === 503 ? 'Redis is unreachable: ' + e.message : e.message);
  } finally {
    refreshing = false;
    if (state.again) { state.again = false; setTimeout(refresh, 0); }
  }
}

function debounce(fn, ms) {
  let t = null;
  return () => { clearTimeout(t); t = setTimeout(fn, ms); };
}

async function loadTypes() {
  try {
    const data = await api('/api/types');
    for (const t of data.types) {
      $('f-type').append(el('option', { value: t.name }, t.name + (t.system ? ' (system)' : '')));
      $('s-type').append(el('option', { value: t.name }, t.name));
    }
    if (state.savedType) $('f-type').value = state.savedType;
  } catch (e) { /* the list still works without type names */ }
}

function init() {
  restoreFilters();
  const onFilter = () => { saveFilters(); resetPaging(); refresh(); };
  for (const id of ['f-status', 'f-type', 'f-system', 'f-all', 'page-size']) $(id).addEventListener('change', onFilter);
  $('f-runby').addEventListener('input', debounce(onFilter, 300));
  $('check-all').addEventListener('change', () => {
    for (const j of state.list.rows) {
      if ($('check-all').checked) state.selected.set(j.id, j); else state.selected.delete(j.id);
    }
    renderJobs();
  });
  $('page-next').addEventListener('click', () => {
    const L = state.list;
    if (!L.next) return;
    L.cursors[L.page + 1] = L.next;
    L.page++;
    refresh();
  });
  $('page-prev').addEventListener('click', () => { if (state.list.page > 0) { state.list.page--; refresh(); } });
  $('page-first').addEventListener('click', () => { resetPaging(); refresh(); });
  $('c-next').addEventListener('click', () => {
    const d = state.detail;
    if (!d || !d.childNext) return;
    d.cursors[d.page + 1] = d.childNext;
    d.page++;
    refresh();
  });
  $('c-prev').addEventListener('click', () => { const d = state.detail; if (d && d.page > 0) { d.page--; refresh(); } });
  $('c-first').addEventListener('click', () => { const d = state.detail; if (d) { d.page = 0; refresh(); } });
  const relog = () => loadLogs(true);
  for (const id of ['l-level', 'l-regex', 'l-tree']) $(id).addEventListener('change', relog);
  for (const id of ['l-grep', 'l-since', 'l-until']) $(id).addEventListener('input', debounce(relog, 350));
  $('l-more').addEventListener('click', () => { if (state.detail) { state.detail.truncated = false; loadLogs(false); } });
  for (const b of $('s-window').querySelectorAll('button')) {
    b.addEventListener('click', () => { localStorage.setItem('jobd.window', b.dataset.w); refresh(); });
  }
  $('s-type').addEventListener('change', refresh);
  $('token-btn').addEventListener('click', () => { $('token-box').hidden = !$('token-box').hidden; });
  $('token-box').addEventListener('submit', (ev) => {
    ev.preventDefault();
    state.token = $('token-input').value.trim();
    localStorage.setItem('jobd.token', state.token);
    $('token-box').hidden = true;
    refresh();
  });
  $('token-clear').addEventListener('click', () => {
    state.token = '';
    $('token-input').value = '';
    localStorage.removeItem('jobd.token');
  });
  window.addEventListener('hashchange', route);
  window.addEventListener('resize', debounce(() => { if (state.view === 'stats') refresh(); }, 200));
  setInterval(() => { if (!document.hidden) refresh(); }, REFRESH_MS);
  setInterval(tick, 1000);
  loadTypes().then(route);
}

document.addEventListener('DOMContentLoaded', init);
