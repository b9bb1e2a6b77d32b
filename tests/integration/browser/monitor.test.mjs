// The monitor page in headless Chromium: run by tests/integration/browser.sh,
// which starts the monitor, a scripted worker and a consumer and sets BASE,
// CHROMIUM, SCREENSHOTS, USER_DATA and DOCS_IMG (docs/img with
// DOCS_SCREENSHOTS=1, else empty). Asserts outcomes a user sees: jobs listed,
// stop and resume through the page, log search, system jobs toggle,
// statistics charts, the Kafka view, and markup in job data shown as
// text, never run.
import assert from 'node:assert/strict';
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
  // job, a parent with children, a failed job, a system job.
  const xss = await submit({ type: 'import', payload: { sim: 'finish', note: XSS, name: XSS } });
  const run = await submit({ type: 'import', payload: { sim: 'run' }, run_by: 'alice' });
  const parent = await submit({ type: 'import', payload: { sim: 'run' } });
  await api('/api/jobs', { type: 'import', parent, count: 3 });
  await submit({ type: 'import', payload: { sim: 'error' } });
  const sys = await submit({ type: 'refactor' });
  const fixed = await submit({ type: 'fixed', payload: { sim: 'run' } });
  await waitStatus(run, 'in_progress');
  await waitStatus(fixed, 'in_progress');
  await waitStatus(xss, 'finished');

  step('the list shows the jobs');
  await page.goto(BASE + '/');
  const row = (id) => page.locator(`#jobs-body tr[data-id="${id}"]`);
  await row(run).waitFor();
  assert.equal(await row(sys).count(), 0, 'system jobs hidden by default');
  assert.match(await row(run).locator('td').nth(7).innerText(), /In Progress/);
  assert.equal(await row(run).locator('td').nth(10).innerText(), 'alice');
  assert.match(await row(parent).locator('td').nth(12).innerText(), /\d\/3/);

  step('the children bar shows the children\'s progress, not the parent\'s');
  await page.waitForFunction((id) => {
    const r = document.querySelector(`#jobs-body tr[data-id="${id}"]`);
    return r && r.children[12].textContent.includes('3/3');
  }, parent, { timeout: 30000 });
  const pj = await api(`/api/jobs/${parent}`);
  assert.equal(await row(parent).locator('td').nth(12).locator('[role=progressbar]').getAttribute('aria-valuenow'),
    String(Math.round(pj.children.progress)));

  step('duration ticks while running');
  const d1 = await row(run).locator('td').nth(6).innerText();
  await page.waitForTimeout(1600);
  const d2 = await row(run).locator('td').nth(6).innerText();
  assert.notEqual(d1, d2, 'duration moves');
  await page.screenshot({ path: path.join(SHOTS, 'jobs.png'), fullPage: true });

  step('stop and resume through the page');
  const button = (op) => page.locator(`#actions button[data-op="${op}"]`);
  await row(run).locator('td.c-check input').check();
  assert.ok(await button('stop').isEnabled(), 'stop valid for in_progress');
  assert.ok(await button('resume').isDisabled(), 'resume invalid for in_progress');
  assert.ok(await button('restart').isDisabled(), 'restart invalid for in_progress');
  await button('stop').click();
  await page.locator('#results li.ok').waitFor();
  assert.match(await page.locator('#results').innerText(), /1 of 1 done/);
  await waitStatus(run, 'stopped');
  await page.waitForFunction((id) => {
    const r = document.querySelector(`#jobs-body tr[data-id="${id}"]`);
    return r && r.children[7].textContent === 'Stopped';
  }, run);
  await page.waitForFunction(() => !document.querySelector('#actions button[data-op="resume"]').disabled);
  assert.ok(await button('stop').isDisabled(), 'stop invalid for stopped');
  assert.ok(await button('cancel').isEnabled(), 'cancel valid for stopped');
  await button('resume').click();
  await page.waitForFunction(() => document.querySelector('#results').textContent.includes('resume done'));
  await waitStatus(run, 'in_progress');

  step('a refused operation says why');
  await row(xss).locator('td.c-check input').check();
  assert.ok(await button('stop').isDisabled(), 'stop invalid when a finished job is selected');
  await row(xss).locator('td.c-check input').uncheck();

  step('stop and restart follow the job\'s own policy');
  await row(run).locator('td.c-check input').uncheck();
  await row(xss).locator('td.c-check input').check();
  assert.ok(await button('restart').isEnabled(), 'restart valid for a finished root of a restartable type');
  await row(xss).locator('td.c-check input').uncheck();
  await row(fixed).locator('td.c-check input').check();
  assert.ok(await button('stop').isDisabled(), 'stop invalid for a job whose type is not stoppable');
  assert.ok(await button('resume').isDisabled(), 'resume invalid for in_progress');
  await row(fixed).locator('td.c-check input').uncheck();
  await row(run).locator('td.c-check input').check();

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

  step('job detail with logs and search');
  await row(run).click();
  await page.locator('#d-title').filter({ hasText: 'Job ' + run }).waitFor();
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
  await page.locator('#l-grep').fill('');
  await page.locator('#l-level').selectOption('warn');
  await page.waitForFunction(() => document.querySelectorAll('#logs .logline').length === 0 &&
    document.querySelector('#logs .none'));
  await page.locator('#l-level').selectOption('');
  await page.locator('#logs .logline').first().waitFor();
  await page.screenshot({ path: path.join(SHOTS, 'detail.png'), fullPage: true });

  step('children of a parent');
  await page.goto(BASE + '/#/jobs/' + parent);
  await page.locator('#d-children tr').nth(2).waitFor();
  assert.equal(await page.locator('#d-children tr').count(), 3);

  step('markup in job data is shown as text');
  await page.goto(BASE + '/#/jobs/' + xss);
  await page.locator('#logs .logline', { hasText: '<script>window.__xss=1</script>' }).waitFor();
  assert.match(await page.locator('#d-payload').innerText(), /<script>window.__xss=1<\/script>/);
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
  await page.locator('#chart-wait svg path').first().waitFor({ state: 'attached' });
  const created = await page.locator('#s-tiles .tile').first().innerText();
  assert.ok(parseInt(created, 10) >= 8, 'created tile: ' + created);
  await page.screenshot({ path: path.join(SHOTS, 'stats.png'), fullPage: true });
  await page.locator('#s-window button[data-w="24h"]').click();
  await page.waitForFunction(() => document.querySelector('#s-span').textContent.includes('hour'));

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
  if (process.env.DOCS_IMG) {
    fs.mkdirSync(process.env.DOCS_IMG, { recursive: true });
    await page.screenshot({ path: path.join(process.env.DOCS_IMG, 'monitor-kafka.png'), fullPage: true });
  }

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
