// The monitor page in headless Chromium: run by tests/integration/browser.sh, which
// starts the monitor, a scripted worker and a consumer and sets BASE, CHROMIUM,
// SCREENSHOTS and USER_DATA (and DOCS_IMG with DOCS_SCREENSHOTS=1: the
// screenshots of docs/monitor.md). Asserts outcomes a user sees: jobs
// listed, a parent's rolled-up progress, stop (requested, then live) and
// resume through the page, bulk operations on the jobs that qualify,
// filters, sort and the open job in the URL (back button included), log
// search and a clean log view per job, system jobs toggle, statistics
// charts with their axes and per-type choice, the Kafka view, the
// Schedules view, the page
// at 390 px, and
// markup in job data shown as text, never run.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

const BASE = process.env.BASE;
const SHOTS = process.env.SCREENSHOTS;
const XSS = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">';

async function api(p, body) {
  const res = await fetch(BASE + p, body === undefined ? {} : {
    method: 'POST', headers: { 'X-Jobd-User': 'browser' }, body: JSON.stringify(body),
  });
  const data = await res.json();
  assert.ok(res.ok, `${p}: HTTP ${res.status} ${JSON.stringify(data)}`);
  return data;
}

async function submit(spec) {
  return (await api('/api/jobs', spec)).ids[0];
}

async function waitStatus(id, status) {
  for (let i = 0; i < 100; i++) {
    if ((await api('/api/jobs/' + id)).status === status) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`job ${id} never became ${status}`);
}

const steps = [];
function step(name) { steps.push(name); console.log('  ' + name); }

/* A duration as the page shows it ("850ms", "1.5s", "2m05s") in ms. */
function parseHuman(t) {
  let m;
  if ((m = /^(\d+)ms$/.exec(t))) return Number(m[1]);
  if ((m = /^([\d.]+)s$/.exec(t))) return Number(m[1]) * 1000;
  if ((m = /^(\d+)m(\d+)s$/.exec(t))) return (Number(m[1]) * 60 + Number(m[2])) * 1000;
  if ((m = /^(\d+)h(\d+)m$/.exec(t))) return (Number(m[1]) * 60 + Number(m[2])) * 60000;
  return null; /* '–' */
}

const DOCS_IMG = process.env.DOCS_SCREENSHOTS === '1' ? process.env.DOCS_IMG : '';
/* A picture for docs/monitor.md; WHOLE: the whole page, taken in a window
 * as tall as the page (a full-page shot repeats the sticky header). */
async function docShot(page, name, whole = false) {
  if (!DOCS_IMG) return;
  fs.mkdirSync(DOCS_IMG, { recursive: true });
  const size = page.viewportSize();
  if (whole) {
    const height = await page.evaluate(() => document.documentElement.scrollHeight);
    await page.setViewportSize({ width: size.width, height });
  }
  await page.screenshot({ path: path.join(DOCS_IMG, 'monitor-' + name + '.png') });
  if (whole) await page.setViewportSize(size);
}

