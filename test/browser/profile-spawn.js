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
const { check } = require('./check');
const { hubURLs, screenshotTo } = require('./chromium');
const { newNotebook, runCell } = require('./notebook');

const STEP_TIMEOUT_MS = 90000; // one navigation or wait (a Slurm job takes a second or two to land)

const [hubArg, user, password, profileName, shotDir] = process.argv.slice(2);
if (process.argv.length !== 7) {
  process.stderr.write('usage: node profile-spawn.js <hub-url> <user> <password> <profile> <screenshot-dir>\n');
  process.exit(2);
}
const { base, basePath } = hubURLs(hubArg);
const shot = screenshotTo(shotDir);

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

async function main(page) {
  await page.context().addInitScript(recordProgress);
  await page.goto(`${base}/hub/login?next=${encodeURIComponent(basePath + '/hub/home')}`);
  await page.fill('#username_input', user);
  await page.fill('#password_input', password);
  await Promise.all([page.waitForURL((u) => u.pathname.endsWith('/hub/home')), page.click('#login_submit')]);

  // Start: the hub answers with its profile form.
  await Promise.all([page.waitForURL((u) => u.pathname.endsWith('/hub/spawn')), page.click('#start')]);
  await page.locator('#spawn_form').waitFor({ state: 'visible' });
  await shot(page, 'spawn-form.png');
  await page.check(`input[name="profile"][value="${profileName}"]`);
  const prefix = `${basePath}/user/${encodeURIComponent(user)}/`;
  await Promise.all([page.waitForURL((u) => u.pathname.startsWith(prefix + 'tree')), page.click('#start')]);
  await page.locator('#notebook_list').waitFor({ state: 'visible' });
  const messages = await page.evaluate(() => JSON.parse(sessionStorage.getItem('hubtest-progress') || '[]'));

  const nb = await newNotebook(page, prefix);
  await page.goto(`${base}${prefix}notebooks/${encodeURIComponent(nb)}`);
  await page.locator('#kernel_indicator_icon.kernel_idle_icon').waitFor({ state: 'attached' });
  const cell = await runCell(page, '6 * 7');
  if (cell !== '42') throw new Error(`cell output ${JSON.stringify(cell)}`);
  const env = await runCell(page, "import os; print(os.environ.get('SLURMD_NODENAME', '-'), os.environ.get('SLURM_JOB_ID', '-'))");
  await shot(page, 'profile-cell.png');
  return { messages, cell, env, notebook: nb, url: page.url() };
}

check({ stepTimeoutMs: STEP_TIMEOUT_MS, main, failed: (page) => shot(page, 'failure.png') });
