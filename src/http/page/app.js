/*
 * jobd monitor page: the App Monitor "Jobs" screen over the JSON API.
 *
 * Vanilla JS, no libraries. Every piece of job data goes into the DOM as
 * text (textContent and text nodes, never parsed as HTML), so a payload, type or
 * log line holding markup is shown, not run. Views are chosen by the URL
 * hash (#/, #/jobs/ID, #/stats, #/kafka, #/schedules) and what a view shows is in the hash's
 * query: the list's filters and sort (#/?status=stopped&sort=-duration),
 * a job's log filters (#/jobs/7?level=warn), the statistics' window and
 * type (#/stats?w=6h&type=import). So a URL can be shared, the back button
 * undoes a filter, and each job opened from a link starts with a clean
 * log view. The visible view refreshes every 2 s and live values (waiting,
 * duration) tick every second between refreshes, from the server's values
 * plus the time elapsed since they were read.
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
/* What an operation did to a job, by the status it left the job in. */
const DONE = {
  stop: (st) => (st === 'stopping' ? 'stop requested' : 'stopped'),
  resume: () => 'resumed',
  'force-stop': () => 'force-stopped',
  cancel: () => 'canceled',
  restart: () => 'restarted',
  'low-priority': () => 'set to low priority',
  'low-priority-off': () => 'low priority removed',
};
/* Columns the list sorts by: the server sorts all matching jobs
 * (GET /api/jobs?sort=KEY, "-KEY" highest first) and pages them. */
const SORTS = new Set(['created', 'started', 'waiting', 'duration', 'status']);
const DEFAULT_SORT = '-created';

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
  list: { cursors: [0], page: 0, next: null, rows: [], at: 0, query: null },
  detail: null,
  opResults: [], /* result boxes of operations: {box, op, rows: [{id, ok, status, text}]} */
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
/* A job's badge: a scheduled job (pending, its run_at to come) shows
 * Scheduled and its time; the state machine still says pending. */
function jobBadge(j) {
  if (!j.scheduled) return statusBadge(j.status);
  return el('span', { class: 'badge st-scheduled', title: 'Pending until ' + j.run_at }, 'Scheduled ' + when(j.run_at));
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
  return el('td', { class: 'c-progress' }, bar(p, done), el('span', { class: 'pct' }, pct(p)));
}

/* A job's progress as the CLI rolls it up: with children, the tree's
 * overall progress (its own and its children's), so a parent whose
 * handler is done but whose children are not does not show 100 %. */
function jobProgressCell(j) {
  if (!j.children || !j.children.total) return progressCell(j.progress, j.status === 'finished');
  const td = progressCell(j.overall_progress, j.status === 'finished');
  td.title = `tree ${pct(j.overall_progress)}: its own ${pct(j.progress)} and ${j.children.total} children`;
  return td;
}

function childrenCell(j) {
  const c = j.children;
  if (!c || !c.total) return el('td', { class: 'muted c-children' }, '–');
  const ended = c.finished + c.canceled;
  return el('td', { class: 'c-children', title: `${c.pending} pending, ${c.in_progress} in progress, ${c.stopping} stopping, ` +
      `${c.stopped} stopped, ${c.finished} finished, ${c.canceled} canceled, ${c.errors} with errors` },
    bar(c.progress, ended === c.total), el('span', { class: 'pct' }, `${ended}/${c.total}`));
}

/* Live values: the server's value plus the time since it was read. */
function waitingNow(j, at) {
  /* As the server counts it: until the first start, also while stopped
   * before it (a job canceled before it started waits no more); from its
   * run time for a scheduled job (the next refresh brings it). */
  const waiting = !j.started_at && !j.scheduled && j.status !== 'finished' && j.status !== 'canceled';
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
      onclick: () => { $('f-status').value = s; setListUrl(true); } },
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

/* --- the URL: #/PATH?QUERY ------------------------------------------------ */

function parseHash() {
  const h = (location.hash || '#/').slice(1);
  const q = h.indexOf('?');
  return { path: q < 0 ? h : h.slice(0, q), params: new URLSearchParams(q < 0 ? '' : h.slice(q + 1)) };
}

/* Sets the URL to PATH with PARAMS (defaults left out): a new history
 * entry when PUSH (a choice the back button undoes), else the current one
 * replaced (typing in a text field). Either way the view follows it. */
