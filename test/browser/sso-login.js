#!/usr/bin/env node
// Signs in to a hub through its single sign-on button in headless Chromium, the way a person would: the
// hub's login page, "Sign in with …", the provider's login form, back to the hub, the spawn, the classic
// Notebook file list; then creates a notebook, runs one cell that prints the uid and home the kernel runs
// with and, when a file name is given, appends a line to that file in the home.
//
// Usage:  node test/browser/sso-login.js <hub-url> <provider-user> <password> <hub-user> <screenshot.png> [file]
// Prints one JSON line and exits 0:  {"ok":true,"uid":<n>,"home":…,"lines":<lines in file>,"seconds":…}
// or 1 on any failure:               {"ok":false,"error":…,"url":…}
// The provider's login form has #username, #password and #submit (internal/testlab/oidclab). Needs Debian's
// chromium and `npm install` in test/browser, as hub-login.js.
'use strict';
const { check } = require('./check');
const { hubURLs } = require('./chromium');
const { newNotebook, runCell } = require('./notebook');

const STEP_TIMEOUT_MS = 90000; // one navigation or wait (a spawn takes 2-8 s, a kernel start a few more)

const [hubArg, providerUser, password, user, shotPath, file] = process.argv.slice(2);
if (process.argv.length !== 7 && process.argv.length !== 8) {
  process.stderr.write('usage: node sso-login.js <hub-url> <provider-user> <password> <hub-user> <screenshot.png> [file]\n');
  process.exit(2);
}
const { base, basePath } = hubURLs(hubArg);

async function main(page) {
  await page.goto(`${base}/hub/login`);
  await page.click('#sso_login');
  await page.fill('#username', providerUser);
  await page.fill('#password', password);
  await page.click('#submit', { noWaitAfter: true });
  const prefix = `${basePath}/user/${encodeURIComponent(user)}/`;
  const alert = page.locator('[role="alert"]:visible').first();
  await Promise.race([
    page.waitForURL((u) => u.pathname.startsWith(prefix + 'tree')),
    alert.waitFor({ state: 'visible' }).then(async () => {
      throw new Error(`page shows an error: ${(await alert.innerText()).trim()}`);
    }),
  ]);
  await page.locator('#notebook_list').waitFor({ state: 'visible' });

  const nb = await newNotebook(page, prefix);
  await page.goto(`${base}${prefix}notebooks/${encodeURIComponent(nb)}`);
  await page.locator('#kernel_indicator_icon.kernel_idle_icon').waitFor({ state: 'attached' });
  let code = 'import os; p = os.path.expanduser("~"); ';
  if (file) {
    code += `f = open(os.path.join(p, ${JSON.stringify(file)}), "a+"); f.write("run\\n"); f.seek(0); n = len(f.readlines()); f.close(); `;
  } else {
    code += 'n = 0; ';
  }
  code += 'print("uid=%d home=%s lines=%d" % (os.getuid(), p, n))';
  const text = await runCell(page, code);
  const m = text.match(/^uid=(\d+) home=(\S+) lines=(\d+)$/);
  if (!m) throw new Error(`cell output ${JSON.stringify(text)}`);
  await page.screenshot({ path: shotPath, fullPage: true, timeout: 10000 }).catch(() => {});
  return { uid: Number(m[1]), home: m[2], lines: Number(m[3]), url: page.url() };
}

check({
  stepTimeoutMs: STEP_TIMEOUT_MS,
  main,
  failed: (page) => page.screenshot({ path: shotPath, fullPage: true, timeout: 5000 }),
});
