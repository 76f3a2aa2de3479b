#!/usr/bin/env node
// Logs in to a hub in headless Chromium, starts the default server from the home page, picks a profile in the
// spawn form, follows the progress page to the classic Notebook and runs two cells there, the way a person would.
//
// Usage:  node test/browser/profile-spawn.js <hub-url> <user> <password> <profile> <screenshot-dir>
// Prints one JSON line and exits 0:
//   {"ok":true,"messages":[<progress messages seen>],"cell":<"6 * 7" output>,"env":<second cell's output>,"seconds":…}
// or 1 on any failure: {"ok":false,"error":…,"url":…}
// The second cell prints the kernel's SLURMD_NODENAME and SLURM_JOB_ID ("- -" outside a Slurm job). The hub must
// offer several profiles (so the form shows) and serve the classic Notebook UI. Needs Debian's chromium and
// `npm install` in test/browser, as hub-login.js.
'use strict';
const fs = require('fs');
const path = require('path');
const { launch } = require('./chromium');

const STEP_TIMEOUT_MS = 90000; // one navigation or wait (a Slurm job takes a second or two to land)
const WATCHDOG_MS = 6 * STEP_TIMEOUT_MS;

const [hubArg, user, password, profileName, shotDir] = process.argv.slice(2);
if (process.argv.length !== 7) {
  process.stderr.write('usage: node profile-spawn.js <hub-url> <user> <password> <profile> <screenshot-dir>\n');
  process.exit(2);
}
const hub = new URL(hubArg);
const base = hub.origin + hub.pathname.replace(/\/+$/, '');
const basePath = hub.pathname.replace(/\/+$/, '');
const t0 = Date.now();
const seconds = () => Math.round((Date.now() - t0) / 100) / 10;
let profile = null;
let ctx = null;
let page = null;
let finished = false;

function report(obj, code) {
  if (finished) return;
  finished = true;
  process.stdout.write(JSON.stringify(obj) + '\n');
  process.exitCode = code;
}

const watchdog = setTimeout(() => {
  report({ ok: false, error: `watchdog: no result after ${WATCHDOG_MS / 1000} s` }, 1);
  if (profile) fs.rmSync(profile, { recursive: true, force: true });
  process.exit(1);
}, WATCHDOG_MS);
watchdog.unref();

async function shot(name) {
  await page.screenshot({ path: path.join(shotDir, name), fullPage: true, timeout: 10000 }).catch(() => {});
}

// Every text the progress page shows in #message is kept in sessionStorage, across its reloads.
function recordProgress() {
  document.addEventListener('DOMContentLoaded', () => {
    const el = document.getElementById('message');
    if (!el) return;
    const keep = () => {
      const seen = JSON.parse(sessionStorage.getItem('hubtest-progress') || '[]');
      const text = el.textContent.trim();
      if (text && seen[seen.length - 1] !== text) seen.push(text);
      sessionStorage.setItem('hubtest-progress', JSON.stringify(seen));
    };
    keep();
    new MutationObserver(keep).observe(el, { childList: true, characterData: true, subtree: true });
  });
}

async function runCell(code) {
  const cells = page.locator('div.cell.code_cell');
  const n = await cells.count();
  const cell = cells.nth(n - 1);
  await cell.locator('.CodeMirror').click();
  await page.keyboard.type(code);
  await page.keyboard.press('Shift+Enter');
  const out = cell.locator('.output_subarea').first();
  await out.waitFor({ state: 'visible' });
  return (await out.innerText()).trim();
}

async function main() {
  ({ ctx, profile } = await launch({ timeout: 30000 }));
  ctx.setDefaultTimeout(STEP_TIMEOUT_MS);
  await ctx.addInitScript(recordProgress);
  page = ctx.pages()[0] || (await ctx.newPage());

  await page.goto(`${base}/hub/login?next=${encodeURIComponent(basePath + '/hub/home')}`);
  await page.fill('#username_input', user);
  await page.fill('#password_input', password);
  await Promise.all([page.waitForURL((u) => u.pathname.endsWith('/hub/home')), page.click('#login_submit')]);

  // Start: the hub answers with its profile form.
  await Promise.all([page.waitForURL((u) => u.pathname.endsWith('/hub/spawn')), page.click('#start')]);
  await page.locator('#spawn_form').waitFor({ state: 'visible' });
  await shot('spawn-form.png');
  await page.check(`input[name="profile"][value="${profileName}"]`);
  const prefix = `${basePath}/user/${encodeURIComponent(user)}/`;
  await Promise.all([page.waitForURL((u) => u.pathname.startsWith(prefix + 'tree')), page.click('#start')]);
  await page.locator('#notebook_list').waitFor({ state: 'visible' });
  const messages = await page.evaluate(() => JSON.parse(sessionStorage.getItem('hubtest-progress') || '[]'));

  const nb = await page.evaluate(async (prefix) => {
    const xsrf = (document.cookie.match(/(?:^|; )_xsrf=([^;]*)/) || [])[1] || '';
    const r = await fetch(prefix + 'api/contents', {
      method: 'POST', headers: { 'Content-Type': 'application/json', 'X-XSRFToken': decodeURIComponent(xsrf) },
      body: JSON.stringify({ type: 'notebook' }),
    });
    if (r.status !== 201) throw new Error(`create notebook: HTTP ${r.status}`);
    return (await r.json()).path;
  }, prefix);
  await page.goto(`${base}${prefix}notebooks/${encodeURIComponent(nb)}`);
  await page.locator('#kernel_indicator_icon.kernel_idle_icon').waitFor({ state: 'attached' });
  const cell = await runCell('6 * 7');
  if (cell !== '42') throw new Error(`cell output ${JSON.stringify(cell)}`);
  const env = await runCell("import os; print(os.environ.get('SLURMD_NODENAME', '-'), os.environ.get('SLURM_JOB_ID', '-'))");
  await shot('profile-cell.png');
  return { ok: true, messages, cell, env, notebook: nb, url: page.url(), seconds: seconds() };
}

(async () => {
  try {
    report(await main(), 0);
  } catch (e) {
    const url = page ? page.url() : null;
    if (page) await shot('failure.png');
    report({ ok: false, error: String((e && e.message) || e).split('\n')[0], url, seconds: seconds() }, 1);
  } finally {
    if (ctx) await ctx.close().catch(() => {});
    if (profile) fs.rmSync(profile, { recursive: true, force: true });
  }
})();