function setUrl(path, params, push) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== '' && v !== null && v !== undefined && v !== false) p.set(k, v === true ? '1' : String(v));
  }
  const s = p.toString();
  const hash = '#' + path + (s ? '?' + s : '');
  if (hash === (location.hash || '#/')) return;
  if (push) {
    location.hash = hash; /* hashchange routes */
  } else {
    history.replaceState(null, '', hash);
    route();
  }
}

/* A text field set from the URL, left alone while it says the same (its
 * caret and trailing space stay while the user types). */
function setText(id, v) {
  if ($(id).value.trim() !== v) $(id).value = v;
}

function listParams() {
  const f = filters();
  return { status: f.status, type: f.type, run_by: f.run_by, system: f.system, all: f.all,
    limit: $('page-size').value === '50' ? '' : $('page-size').value,
    sort: state.sort === DEFAULT_SORT ? '' : state.sort };
}
function setListUrl(push) { setUrl('/', listParams(), push); }

/* The list's controls from the URL's PARAMS. */
function applyListParams(params) {
  const opt = (sel, v) => ([...$(sel).options].some((o) => o.value === v) ? v : '');
  $('f-status').value = opt('f-status', params.get('status') || '');
  state.wantType = params.get('type') || '';
  $('f-type').value = opt('f-type', state.wantType);
  setText('f-runby', params.get('run_by') || '');
  $('f-system').checked = params.get('system') === '1';
  $('f-all').checked = params.get('all') === '1';
  $('page-size').value = opt('page-size', params.get('limit') || '50') || '50';
  const sort = params.get('sort') || DEFAULT_SORT;
  state.sort = SORTS.has(sort.replace(/^-/, '')) ? sort : DEFAULT_SORT;
}

async function loadJobs() {
  const L = state.list;
  const sort = state.sort;
  const data = await api('/api/jobs' + qs({ ...filters(), limit: $('page-size').value,
    sort: sort === DEFAULT_SORT ? '' : sort, cursor: L.cursors[L.page] || '' }));
  L.next = data.next;
  L.rows = data.jobs;
  /* The order of these rows: the headers and pager say it, not the one
   * just asked for (its rows are on their way). */
  L.sort = sort;
  /* A sort by a key no index holds covers the newest jobs only. */
  L.complete = data.complete !== false;
  L.examined = data.examined || 0;
  L.at = performance.now();
  for (const j of data.jobs) if (state.selected.has(j.id)) state.selected.set(j.id, j);
  renderJobs();
}

function renderSortHeaders(sort) {
  const key = sort.replace(/^-/, '');
  for (const th of document.querySelectorAll('#jobs-table th[data-sort]')) {
    const on = th.dataset.sort === key;
    th.setAttribute('aria-sort', on ? (sort.startsWith('-') ? 'descending' : 'ascending') : 'none');
    th.classList.toggle('sorted', on);
  }
}

