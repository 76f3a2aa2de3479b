#!/usr/bin/env node
// Logs in to a hub (hubd or JupyterHub) in headless Chromium and waits for the member's classic Notebook
// file list, the way a person would: login form, spawn-pending page, OAuth hand-off, /user/<user>/tree.
//
// Usage:  node test/browser/hub-login.js <hub-url> <user> <password> <screenshot.png>
//   e.g.  node test/browser/hub-login.js http://127.0.0.1:8000 demo "$PW" /tmp/hub-tree.png
// With HUB_LOGIN_KERNEL=1 it then starts a kernel from the tree page and runs 6*7 over the kernel's
// websocket (ws:// or wss://), as the Notebook UI does, and reports the answer as "kernel".
// Prints one JSON line and exits 0:  {"ok":true,"url":…,"title":…,"protocol":…,"seconds":…,"screenshot":…}
// ("protocol" is the login page's nextHopProtocol: "h2", "http/1.1")
// or 1 on any failure:               {"ok":false,"error":…,"url":…,"screenshot":…}
// (2 for bad arguments). The screenshot is full-page on success and shows whatever was on screen on failure.
//
// Needs Debian's chromium (`apt-get install -y chromium`; scripts/deps.sh test installs it) and
// `npm install` in test/browser (playwright-core, pinned in package.json). Playwright's own browser
// downloads are never used: CHROMIUM overrides the browser path (default /usr/bin/chromium).
// The hub must serve the classic Notebook UI (spawner.app = "notebook", the default: /tree).
'use strict';
const fs = require('fs');
const path = require('path');
const { launch } = require('./chromium');

const LAUNCH_TIMEOUT_MS = 30000; // Chromium start; a wedged browser must not hang the test
const LOGIN_TIMEOUT_MS = 90000; // form submit -> spawn -> tree listed (a fresh spawn takes 2-8 s)
const ACTION_TIMEOUT_MS = 15000; // page load, fill, click, screenshot
const WATCHDOG_MS = LAUNCH_TIMEOUT_MS + LOGIN_TIMEOUT_MS + 4 * ACTION_TIMEOUT_MS;

function usage() {
  process.stderr.write('usage: node hub-login.js <hub-url> <user> <password> <screenshot.png>\n');
  process.exit(2);
}

const [hubArg, user, password, shotArg] = process.argv.slice(2);
if (process.argv.length !== 6 || !hubArg || !user || !shotArg) usage();
let hub;
try {
  hub = new URL(hubArg);
} catch {
  usage();
}
// Keep a base path (http://host/jupyter/) but drop the trailing slash: we append /hub/login.
const base = hub.origin + hub.pathname.replace(/\/+$/, '');
const shot = path.resolve(shotArg);
const treePath = `/user/${encodeURIComponent(user)}/tree`;

const t0 = Date.now();
const seconds = () => Math.round((Date.now() - t0) / 100) / 10;
const deadline = t0 + LAUNCH_TIMEOUT_MS + LOGIN_TIMEOUT_MS + 2 * ACTION_TIMEOUT_MS;
const left = () => Math.max(1000, deadline - Date.now());

let profile = null;
let ctx = null;
let page = null;
let finished = false;

function removeProfile() {
  if (profile) {
    try {
      fs.rmSync(profile, { recursive: true, force: true });
    } catch {
      // best effort: a stray temp dir is not worth a failing test
    }
    profile = null;
  }
}

function report(obj, code) {
  if (finished) return;
  finished = true;
  process.stdout.write(JSON.stringify(obj) + '\n');
  process.exitCode = code;
}

// Last resort if closing Chromium itself hangs: the temp profile still goes, and the process ends.
const watchdog = setTimeout(() => {
  report({ ok: false, error: `watchdog: no result after ${WATCHDOG_MS / 1000} s`, url: safeUrl(), screenshot: null }, 1);
  removeProfile();
  process.exit(1);
}, WATCHDOG_MS);
watchdog.unref();

function safeUrl() {
  try {
    return page ? page.url() : null;
  } catch {
    return null;
  }
}

// Our own signal handling (Playwright's is switched off below) so an interrupted run still closes the
// browser and removes the profile.
let interrupt;
let wasInterrupted = false;
const interrupted = new Promise((_, reject) => {
  interrupt = (sig) => {
    wasInterrupted = true;
    reject(new Error(`interrupted by ${sig}`));
  };
});
interrupted.catch(() => {});
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.once(sig, () => interrupt(sig));

