#!/usr/bin/env node
// Logs in to a hub in headless Chromium, opens a hub service's page through the hub's OAuth flow, then
// starts a named server and runs a cell in a classic Notebook there, the way a person would.
//
// Usage:  node test/browser/service-and-named.js <hub-url> <user> <password> <service> <server> <screenshot-dir>
// Prints one JSON line and exits 0:  {"ok":true,"service":<heading text>,"cell":<output text>,"seconds":…}
// or 1 on any failure:               {"ok":false,"error":…,"url":…}
// The service must answer "Hello, <user>" in an element #whoami (test/e2e/testdata/whoami.py); the hub must
// allow named servers and serve the classic Notebook UI (JUPYTERHUB_SINGLEUSER_APP=notebook.notebookapp.NotebookApp).
// Needs Debian's chromium and `npm install` in test/browser, as hub-login.js.
'use strict';
const { check } = require('./check');
const { hubURLs, screenshotTo } = require('./chromium');
const { newNotebook, runCell } = require('./notebook');

const STEP_TIMEOUT_MS = 90000; // one navigation or wait (a spawn takes 2-8 s, a kernel start a few more)

const [hubArg, user, password, service, server, shotDir] = process.argv.slice(2);
if (process.argv.length !== 8) {
  process.stderr.write('usage: node service-and-named.js <hub-url> <user> <password> <service> <server> <screenshot-dir>\n');
  process.exit(2);
}
const { base, basePath } = hubURLs(hubArg);
const shot = screenshotTo(shotDir);

async function main(page) {
  // Log in, landing on the home page (not the default server's spawn).
  await page.goto(`${base}/hub/login?next=${encodeURIComponent(basePath + '/hub/home')}`);
  await page.fill('#username_input', user);
  await page.fill('#password_input', password);
  await Promise.all([page.waitForURL((u) => u.pathname.endsWith('/hub/home')), page.click('#login_submit')]);

  // The service: its page sends the browser through the hub's OAuth flow and back.
  await page.goto(`${base}/services/${service}/`);
  await page.waitForURL((u) => u.pathname === `${basePath}/services/${service}/`);
  const hello = (await page.locator('#whoami').innerText()).trim();
  if (hello !== `Hello, ${user}`) throw new Error(`service page says ${JSON.stringify(hello)}`);
  await shot(page, 'service.png');

  // A named server, started from its spawn URL, then a notebook with one cell run in it.
  const prefix = `${basePath}/user/${encodeURIComponent(user)}/${encodeURIComponent(server)}/`;
  await page.goto(`${base}/hub/spawn/${encodeURIComponent(user)}/${encodeURIComponent(server)}`);
  await page.waitForURL((u) => u.pathname.startsWith(prefix + 'tree'));
  await page.locator('#notebook_list').waitFor({ state: 'visible' });
  const nb = await newNotebook(page, prefix);
  await page.goto(`${base}${prefix}notebooks/${encodeURIComponent(nb)}`);
  await page.locator('#kernel_indicator_icon.kernel_idle_icon').waitFor({ state: 'attached' });
  const cell = await runCell(page, '6 * 7');
  if (cell !== '42') throw new Error(`cell output ${JSON.stringify(cell)}`);
  await shot(page, 'named-server-cell.png');
  return { service: hello, cell, notebook: nb, url: page.url() };
}

check({ stepTimeoutMs: STEP_TIMEOUT_MS, main, failed: (page) => shot(page, 'failure.png') });