function renderJobs() {
  const L = state.list;
  const body = $('jobs-body');
  const frag = document.createDocumentFragment();
  tickers = [];
  const sort = L.sort || state.sort;
  renderSortHeaders(sort);
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
    const waiting = el('td', { class: 'num c-waiting' }, human(waitingNow(j, at)));
    const duration = el('td', { class: 'num c-duration' }, durationText(j, at));
    const tr = el('tr', { 'data-id': j.id, class: state.selected.has(j.id) ? 'sel' : null,
      onclick: () => { location.hash = '#/jobs/' + j.id; } },
    el('td', { class: 'c-check' }, check),
    el('td', { class: 'mono' }, el('a', { href: '#/jobs/' + j.id, onclick: (ev) => ev.stopPropagation() }, String(j.id))),
    el('td', { class: 'type', title: j.type }, j.type, j.system ? el('span', { class: 'muted' }, ' (system)') : null,
      j.parent !== null ? el('span', { class: 'muted' }, ' ↳ ' + j.parent) : null),
    el('td', { class: 'c-created', title: j.created_at }, when(j.created_at)),
    waiting,
    el('td', { class: 'c-started', title: j.started_at || '' }, when(j.started_at)),
    duration,
    el('td', { class: 'c-status' }, jobBadge(j)),
    el('td', { class: 'c-errors' }, hasErrors(j) ? el('span', { class: 'badge err' }, 'Errors') : ''),
    el('td', { class: 'c-low' }, j.low_priority ? el('span', { class: 'badge low' }, 'Low') : ''),
    el('td', { class: 'c-runby' }, j.run_by || ''),
    jobProgressCell(j),
    childrenCell(j));
    tickers.push([waiting, () => human(waitingNow(j, at))], [duration, () => durationText(j, at)]);
    frag.append(tr);
  }
  clear(body);
  body.append(frag);
  $('jobs-empty').hidden = L.rows.length > 0;
  $('check-all').checked = L.rows.length > 0 && L.rows.every((j) => state.selected.has(j.id));
  $('page-info').textContent = 'Page ' + (L.page + 1);
  const byAge = sort === DEFAULT_SORT;
  $('page-first').textContent = byAge ? 'Newest' : 'First';
  $('page-prev').textContent = byAge ? '‹ Newer' : '‹ Previous';
  $('page-next').textContent = byAge ? 'Older ›' : 'Next ›';
  const partial = $('sort-partial');
  partial.hidden = L.complete;
  partial.textContent = L.complete ? '' : `Sorted among the newest ${L.examined.toLocaleString()} ` +
    'jobs: older ones are left out of this order (sort by Create date to reach them)';
  $('page-prev').disabled = L.page === 0;
  $('page-first').disabled = L.page === 0;
  $('page-next').disabled = !L.next;
  renderActions();
}

/*
 * Operation buttons for JOBS (an array), results into BOX. A button is
 * enabled when the operation is valid for at least one of them, and says
 * for how many ("Stop 3 of 5"); like jobctl, it is sent for them all and
 * the server applies it to those that qualify and refuses the others,
 * each with its reason.
 */