// Tree reached (path /user/<user>/tree, #notebook_list visible), or a visible error the page shows
// (wrong password, refused login, failed spawn): whichever comes first; the error ends the wait early.
async function waitForTree() {
  const tree = page
    .waitForURL((u) => u.pathname.includes(treePath), { timeout: left(), waitUntil: 'domcontentloaded' })
    .then(() => page.locator('#notebook_list').waitFor({ state: 'visible', timeout: left() }))
    .then(() => 'tree');
  const alert = page
    .locator('[role="alert"]:visible, .login_error:visible, .alert-danger:visible')
    .first()
    .waitFor({ state: 'visible', timeout: left() })
    .then(async () => {
      const text = await page
        .locator('[role="alert"]:visible, .login_error:visible, .alert-danger:visible')
        .first()
        .innerText({ timeout: 2000 })
        .catch(() => '?');
      throw new Error(`page shows an error: ${text.trim().replace(/\s+/g, ' ')}`);
    });
  tree.catch(() => {});
  alert.catch(() => {});
  return Promise.race([tree, alert]);
}

async function main() {
  ({ ctx, profile } = await launch({
    timeout: LAUNCH_TIMEOUT_MS,
    handleSIGINT: false,
    handleSIGTERM: false,
    handleSIGHUP: false,
  }));
  ctx.setDefaultTimeout(ACTION_TIMEOUT_MS);
  page = ctx.pages()[0] || (await ctx.newPage());

  const resp = await page.goto(`${base}/hub/login`, { waitUntil: 'domcontentloaded' });
  if (!resp || !resp.ok()) throw new Error(`GET ${base}/hub/login: HTTP ${resp ? resp.status() : 'no response'}`);
  await page.fill('#username_input', user);
  await page.fill('#password_input', password);
  // The form posts, then the hub sends the browser on (spawn-pending page, OAuth, tree) by itself.
  const protocol = await page.evaluate(() => performance.getEntriesByType('navigation')[0].nextHopProtocol);
  await page.click('#login_submit', { noWaitAfter: true });
  await waitForTree();
  const title = await page.title();
  await page.screenshot({ path: shot, fullPage: true });
  const result = { ok: true, url: page.url(), title, protocol, seconds: seconds(), screenshot: shot };
  if (process.env.HUB_LOGIN_KERNEL === '1') result.kernel = await runKernel();
  return result;
}

// runKernel starts a python3 kernel through the server's REST API with the page's cookies and _xsrf
// token, runs 6*7 over the kernel's websocket, deletes the kernel and returns the text/plain result.
async function runKernel() {
  return page.evaluate(async (u) => {
    const xsrf = decodeURIComponent((document.cookie.match(/(?:^|; )_xsrf=([^;]*)/) || [])[1] || '');
    const base = `/user/${encodeURIComponent(u)}`;
    const hdrs = { 'X-XSRFToken': xsrf, 'Content-Type': 'application/json' };
    const r = await fetch(`${base}/api/kernels`, { method: 'POST', headers: hdrs, body: '{"name":"python3"}' });
    if (r.status !== 201) throw new Error(`start kernel: HTTP ${r.status}`);
    const kernel = await r.json();
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const ws = new WebSocket(`${scheme}://${location.host}${base}/api/kernels/${kernel.id}/channels`);
    const msgId = `hubtest-${Date.now()}`;
    try {
      return await new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no execute_result within 60 s')), 60000);
        ws.onerror = () => reject(new Error('websocket error'));
        ws.onclose = (e) => reject(new Error(`websocket closed (${e.code})`));
        ws.onopen = () => ws.send(JSON.stringify({
          header: { msg_id: msgId, username: u, session: 'hubtest', msg_type: 'execute_request', version: '5.3',
            date: new Date().toISOString() },
          parent_header: {}, metadata: {}, channel: 'shell', buffers: [],
          content: { code: '6*7', silent: false, store_history: false, user_expressions: {}, allow_stdin: false,
            stop_on_error: true },
        }));
        ws.onmessage = (ev) => {
          const m = JSON.parse(ev.data);
          if (m.parent_header && m.parent_header.msg_id === msgId && m.msg_type === 'execute_result') {
            clearTimeout(timer);
            resolve(m.content.data['text/plain']);
          }
        };
      });
    } finally {
      ws.onclose = null;
      ws.close();
      await fetch(`${base}/api/kernels/${kernel.id}`, { method: 'DELETE', headers: hdrs });
    }
  }, user);
}

// What was on screen when it failed. Short timeout: a page stuck mid-navigation can stall screenshots,
// and an interrupted run should end promptly, so it gets none.
async function failureShot() {
  if (!page || wasInterrupted) return null;
  try {
    await page.screenshot({ path: shot, fullPage: true, timeout: 5000 });
    return shot;
  } catch {
    return null;
  }
}

(async () => {
  try {
    const result = await Promise.race([main(), interrupted]);
    report(result, 0);
  } catch (e) {
    const url = safeUrl();
    const screenshot = await failureShot();
    const error = String((e && e.message) || e).split('\n')[0];
    report({ ok: false, error, url, seconds: seconds(), screenshot }, 1);
  } finally {
    if (ctx) {
      await ctx.close().catch(() => {});
    }
    removeProfile();
  }
})();