fs.mkdirSync(SHOTS, { recursive: true });
const ctx = await chromium.launchPersistentContext(process.env.USER_DATA, {
  executablePath: process.env.CHROMIUM,
  headless: true,
  viewport: { width: 1440, height: 900 },
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const errors = [];
const page = ctx.pages()[0] || await ctx.newPage();
try {
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => { if (m.type() === 'error') errors.push('console: ' + m.text()); });
  page.on('dialog', (d) => d.accept());

  // Jobs of every kind: markup in the payload and a log line, a running
  // job, a parent with children, a parent waiting for running children, a
  // job that ignores stops, a failed job, a system job.
  const xss = await submit({ type: 'import', payload: { sim: 'finish', note: XSS, name: XSS } });
  const run = await submit({ type: 'import', payload: { sim: 'run' }, run_by: 'alice' });
  const parent = await submit({ type: 'import', payload: { sim: 'run' } });
  await api('/api/jobs', { type: 'import', parent, count: 3 });
  const waiter = await submit({ type: 'import', payload: { sim: 'run', steps: 2 } });
  await api('/api/jobs', { type: 'import', parent: waiter, count: 2, payload: { sim: 'run' } });
  const stuck = await submit({ type: 'import', payload: { sim: 'stuck' }, run_by: 'bob' });
  await submit({ type: 'import', payload: { sim: 'error' } });
  const sys = await submit({ type: 'refactor' });
  const fixed = await submit({ type: 'fixed', payload: { sim: 'run' } });
  await waitStatus(run, 'in_progress');
  await waitStatus(fixed, 'in_progress');
  await waitStatus(stuck, 'in_progress');
  await waitStatus(xss, 'finished');

  step('the list shows the jobs');
  await page.goto(BASE + '/');
  const row = (id) => page.locator(`#jobs-body tr[data-id="${id}"]`);
  await row(run).waitFor();
  /* Columns by their header, so a step tests its behaviour, not markup. */
  const COL = await page.evaluate(() => Object.fromEntries([...document.querySelectorAll('#jobs-table thead th')]
    .map((th, i) => [th.textContent.trim(), i])));
  const cell = (id, header) => row(id).locator('td').nth(COL[header]);
  const line = (id) => page.locator('#results li', { hasText: new RegExp(`^job ${id}\\b`) });
  assert.equal(await row(sys).count(), 0, 'system jobs hidden by default');
  assert.match(await cell(run, 'Status').innerText(), /In Progress/);
  assert.equal(await cell(run, 'Run by').innerText(), 'alice');
  assert.match(await cell(parent, 'Children execution').innerText(), /\d\/3/);

  step('the children bar shows the children\'s progress, not the parent\'s');
  await page.waitForFunction(([id, i]) => {
    const r = document.querySelector(`#jobs-body tr[data-id="${id}"]`);
    return r && r.children[i].textContent.includes('3/3');
  }, [parent, COL['Children execution']], { timeout: 30000 });
  const pj = await api(`/api/jobs/${parent}`);
  assert.equal(await cell(parent, 'Children execution').locator('[role=progressbar]').getAttribute('aria-valuenow'),
    String(Math.round(pj.children.progress)));

  step('a parent waiting for its children shows the progress of its tree');
  for (let i = 0; i < 100 && !(await api('/api/jobs/' + waiter)).waiting_for_children; i++) {
    await new Promise((r) => setTimeout(r, 100));
  }
  const wj = await api('/api/jobs/' + waiter);
  assert.ok(wj.waiting_for_children && wj.progress === 100 && wj.overall_progress < 100,
    'the waiting parent: ' + JSON.stringify(wj));
  /* Once the row shows the parent waiting (its handler at 100 %). */
  await page.waitForFunction(([id, i]) => {
    const r = document.querySelector(`#jobs-body tr[data-id="${id}"]`);
    const t = r && r.children[i];
    return t && (/its own 100%/.test(t.title || '') ||
      t.querySelector('[role=progressbar]').getAttribute('aria-valuenow') === '100');
  }, [waiter, COL.Progress]);
  const shown = Number(await cell(waiter, 'Progress').locator('[role=progressbar]').getAttribute('aria-valuenow'));
  assert.ok(shown < 100 && shown > 0, 'the tree\'s progress, not the handler\'s 100 %: ' + shown);
  assert.match(await cell(waiter, 'Progress').getAttribute('title'), /its own 100%/);

  step('duration ticks while running');
  const d1 = await cell(run, 'Duration').innerText();
  await page.waitForTimeout(1600);
  const d2 = await cell(run, 'Duration').innerText();
  assert.notEqual(d1, d2, 'duration moves');
  await page.screenshot({ path: path.join(SHOTS, 'jobs.png'), fullPage: true });

  step('a stop says it is requested, and follows the job live');
  const button = (op) => page.locator(`#actions button[data-op="${op}"]`);
  const results = page.locator('#results');
  await row(stuck).locator('td.c-check input').check();
  await button('stop').click();
  await line(stuck).waitFor();
  assert.doesNotMatch(await results.innerText(), /done/, 'never "stop done" while stopping');
  assert.match(await results.innerText(), /1 stop requested/);
  assert.equal(await line(stuck).innerText(), `job ${stuck}: stop requested; now Stopping`);
  await api('/api/jobs/ops', { op: 'force-stop', ids: [stuck] }); /* another operator */
  await line(stuck).filter({ hasText: /now Stopped$/ }).waitFor({ timeout: 10000 });
  await row(stuck).locator('td.c-check input').uncheck();

  step('a bulk operation applies to the jobs that qualify and reports per id');
  await row(run).locator('td.c-check input').check();
  await row(xss).locator('td.c-check input').check();
  assert.ok(await button('stop').isEnabled(), 'stop valid for one of the two');
  assert.match(await button('stop').innerText(), /1 of 2/);
  assert.ok(await button('resume').isDisabled(), 'resume valid for none of them');
  await button('stop').click();
  await line(xss).waitFor();
  assert.match(await results.locator('.summary').innerText(), /^1 (stop requested|stopped), 1 refused: finished$/);
  await docShot(page, 'jobs');
  assert.equal(await line(xss).innerText(), `job ${xss} is finished: stop needs pending or in_progress`);
  await waitStatus(run, 'stopped');
  await line(run).filter({ hasText: /now Stopped$/ }).waitFor({ timeout: 10000 });
  await page.waitForFunction(([id, i]) => {
    const r = document.querySelector(`#jobs-body tr[data-id="${id}"]`);
    return r && r.children[i].textContent === 'Stopped';
  }, [run, COL.Status]);
  await page.waitForFunction(() => !document.querySelector('#actions button[data-op="resume"]').disabled);
  assert.ok(await button('stop').isDisabled(), 'stop valid for neither any more');
  assert.ok(await button('cancel').isEnabled(), 'cancel valid for the stopped one');
  await button('resume').click();
  await page.waitForFunction(() => document.querySelector('#results .summary')?.textContent ===
    '1 resumed, 1 refused: finished');
  assert.equal(await line(run).innerText(), `job ${run}: resumed; now Pending`);
  await waitStatus(run, 'in_progress');

  step('stop and restart follow the job\'s own policy');
  await row(run).locator('td.c-check input').uncheck();
  assert.ok(await button('restart').isEnabled(), 'restart valid for a finished root of a restartable type');
  assert.ok(await button('stop').isDisabled(), 'stop invalid when only a finished job is selected');
  await row(xss).locator('td.c-check input').uncheck();
  await row(fixed).locator('td.c-check input').check();
  assert.ok(await button('stop').isDisabled(), 'stop invalid for a job whose type is not stoppable');
  assert.ok(await button('resume').isDisabled(), 'resume invalid for in_progress');
  await row(fixed).locator('td.c-check input').uncheck();

  step('system jobs toggle');
  await page.locator('#f-system').check();
  await row(sys).waitFor();
  assert.match(await row(sys).innerText(), /refactor/);
  await page.locator('#f-system').uncheck();
  await row(sys).waitFor({ state: 'detached' });

  step('include children toggle');
  await page.locator('#f-all').check();
  await page.locator('#jobs-body tr', { hasText: '↳ ' + parent }).first().waitFor();
  await page.locator('#f-all').uncheck();

  step('filters live in the URL, and the back button undoes them');
  const hash = () => page.evaluate(() => decodeURIComponent(location.hash));
  await page.locator('#f-status').selectOption('finished');
  await page.waitForFunction(() => location.hash.includes('status=finished'));
  await row(run).waitFor({ state: 'detached' });
  await row(xss).waitFor();
  await page.locator('#f-runby').fill('alice');
  await page.waitForFunction(() => location.hash.includes('run_by=alice'));
  await row(xss).waitFor({ state: 'detached' });
  await page.locator('#f-runby').fill('');
  await page.waitForFunction(() => !location.hash.includes('run_by'));
  await page.locator('#f-status').selectOption('in_progress');
  await page.waitForFunction(() => location.hash.includes('status=in_progress'));
  await row(fixed).waitFor();
  await page.goBack();
  await page.waitForFunction(() => document.querySelector('#f-status').value === 'finished');
  await row(xss).waitFor();
  await row(fixed).waitFor({ state: 'detached' });
  assert.equal(await hash(), '#/?status=finished');
  const shared = await ctx.newPage(); /* the URL, shared */
  await shared.goto(BASE + '/#/?status=stopped&run_by=bob');
  await shared.locator(`#jobs-body tr[data-id="${stuck}"]`).waitFor();
  assert.equal(await shared.locator('#f-status').inputValue(), 'stopped');
  assert.equal(await shared.locator('#f-runby').inputValue(), 'bob');
  assert.equal(await shared.locator('#jobs-body tr').count(), 1);
  await shared.close();
  await page.goBack();
  await page.waitForFunction(() => document.querySelector('#f-status').value === '');
  await row(run).waitFor();

  step('columns sort by created, started, waiting, duration and status');
  await page.locator('#f-all').check();
  await row(run).waitFor();
  const order = async (header) => page.evaluate(([i, si, ti]) => [...document.querySelectorAll('#jobs-body tr')]
    .map((r) => ({ id: Number(r.dataset.id), v: r.children[i], s: r.children[si], t: r.children[ti] }))
    .map((x) => ({
      id: x.id, text: x.v.textContent, title: x.v.getAttribute('title') || '',
      status: x.s.textContent, started: x.t.textContent,
    })), [COL[header], COL.Status, COL['Start date']]);
  const HEADER = { created: 'Create date', started: 'Start date', waiting: 'Waiting', duration: 'Duration',
    status: 'Status' };
  const sorted = (vals, desc) => vals.every((v, i) => i === 0 || (desc ? vals[i - 1] >= v : vals[i - 1] <= v));
  /*
   * Waiting and duration tick between refreshes (every second, from the
   * server's values at the last refresh), so rows sorted by the server
   * can show out of order a moment later: a running job's 8.7s passes a
   * finished one's 8.8s. Every live cell has ticked by the same D since
   * that refresh, D at most the time since the click: sorted when some D
   * in [0, ELAPSED] ms puts the live values back in order.
   */
  const LIVE = {
    waiting: (x) => x.started === '–' && x.status !== 'Finished' && x.status !== 'Canceled',
    duration: (x) => x.status === 'In Progress' || x.status === 'Stopping',
  };
  /*
   * Jobs claimed in one call started in the same millisecond: their
   * waiting or duration ties on the server, which orders them by id, and
   * the page shows each at its own instant, rounded to its display's step
   * (0.1 s below a minute, 1 s below an hour: human() in app.js), so two
   * of them may read 13.0s and 13.1s either way round. A live cell may be
   * one such step out of order against every live cell before it (not
   * only the one above: steps must not add up), and nothing more.
   */
  const stepOf = (v) => (v < 1000 ? 1 : v < 60000 ? 100 : v < 3600000 ? 1000 : v < 86400000 ? 60000 : 3600000);
  const sortedLive = (rows, key, desc, elapsed) => {
    const live = LIVE[key];
    const cells = rows.map((x) => [keyOf[key](x), live(x)]).filter(([v]) => v !== null && v !== '');
    for (let d = 0; d <= elapsed; d += 50) {
      const vals = cells.map(([v, l]) => [l ? v - d : v, l]);
      let edge = null; /* descending: the least live value so far; ascending: the greatest */
      const ok = vals.every(([v, l], i) => {
        if (i > 0) {
          const [p, pl] = vals[i - 1];
          if (!(l && pl) && !(desc ? p >= v : p <= v)) return false;
          if (l && edge !== null) {
            const step = stepOf(Math.max(v, edge));
            if (!(desc ? v <= edge + step : v >= edge - step)) return false;
          }
        }
        if (l) edge = edge === null ? v : (desc ? Math.min(edge, v) : Math.max(edge, v));
        return true;
      });
      if (ok) return true;
    }
    return false;
  };
  const header = (key) => page.locator(`#jobs-table th[data-sort="${key}"]`);
  const STATUS = ['Pending', 'In Progress', 'Stopping', 'Stopped', 'Finished', 'Canceled'];
  const keyOf = {
    created: (x) => x.title,
    started: (x) => x.title,
    waiting: (x) => parseHuman(x.text),
    duration: (x) => parseHuman(x.text),
    status: (x) => STATUS.indexOf(x.text),
  };
  for (const key of ['created', 'started', 'waiting', 'duration', 'status']) {
    for (const dir of ['descending', 'ascending']) {
      const clicked = Date.now();
      if (key !== 'created' || dir === 'ascending') await header(key).locator('button').click();
      await page.waitForFunction(([k, d]) => document.querySelector(`#jobs-table th[data-sort="${k}"]`)
        .getAttribute('aria-sort') === d, [key, dir]);
      const want = (dir === 'descending' ? '-' : '') + key;
      if (want !== '-created') assert.ok((await hash()).includes('sort=' + want), 'sort in the URL: ' + await hash());
      const rows = await order(HEADER[key]);
      const vals = rows.map(keyOf[key]).filter((v) => v !== null && v !== '');
      assert.ok(vals.length >= 3, `${key}: values ${JSON.stringify(rows)}`);
      const desc = dir === 'descending';
      assert.ok(LIVE[key] ? sortedLive(rows, key, desc, Date.now() - clicked + 100) : sorted(vals, desc),
        `${key} ${dir}: ${JSON.stringify(rows)}`);
      /* Jobs without the value (not started) come last. */
      const missing = rows.map((x) => keyOf[key](x)).map((v) => v === null || v === '');
      assert.ok(missing.every((m, i) => !m || missing.slice(i).every(Boolean)), `${key}: unset last`);
    }
  }
  await page.goBack();
  await page.waitForFunction(() => document.querySelector('#jobs-table th[data-sort="status"]')
    .getAttribute('aria-sort') === 'descending');

  step('a sort orders all matching jobs, not the page shown, and pages on in that order');
  const many = (await api('/api/jobs', { type: 'import', count: 30, run_by: 'sorter',
    payload: { sim: 'finish' } })).ids;
  assert.equal(many.length, 30);
  for (let i = 0; ; i++) {
    const d = await api('/api/jobs?run_by=sorter&status=finished&limit=100');
    if (d.jobs.length === 30) break;
    assert.ok(i < 100, 'the 30 jobs of sorter never finished');
    await new Promise((r) => setTimeout(r, 100));
  }
  const ids = () => page.evaluate(() => [...document.querySelectorAll('#jobs-body tr')].map((r) => Number(r.dataset.id)));
  const pageOf = async (n, first) => {
    await page.waitForFunction(([k, f]) => {
      const r = [...document.querySelectorAll('#jobs-body tr')];
      return r.length === k && Number(r[0].dataset.id) === f;
    }, [n, first]);
    return ids();
  };
  /* Oldest first: the oldest of all 30, on the first page of 25. */
  const oldest = Math.min(...many);
  await page.goto(BASE + '/#/?run_by=sorter&limit=25&sort=created');
  const p1 = await pageOf(25, oldest);
  assert.deepEqual(p1, [...many].sort((a, b) => a - b).slice(0, 25), 'created ascending, page 1');
  assert.equal(await page.locator('#page-next').innerText(), 'Next ›');
  assert.ok(await page.locator('#sort-partial').isHidden(), 'the whole store is sorted');
  await page.locator('#page-next').click();
  const p2 = await pageOf(5, Math.min(...many.filter((id) => !p1.includes(id))));
  assert.deepEqual([...p1, ...p2], [...many].sort((a, b) => a - b), 'created ascending, page 2 goes on');
  /* Longest first: page 1 and 2 are the server's order of all 30. */
  const want = (await api('/api/jobs?run_by=sorter&sort=-duration&limit=100')).jobs;
  const durations = want.map((j) => j.duration_ms);
  assert.ok(durations.every((v, i) => i === 0 || durations[i - 1] >= v), 'the API sorts by duration');
  await page.goto(BASE + '/#/?run_by=sorter&limit=25&sort=-duration');
  const l1 = await pageOf(25, want[0].id);
  await page.locator('#page-next').click();
  const l2 = await pageOf(5, want[25].id);
  assert.deepEqual([...l1, ...l2], want.map((j) => j.id), 'longest first across the pages');
  assert.ok(!(await hash()).includes('cursor'), 'the URL holds the order, not a cursor');

  await page.goto(BASE + '/#/');
  await row(run).waitFor();

  step('job detail with logs and search');
  await row(run).click();
  await page.locator('#d-title').filter({ hasText: 'Job ' + run }).waitFor();
  assert.equal(await hash(), '#/jobs/' + run);
  await page.locator('#logs .logline', { hasText: 'resumed by http' }).waitFor();
  await page.locator('#logs .logline', { hasText: 'stop requested by http' }).waitFor();
  const before = await page.locator('#logs .logline').count();
  await page.waitForFunction((n) => document.querySelectorAll('#logs .logline').length > n, before,
    { timeout: 10000 });
  await page.locator('#l-grep').fill('RESUMED');
  await page.waitForFunction(() => {
    const lines = [...document.querySelectorAll('#logs .logline')];
    return lines.length === 1 && lines[0].textContent.includes('resumed by http');
  });
  await page.waitForFunction(() => location.hash.includes('grep=RESUMED'));
  await page.locator('#l-grep').fill('');
  await page.locator('#l-level').selectOption('warn');
  await page.waitForFunction(() => document.querySelectorAll('#logs .logline').length === 0 &&
    document.querySelector('#logs .none'));
  assert.equal(await hash(), `#/jobs/${run}?level=warn`);
  await page.locator('#l-level').selectOption('');
  await page.locator('#logs .logline').first().waitFor();
  await page.screenshot({ path: path.join(SHOTS, 'detail.png'), fullPage: true });

  step('each job\'s log view starts clean');
  await page.goto(BASE + '/#/jobs/' + run);
  await page.locator('#d-title').filter({ hasText: 'Job ' + run }).waitFor();
  await page.locator('#l-level').selectOption('info');
  await page.locator('#l-grep').fill('step');
  await page.locator('#l-tree').check();
  await page.waitForFunction(() => { /* the log filtered: the handler's steps, no debug lines */
    const lines = [...document.querySelectorAll('#logs .logline')];
    return lines.length > 0 && lines.every((l) => /step/.test(l.textContent) && !/DEBUG/.test(l.textContent));
  });
  await page.locator('#back').click();
  await row(parent).click();
  await page.locator('#d-title').filter({ hasText: 'Job ' + parent }).waitFor();
  assert.equal(await page.locator('#l-level').inputValue(), '', 'level reset');
  assert.equal(await page.locator('#l-grep').inputValue(), '', 'search reset');
  assert.equal(await page.locator('#l-tree').isChecked(), false, 'tree reset');
  await page.locator('#logs .logline', { hasText: 'DEBUG' }).first().waitFor();
  await page.goBack(); /* the list */
  await page.goBack(); /* the first job, with its filters */
  await page.locator('#d-title').filter({ hasText: 'Job ' + run }).waitFor();
  await page.waitForFunction(() => document.querySelector('#l-grep').value === 'step' &&
    document.querySelector('#l-level').value === 'info');
  assert.equal(await hash(), `#/jobs/${run}?level=info&grep=step&tree=1`);

  step('children of a parent');
  await page.goto(BASE + '/#/jobs/' + parent);
  await page.locator('#d-children tr').nth(2).waitFor();
  assert.equal(await page.locator('#d-children tr').count(), 3);
  await page.goto(BASE + `/#/jobs/${waiter}?tree=1`); /* a job and its children's log */
  await page.locator('#logs .logline .j', { hasText: '#' + (waiter + 1) }).first().waitFor();
  assert.ok(await page.locator('#l-tree').isChecked(), 'the tree\'s log from the URL');
  await page.locator('#d-children tr').nth(1).waitFor();
  await docShot(page, 'job-log', true);

  step('markup in job data is shown as text');
  await page.goto(BASE + '/#/jobs/' + xss);
  await page.locator('#logs .logline', { hasText: '<script>window.__xss=1</script>' }).waitFor();
  await page.waitForFunction(() => document.querySelector('#d-payload').textContent
    .includes('<script>window.__xss=1</script>'));
  await page.goto(BASE + '/#/');
  await row(xss).waitFor();
  await page.waitForTimeout(500);
  assert.equal(await page.evaluate(() => window.__xss), undefined, 'no injected script ran');
  assert.equal(await page.locator('img[src="x"]').count(), 0, 'no injected element');

  step('statistics charts');
  await page.locator('#tab-stats').click();
  await page.waitForFunction(() => [...document.querySelectorAll('#chart-created svg rect.barc')]
    .some((r) => Number(r.getAttribute('height')) > 0));
  await page.locator('#s-window button[data-w="15m"]').click();
  await page.waitForFunction(() => document.querySelector('#s-window button.on').dataset.w === '15m');
  assert.equal(await hash(), '#/stats?w=15m');
  await page.locator('#chart-wait svg path').first().waitFor({ state: 'attached' });
  const created = await page.locator('#s-tiles .tile').first().innerText();
  assert.ok(parseInt(created, 10) >= 8, 'created tile: ' + created);
  await page.screenshot({ path: path.join(SHOTS, 'stats.png'), fullPage: true });

  step('the charts have readable axes: round time ticks, values in ms or s');
  await page.goto(BASE + '/#/stats');
  await page.locator('#s-window button[data-w="1h"]').click();
  /* The charts of the hour: a bar slot per minute. */
  await page.waitForFunction(() => document.querySelectorAll('#chart-created svg rect').length > 40 &&
    document.querySelector('#chart-wait svg path'));
  const axes = await page.evaluate(() => ['chart-created', 'chart-wait'].map((id) => ({
    title: document.querySelector(`#${id} svg .axis-title`)?.textContent,
    y: [...document.querySelectorAll(`#${id} svg text.axis.y`)].map((t) => t.textContent),
    x: [...document.querySelectorAll(`#${id} svg text.axis.x`)].map((t) => t.textContent),
  })));
  assert.equal(axes[0].title, 'jobs per minute');
  assert.match(axes[1].title, /^waiting \((ms|s)\)$/);
  const unit = / (ms|s)$/.exec(axes[1].y[1])[1];
  assert.ok(axes[1].y.every((t) => new RegExp(`^[\\d.]+ ${unit}$`).test(t)), 'one unit: ' + axes[1].y);
  assert.ok(axes[1].title.endsWith(`(${unit})`));
  for (const a of axes) {
    assert.ok(a.x.length >= 4, 'time ticks: ' + a.x);
    assert.ok(a.x.every((t) => /^\d\d:\d[05]$/.test(t)), 'ticks at round minutes: ' + a.x);
    const mins = a.x.map((t) => Number(t.slice(0, 2)) * 60 + Number(t.slice(3)));
    const steps = mins.slice(1).map((m, i) => (m - mins[i] + 1440) % 1440);
    assert.ok(steps.every((d) => d === steps[0]), 'evenly spaced: ' + a.x);
  }

  step('the statistics of one type, or of each type');
  await page.goto(BASE + '/#/stats');
  await page.locator('#chart-created svg').waitFor();
  await page.locator('#s-type').selectOption('import');
  await page.waitForFunction(() => location.hash.includes('type=import') &&
    document.querySelector('#s-created-title').textContent.includes('import'));
  await page.locator('#s-type').selectOption('*');
  await page.waitForFunction(() => document.querySelector('#chart-created .chart-legend'));
  const legend = await page.locator('#chart-created .chart-legend span').allInnerTexts();
  assert.deepEqual(legend.map((t) => t.trim()), ['fixed', 'import', 'refactor']);
  const importBars = await page.evaluate(() => [...document.querySelectorAll(
    '#chart-created rect[data-series="import"]')].reduce((a, r) => a + Number(r.getAttribute('height')), 0));
  assert.ok(importBars > 0, 'bars of the import type');
  const fills = await page.evaluate(() => ['fixed', 'import', 'refactor'].map((t) =>
    getComputedStyle(document.querySelector(`#chart-created rect[data-series="${t}"]`)).fill));
  assert.equal(new Set(fills).size, 3, 'a colour per type: ' + fills);
  await docShot(page, 'stats');
  const statsUrl = page.url();
  const again = await ctx.newPage();
  await again.goto(BASE + '/#/stats?w=15m&type=import');
  await again.waitForFunction(() => document.querySelector('#s-created-title').textContent.includes('import'));
  assert.equal(await again.locator('#s-type').inputValue(), 'import');
  assert.equal(await again.locator('#s-window button.on').getAttribute('data-w'), '15m');
  await again.close();
  await page.goBack();
  await page.waitForFunction(() => document.querySelector('#s-type').value === 'import');
  assert.notEqual(page.url(), statsUrl);
  await page.locator('#s-window button[data-w="24h"]').click();
  await page.waitForFunction(() => document.querySelector('#s-span').textContent.includes('hour'));

  step('a pending job says why it has not started');
  const later = await submit({ type: 'later', payload: { sim: 'error' } }); /* fails, retries in 1 h */
  for (let i = 0; ; i++) {
    const why = await api('/api/jobs/' + later + '/why');
    if (why.reasons.length && why.reasons[0].code === 'retry_at') break;
    assert.ok(i < 100, 'the failed job waits for its retry: ' + JSON.stringify(why));
    await new Promise((r) => setTimeout(r, 100));
  }
  await page.goto(BASE + '/#/jobs/' + later);
  const reason = page.locator('#d-why-list li[data-code="retry_at"]');
  await reason.waitFor();
  assert.match(await reason.textContent(), /it waits for its retry time, in \d+m/);
  assert.ok(await page.locator('#d-why').isVisible(), 'the reasons are shown');
  await page.goto(BASE + '/#/jobs/' + waiter);
  await page.locator('#d-children tr').first().waitFor();
  await page.waitForFunction(() => document.querySelector('#d-why').hidden);

  step('at 390 px status and actions stay visible, and nothing scrolls sideways');
  await page.setViewportSize({ width: 390, height: 844 });
  const noSideways = async (what) => {
    const [sw, w] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
    assert.ok(sw <= w, `${what}: page ${sw} px wide in a ${w} px window`);
  };
  await page.goto(BASE + '/#/?all=1');
  await row(run).waitFor();
  await row(run).locator('td.c-check input').check();
  await noSideways('the list');
  for (const [what, loc] of Object.entries({ status: cell(run, 'Status'),
    check: row(run).locator('td.c-check input'), stop: button('stop'), resume: button('resume'),
    clear: button('clear') })) {
    /* The list's refresh re-creates the action buttons: a box read while
     * one is replaced is null, so read it again. */
    let box = null;
    for (let i = 0; i < 20 && !box; i++) {
      box = await loc.boundingBox();
      if (!box) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(box && box.x >= 0 && box.x + box.width <= 390, `${what} visible at 390 px: ` + JSON.stringify(box));
  }
  assert.ok(await cell(run, 'Status').isVisible());
  await page.screenshot({ path: path.join(SHOTS, 'jobs-390.png'), fullPage: true });
  await docShot(page, 'jobs-390');
  await row(run).locator('td.c-check input').uncheck();
  await page.goto(BASE + '/#/jobs/' + waiter);
  await page.locator('#logs .logline').first().waitFor();
  await page.locator('#d-children tr').first().waitFor();
  await noSideways('a job');
  const st = await page.locator('#d-status').boundingBox();
  assert.ok(st.x + st.width <= 390, 'status of the job visible');
  await page.screenshot({ path: path.join(SHOTS, 'detail-390.png'), fullPage: true });
  await page.goto(BASE + '/#/stats');
  await page.locator('#chart-wait svg').waitFor();
  await noSideways('the statistics');
  await page.screenshot({ path: path.join(SHOTS, 'stats-390.png'), fullPage: true });
  await page.setViewportSize({ width: 1440, height: 900 });

  step('Kafka view: each consuming instance with its partitions');
  await page.locator('#tab-kafka').click();
  const kview = page.locator('.k-instance[data-instance="kview"]');
  await kview.waitFor();
  const published = (await api('/api/kafka')).instances.find((i) => i.instance === 'kview');
  assert.ok(published && published.partitions.length > 0, 'kview publishes partitions');
  await page.waitForFunction((n) => document.querySelectorAll(
    '.k-instance[data-instance="kview"] tbody tr').length === n, published.partitions.length);
  assert.match(await kview.locator('.k-head').textContent(), /kview\s*Consuming/);
  assert.ok(await page.locator('#tab-kafka').evaluate((a) => a.classList.contains('active')), 'Kafka tab active');
  // the three bad messages of jobs.events/0, counted where they came from
  const row0 = kview.locator('tbody tr').filter({ hasText: 'jobs.events' }).filter({
    has: page.locator('td.num', { hasText: /^0$/ }) }).first();
  await page.waitForFunction(() => [...document.querySelectorAll('.k-instance[data-instance="kview"] tbody tr')]
    .some((tr) => tr.cells[0].textContent === 'jobs.events' && tr.cells[1].textContent === '0'
      && tr.cells[6].textContent === '3'));
  assert.equal(await row0.locator('td').nth(3).innerText(), '3', 'jobs.events/0 high watermark');
  await page.screenshot({ path: path.join(SHOTS, 'kafka.png'), fullPage: true });
  if (DOCS_IMG) {
    fs.mkdirSync(DOCS_IMG, { recursive: true });
    await page.screenshot({ path: path.join(DOCS_IMG, 'monitor-kafka.png'), fullPage: true });
  }

  step('Schedules view: the next run, the last job fired and its status');
  // The driver runs no ticker (tests/integration/schedules.sh tests it):
  // the job of a tick is made with the key the ticker gives it, and the
  // state is written as src/store/lua/schedule.lua writes it.
  const tickMs = Date.UTC(2026, 0, 5, 1, 30);
  const fired = await submit({ type: 'import', key: 'schedule:nightly:' + tickMs });
  execFileSync('redis-cli', ['-s', process.env.JOBD_REDIS, 'HSET', 'jobd:schedule:nightly',
    'tick', String(tickMs), 'fired', String(tickMs), 'job', String(fired), 'missed', '2']);
  await waitStatus(fired, 'finished');
  await page.locator('#tab-schedules').click();
  const nightly = page.locator('#sc-rows tr[data-schedule="nightly"]');
  await nightly.waitFor();
  assert.ok(await page.locator('#tab-schedules').evaluate((a) => a.classList.contains('active')), 'Schedules tab active');
  await page.waitForFunction(() => {
    const tr = document.querySelector('#sc-rows tr[data-schedule="nightly"]');
    return tr && tr.querySelector('.c-status .badge') && tr.querySelector('.c-status').textContent === 'Finished';
  });
  const cells = await nightly.locator('td').allInnerTexts();
  assert.deepEqual(cells.slice(0, 4), ['nightly', '30 2 * * *', 'Europe/Paris', 'import']);
  assert.equal(cells[5], String(fired), 'last job id');
  assert.equal(cells[8], 'latest', 'catch-up policy');
  assert.equal(cells[9], '2', 'missed ticks');
  const listed = (await api('/api/schedules')).schedules.find((x) => x.name === 'nightly');
  assert.match(listed.next_run, /T0[01]:30:00\.000Z$/, 'next run at 02:30 in Paris');
  assert.match(cells[4], /^\d{4}-\d\d-\d\d \d\d:30:00$/, 'next run shown');
  const paused = page.locator('#sc-rows tr[data-schedule="paused"]');
  assert.equal(await paused.locator('.sc-next').innerText(), 'disabled');
  assert.ok(await paused.evaluate((tr) => tr.classList.contains('sc-off')), 'a disabled schedule is greyed');
  await nightly.locator('.sc-job a').click();
  await page.waitForURL(new RegExp('#/jobs/' + fired + '$'));
  await page.locator('#d-title', { hasText: 'Job ' + fired }).waitFor();
  await page.goto(BASE + '/#/schedules');
  await nightly.waitFor();
  await page.screenshot({ path: path.join(SHOTS, 'schedules.png'), fullPage: true });

  assert.equal(await page.evaluate(() => window.__xss), undefined, 'no injected script ran');
  assert.deepEqual(errors, [], 'no page errors');
  console.log(`ok: ${steps.length} steps`);
} catch (e) {
  await page.screenshot({ path: path.join(SHOTS, 'failure.png'), fullPage: true }).catch(() => {});
  console.error(`failed at "${steps[steps.length - 1]}" (screenshot failure.png); page errors:`, errors);
  throw e;
} finally {
  await ctx.close();
}