function renderOpButtons(container, jobs, box, after) {
  for (const b of container.querySelectorAll('button[data-op]')) b.remove();
  for (const o of OPS) {
    const n = jobs.filter(o.ok).length;
    const some = n > 0 && n < jobs.length;
    const b = el('button', { type: 'button', class: 'btn' + (o.danger ? ' danger' : ''), 'data-op': o.op,
      'data-count': n,
      title: n === 0 ? 'Not valid for ' + (jobs.length ? 'any selected job' : 'an empty selection') :
        some ? `Valid for ${n} of the ${jobs.length} selected jobs: the others will be refused` : '' },
    o.label, some ? el('span', { class: 'of' }, ` ${n} of ${jobs.length}`) : null);
    b.disabled = n === 0;
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

/* A refusal in a few words, for the summary: "finished", "not stoppable". */
function refusalReason(error) {
  let m;
  if ((m = /^job \d+ is (\w+): /.exec(error))) return (LABELS[m[1]] || m[1]).toLowerCase();
  if (/^job \d+ not found/.test(error)) return 'not found';
  if ((m = /cannot be (\w+): its type is not (\w+)/.exec(error))) return 'not ' + m[2];
  return error.replace(/^job \d+ /, '');
}

/* "3 stopped, 2 stop requested, 2 refused: finished" from RESULTS of OP. */
function opSummary(o, results) {
  const groups = new Map();
  const add = (k) => groups.set(k, (groups.get(k) || 0) + 1);
  for (const r of results.filter((x) => x.ok)) add(DONE[o.op](r.status));
  const refused = new Map();
  for (const r of results.filter((x) => !x.ok)) {
    const k = refusalReason(r.error);
    refused.set(k, (refused.get(k) || 0) + 1);
  }
  const parts = [...groups].map(([k, n]) => `${n} ${k}`);
  const nref = results.length - results.filter((x) => x.ok).length;
  if (nref) parts.push(`${nref} refused: ` + (refused.size === 1 ? [...refused.keys()][0] :
    [...refused].map(([k, n]) => `${n} ${k}`).join(', ')));
  return parts.join(', ');
}

/* One result line: what happened and, for a job that changed, the status
 * it is in now (kept live while it is still stopping). */
function opLine(o, r) {
  if (!r.ok) return r.error;
  const now = r.status ? LABELS[r.status] || r.status : 'unknown';
  return `job ${r.id}: ${DONE[o.op](r.opStatus)}; now ${now}`;
}

function renderOpResult(res) {
  const ul = res.box.querySelector('ul');
  if (!ul) return;
  clear(ul);
  for (const r of res.rows) {
    ul.append(el('li', { class: r.ok ? 'ok' : 'no', 'data-id': r.id,
      'data-status': r.status || '' }, opLine(res.op, r)));
  }
}

/* Rereads the jobs of result lines still stopping (at most 20 a turn). */
async function followOpResults() {
  state.opResults = state.opResults.filter((res) => !res.box.hidden && res.box.querySelector('ul'));
  const jobs = state.opResults.flatMap((res) => res.rows.filter((r) => r.ok && r.status === 'stopping')
    .map((r) => [res, r])).slice(0, 20);
  await Promise.all(jobs.map(async ([res, r]) => {
    try {
      const j = await api('/api/jobs/' + r.id);
      if (j.status !== r.status) { r.status = j.status; renderOpResult(res); }
    } catch (e) { /* gone meanwhile: the line keeps the last status */ }
  }));
}

async function runOp(o, ids, box, after) {
  if (o.confirm && !window.confirm(o.confirm)) return;
  clear(box);
  box.hidden = false;
  state.opResults = state.opResults.filter((res) => res.box !== box);
  const close = el('button', { type: 'button', class: 'btn close', onclick: () => { box.hidden = true; } }, 'Dismiss');
  box.append(close, el('strong', {}, o.label + ': '));
  try {
    const res = await api('/api/jobs/ops', { op: o.op, ids });
    const rows = res.results.map((r) => ({ ...r, opStatus: r.status }));
    box.append(el('span', { class: 'summary' }, opSummary(o, res.results)), el('ul'));
    const entry = { box, op: o, rows };
    state.opResults.push(entry);
    renderOpResult(entry);
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
  await Promise.all([loadChildren(), loadWhy(job)]);
}

/* A pending job says why it has not started (GET /api/jobs/ID/why). */
async function loadWhy(job) {
  const box = $('d-why');
  if (job.status !== 'pending') { box.hidden = true; return; }
  const why = await api('/api/jobs/' + job.id + '/why');
  if (state.detail === null || state.detail.id !== job.id) return;
  const list = $('d-why-list');
  clear(list);
  for (const r of why.reasons) list.append(el('li', { 'data-code': r.code }, r.text));
  box.hidden = why.reasons.length === 0;
}

function renderDetail() {
  const d = state.detail;
  const j = d.job;
  const at = d.at;
  $('d-title').textContent = 'Job ' + j.id + ' · ' + j.type;
  document.title = 'Job ' + j.id + ' · jobd monitor';
  const st = $('d-status');
  st.className = 'badge st-' + (j.scheduled ? 'scheduled' : j.status);
  st.textContent = j.scheduled ? 'Scheduled' : LABELS[j.status] || j.status;
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
  field(dl, 'Status', jobBadge(j));
  if (j.run_at) field(dl, 'Run at', when(j.run_at) + '  (' + j.run_at + ')' + (j.scheduled ? '' : ' · due'));
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
  if (j.waiting_for_limit) field(dl, 'Waiting for its type\'s limit', j.waiting_for_limit);
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
    const waiting = el('td', { class: 'num c-waiting' }, human(waitingNow(j, at)));
    const duration = el('td', { class: 'num c-duration' }, durationText(j, at));
    tickers.push([waiting, () => human(waitingNow(j, at))], [duration, () => durationText(j, at)]);
    frag.append(el('tr', { onclick: () => { location.hash = '#/jobs/' + j.id; } },
      el('td', { class: 'mono' }, el('a', { href: '#/jobs/' + j.id }, String(j.id))),
      el('td', { class: 'type' }, j.type),
      el('td', { class: 'c-status' }, jobBadge(j)),
      waiting, duration,
      el('td', { class: 'c-errors' }, hasErrors(j) ? el('span', { class: 'badge err' }, 'Errors') : ''),
      jobProgressCell(j),
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

/* The log view's controls as URL parameters of #/jobs/ID (defaults left out). */
function logUrlParams() {
  return { level: $('l-level').value, grep: $('l-grep').value.trim(), regex: $('l-regex').checked,
    since: $('l-since').value.trim(), until: $('l-until').value.trim(), tree: $('l-tree').checked,
    follow: $('l-follow').checked ? '' : '0' };
}
function setLogUrl(push) {
  if (state.detail) setUrl('/jobs/' + state.detail.id, logUrlParams(), push);
}

/* The log view's controls from the URL: what is not there is the default,
 * so a job opened from a link starts with a clean log view. */
function applyLogParams(params) {
  const level = params.get('level') || '';
  $('l-level').value = [...$('l-level').options].some((o) => o.value === level) ? level : '';
  setText('l-grep', params.get('grep') || '');
  $('l-regex').checked = params.get('regex') === '1';
  setText('l-since', params.get('since') || '');
  setText('l-until', params.get('until') || '');
  $('l-tree').checked = params.get('tree') === '1';
  $('l-follow').checked = params.get('follow') !== '0';
}

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

/* A step of 1, 2 or 5 times a power of ten near V / 4: 4-6 ticks. */
function niceStep(v) {
  if (!(v > 0)) return 1;
  const raw = v / 4;
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}

/* The unit of a y axis of milliseconds: ms below a second, s below two
 * minutes, min above. */
function timeUnit(maxMs) {
  if (maxMs < 1000) return { name: 'ms', div: 1 };
  if (maxMs < 120000) return { name: 's', div: 1000 };
  return { name: 'min', div: 60000 };
}

/* Round steps for the time axis, in minutes. */
const TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440];
const PALETTE = ['#2563eb', '#15803d', '#b45309', '#9333ea', '#db2777', '#0891b2', '#65a30d', '#dc2626'];

/*
 * A chart over TIMES (ms, one slot each of SPAN ms) of SERIES [{name, cls
 * or color, values, kind: 'bar'|'line'}]; bars are stacked. The y axis has
 * ticks at round values in Y.unit ("ms", "s", "min": values are ms; or
 * Y.count, a count) and its title Y.title; the x axis has ticks at round
 * times (every 5 min, 1 h ...) in local time.
 */
function drawChart(box, times, series, y, spanMs) {
  clear(box);
  const W = Math.max(box.clientWidth || 800, 300), H = 240;
  const left = 58, right = 12, top = 22, bottom = 34;
  const pw = W - left - right, ph = H - top - bottom;
  const n = times.length;
  const bars = series.filter((s) => s.kind === 'bar');
  let max = 0;
  for (let i = 0; i < n; i++) {
    const stack = bars.reduce((a, s) => a + (s.values[i] || 0), 0);
    if (stack > max) max = stack;
  }
  for (const s of series) if (s.kind !== 'bar') for (const v of s.values) if (v !== null && v > max) max = v;
  const unit = y.count ? { name: '', div: 1 } : timeUnit(max);
  const step = y.count ? Math.max(1, niceStep(max)) : niceStep(max / unit.div);
  const topV = Math.max(step, Math.ceil(max / unit.div / step) * step) * unit.div;
  const fmtY = (v) => {
    const x = v / unit.div;
    const t = Number.isInteger(x) ? String(x) : String(Math.round(x * 100) / 100);
    return unit.name ? t + ' ' + unit.name : t;
  };
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': y.title });
  const yt = svg('text', { class: 'axis-title', x: 4, y: 12 });
  yt.textContent = y.title + (unit.name ? ` (${unit.name})` : '');
  root.append(yt);
  for (let v = 0; v <= topV + 1e-9; v += step * unit.div) {
    const py = top + ph - (ph * v) / topV;
    root.append(svg('line', { class: 'grid', x1: left, x2: W - right, y1: py, y2: py }));
    const t = svg('text', { class: 'axis y', x: left - 6, y: py + 4, 'text-anchor': 'end' });
    t.textContent = fmtY(v);
    root.append(t);
  }
  const slot = pw / Math.max(n, 1);
  const t0 = n ? times[0] : 0;
  const xt = (t) => left + ((t - t0) / spanMs + 0.5) * slot;
  const x = (i) => left + slot * i + slot / 2;
  const yv = (v) => top + ph - (ph * v) / topV;
  const pad = (v) => String(v).padStart(2, '0');
  const hm = (ms) => { const d = new Date(ms); return pad(d.getHours()) + ':' + pad(d.getMinutes()); };
  const stamp = (ms) => {
    const d = new Date(ms);
    return (spanMs >= 3600000 ? d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' : '') + hm(ms);
  };
  root.append(svg('line', { class: 'axis-line', x1: left, x2: W - right, y1: top + ph, y2: top + ph }));
  if (n) {
    /* Round local times: every STEP minutes, as many as fit 70 px apart. */
    const range = (times[n - 1] - t0) / 60000 + spanMs / 60000;
    const fit = Math.max(2, Math.floor(pw / 70));
    const stepMin = TIME_STEPS.find((m) => range / m <= fit) || 1440;
    const offset = new Date(t0).getTimezoneOffset() * 60000;
    let t = Math.ceil((t0 - offset) / (stepMin * 60000)) * stepMin * 60000 + offset;
    for (; t <= times[n - 1]; t += stepMin * 60000) {
      const px = xt(t);
      root.append(svg('line', { class: 'tick', x1: px, x2: px, y1: top + ph, y2: top + ph + 5 }));
      /* A label near an edge is anchored inside the chart. */
      const anchor = px > W - right - 18 ? 'end' : px < left + 18 ? 'start' : 'middle';
      const label = svg('text', { class: 'axis x', x: px, y: top + ph + 18, 'text-anchor': anchor,
        'data-t': new Date(t).toISOString() });
      const d = new Date(t);
      label.textContent = stepMin >= 60 && d.getHours() === 0 && d.getMinutes() === 0 ?
        pad(d.getDate()) + '/' + pad(d.getMonth() + 1) : hm(t);
      root.append(label);
    }
  }
  const base = new Array(n).fill(0);
  const bw = Math.max(1, slot * 0.7);
  for (const s of bars) {
    const paint = s.color ? { fill: s.color } : {};
    s.values.forEach((v, i) => {
      const h = ph * (v || 0) / topV;
      root.append(svg('rect', { class: s.color ? 'bart' : 'barc', 'data-series': s.name, ...paint, x: x(i) - bw / 2,
        y: top + ph - base[i] - h, width: bw, height: Math.max(h, v ? 1 : 0) },
      svgTitle(stamp(times[i]) + ': ' + (v || 0) + ' ' + s.name)));
      base[i] += h;
    });
  }
  for (const s of series.filter((x2) => x2.kind !== 'bar')) {
    const paint = s.color ? { stroke: s.color } : {};
    let d = '';
    let pen = false;
    s.values.forEach((v, i) => {
      if (v === null) { pen = false; return; }
      d += (pen ? 'L' : 'M') + x(i).toFixed(1) + ' ' + yv(v).toFixed(1);
      pen = true;
    });
    if (d) root.append(svg('path', { class: s.cls ? 'l-' + s.cls : 'l', 'data-series': s.name, ...paint, d, fill: 'none', 'stroke-width': 2 }));
    s.values.forEach((v, i) => {
      if (v === null) return;
      root.append(svg('circle', { class: s.cls ? 'p-' + s.cls : 'p', ...(s.color ? { fill: s.color } : {}),
        cx: x(i), cy: yv(v), r: n > 120 ? 1.5 : 3 }, svgTitle(stamp(times[i]) + ': ' + s.name + ' ' + human(v))));
    });
  }
  box.append(root);
  if (series.some((s) => s.color)) {
    box.append(el('div', { class: 'legend chart-legend' }, ...series.map((s) => {
      const k = el('i', { class: 'k' });
      k.style.background = s.color;
      return el('span', { 'data-series': s.name }, k, s.name);
    })));
  }
}

const EACH = '*'; /* the type choice "each type": one series per type */
const WINDOWS = ['15m', '1h', '6h', '24h'];
function statsWindow() {
  const w = parseHash().params.get('w');
  return WINDOWS.includes(w) ? w : '1h';
}
function setStatsUrl(w, type) { setUrl('/stats', { w: w === '1h' ? '' : w, type }, true); }

async function loadStats() {
  const w = statsWindow();
  for (const b of $('s-window').querySelectorAll('button')) b.classList.toggle('on', b.dataset.w === w);
  const type = $('s-type').value;
  const data = await api('/api/stats' + qs({ since: w, type: type === EACH ? '' : type }));
  const empty = { created: 0, started: 0, finished: 0, errors: 0,
    wait_avg_ms: null, wait_min_ms: null, wait_max_ms: null, wait_p95_ms: null };
  const rows = data.minutes.map((m) => {
    const c = type && type !== EACH ? (m.by_type[type] || empty) : m;
    return { t: Date.parse(m.minute), by_type: m.by_type, ...c };
  });
  const unit = data.span_ms >= 3600000 ? 'hour' : 'minute';
  $('s-span').textContent = 'one point per ' + unit;
  $('s-created-title').textContent = 'Jobs created per ' + unit + (type && type !== EACH ? ' · ' + type : '');
  $('s-wait-title').textContent = 'Waiting time' + (type && type !== EACH ? ' · ' + type : '');
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
  const per = 'jobs per ' + unit;
  $('s-legend').hidden = type === EACH;
  if (type === EACH) {
    /* One series per type that has data in the window, by name. */
    const names = [...new Set(rows.flatMap((r) => Object.keys(r.by_type || {})))].sort();
    const color = (i) => PALETTE[i % PALETTE.length];
    drawChart($('chart-created'), times, names.map((t, i) => ({ name: t, color: color(i), kind: 'bar',
      values: rows.map((r) => (r.by_type[t] ? r.by_type[t].created : 0)) })), { count: true, title: per }, data.span_ms);
    drawChart($('chart-wait'), times, names.map((t, i) => ({ name: t, color: color(i), kind: 'line',
      values: rows.map((r) => (r.by_type[t] ? r.by_type[t].wait_avg_ms : null)) })),
    { title: 'average waiting' }, data.span_ms);
    return;
  }
  drawChart($('chart-created'), times, [{ name: 'created', values: rows.map((r) => r.created), kind: 'bar' }],
    { count: true, title: per }, data.span_ms);
  drawChart($('chart-wait'), times, [
    { name: 'max', cls: 'max', values: rows.map((r) => r.wait_max_ms), kind: 'line' },
    { name: 'average', cls: 'avg', values: rows.map((r) => r.wait_avg_ms), kind: 'line' },
    { name: 'min', cls: 'min', values: rows.map((r) => r.wait_min_ms), kind: 'line' },
  ], { title: 'waiting' }, data.span_ms);
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

/* --- Schedules view -------------------------------------------------------- */

/*
 * The [schedule.NAME] sections of this jobd (GET /api/schedules,
 * docs/schedules.md): one row each, with the next run and the last job
 * fired, linked to its detail.
 */
function scheduleRow(s) {
  const last = s.last;
  const job = last ? el('a', { href: '#/jobs/' + last.id }, String(last.id)) : '–';
  const status = !last ? '–' : last.status ? statusBadge(last.status) : el('span', { class: 'muted' }, 'deleted');
  const next = s.enabled ? when(s.next_run) : el('span', { class: 'muted' }, 'disabled');
  return el('tr', { 'data-schedule': s.name, class: s.enabled ? null : 'sc-off' },
    el('td', { class: 'mono' }, s.name),
    el('td', { class: 'mono' }, s.cron),
    el('td', null, s.timezone),
    el('td', { class: 'mono' }, s.type),
    el('td', { class: 'sc-next' }, next),
    el('td', { class: 'mono sc-job' }, job),
    el('td', null, last ? when(last.tick) : '–'),
    el('td', { class: 'c-status' }, status),
    el('td', null, s.catch_up),
    el('td', { class: 'num' }, String(s.missed)));
}

async function loadSchedules() {
  const data = await api('/api/schedules');
  const body = $('sc-rows');
  const on = data.schedules.filter((s) => s.enabled).length;
  clear(body);
  $('sc-summary').textContent = data.schedules.length
    ? data.schedules.length + ' schedule' + (data.schedules.length === 1 ? '' : 's') + ', ' + on + ' enabled'
    : '';
  if (!data.schedules.length) {
    body.append(el('tr', null, el('td', { class: 'empty', colspan: 10 },
      'No [schedule.NAME] section in this jobd\'s configuration.')));
    return;
  }
  for (const s of data.schedules) body.append(scheduleRow(s));
}

/* --- routing and refresh ---------------------------------------------------- */

function route() {
  const { path, params } = parseHash();
  const m = /^\/jobs\/(\d+)$/.exec(path);
  const view = m ? 'detail' : path === '/stats' ? 'stats' : path === '/kafka' ? 'kafka'
    : path === '/schedules' ? 'schedules' : 'jobs';
  for (const v of ['jobs', 'detail', 'stats', 'kafka', 'schedules']) $('view-' + v).hidden = v !== view;
  $('tab-jobs').classList.toggle('active', view === 'jobs' || view === 'detail');
  $('tab-stats').classList.toggle('active', view === 'stats');
  $('tab-kafka').classList.toggle('active', view === 'kafka');
  $('tab-schedules').classList.toggle('active', view === 'schedules');
  tickers = [];
  if (view === 'detail') {
    const id = Number(m[1]);
    applyLogParams(params);
    const logQuery = JSON.stringify(logUrlParams());
    if (!state.detail || state.detail.id !== id) {
      state.detail = { id, job: null, cursors: [0], page: 0, childNext: null, lastLog: '', logCount: 0, logSeq: 0 };
      clear($('logs'));
      clear($('d-fields'));
      clear($('d-children'));
      $('d-payload').textContent = '';
      $('d-checkpoint').textContent = '';
      $('l-notice').hidden = true;
      $('l-more').hidden = true;
      $('l-count').textContent = '';
      $('d-results').hidden = true;
      $('d-title').textContent = 'Job ' + id;
      state.detail.logQuery = logQuery;
      loadLogs(true);
    } else if (logQuery !== state.detail.logQuery) {
      state.detail.logQuery = logQuery;
      loadLogs(true);
    }
  } else {
    state.detail = null;
    document.title = { stats: 'Statistics', kafka: 'Kafka', schedules: 'Schedules' }[view] || 'Jobs';
    document.title += ' · jobd monitor';
  }
  if (view === 'jobs') {
    applyListParams(params);
    /* A new filter or order starts again at the first page: a cursor
     * belongs to the order that gave it. */
    const query = JSON.stringify(listParams());
    if (query !== state.list.query) resetPaging();
    state.list.query = query;
    /* The Jobs tab and the detail's way back return to this list. */
    $('tab-jobs').href = $('back').href = location.hash || '#/';
    if (state.view === 'jobs' && state.list.rows.length) renderJobs();
  } else if (view === 'stats') {
    const type = params.get('type') || '';
    $('s-type').value = [...$('s-type').options].some((o) => o.value === type) ? type : '';
  }
  state.view = view;
  refresh();
}

let refreshing = false;
async function refresh() {
  if (refreshing) { state.again = true; return; }
  refreshing = true;
  try {
    const tasks = [loadCounts(), followOpResults()];
    if (state.view === 'jobs') tasks.push(loadJobs());
    else if (state.view === 'stats') tasks.push(loadStats());
    else if (state.view === 'kafka') tasks.push(loadKafka());
    else if (state.view === 'schedules') tasks.push(loadSchedules());
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
  } catch (e) { /* the list still works without type names */ }
}

function init() {
  for (const id of ['f-status', 'f-type', 'f-system', 'f-all', 'page-size']) {
    $(id).addEventListener('change', () => setListUrl(true));
  }
  $('f-runby').addEventListener('input', debounce(() => setListUrl(false), 300));
  $('f-runby').addEventListener('change', () => setListUrl(true));
  for (const th of document.querySelectorAll('#jobs-table th[data-sort]')) {
    const b = th.querySelector('button');
    b.addEventListener('click', () => {
      const key = th.dataset.sort;
      /* First click: the largest (newest, longest, last status) first. */
      state.sort = state.sort === '-' + key ? key : '-' + key;
      setListUrl(true);
    });
  }
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
  for (const id of ['l-level', 'l-regex', 'l-tree', 'l-follow']) $(id).addEventListener('change', () => setLogUrl(true));
  for (const id of ['l-grep', 'l-since', 'l-until']) {
    $(id).addEventListener('input', debounce(() => setLogUrl(false), 350));
  }
  $('l-more').addEventListener('click', () => { if (state.detail) { state.detail.truncated = false; loadLogs(false); } });
  for (const b of $('s-window').querySelectorAll('button')) {
    b.addEventListener('click', () => setStatsUrl(b.dataset.w, $('s-type').value));
  }
  $('s-type').addEventListener('change', () => setStatsUrl(statsWindow(), $('s-type').value));
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
