'use strict';
// The frame of a browser check that drives Chromium through a whole scenario and reports one JSON line:
// Chromium on a fresh profile, a default timeout per step, a watchdog for a browser that wedges, and the
// report {"ok":true,…result,"seconds":…} with exit 0, or {"ok":false,"error":…,"url":…,"seconds":…} with
// exit 1. Whatever happens, the browser is closed and its profile removed.
const fs = require('fs');
const { launch } = require('./chromium');

// check runs main(page), which returns the result's fields, with stepTimeoutMs for each navigation or
// wait and at most watchdogMs (default six steps) in all. failed(page), when given, runs after a failure
// (a screenshot of what was on screen).
function check({ stepTimeoutMs, watchdogMs = 6 * stepTimeoutMs, main, failed }) {
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
    report({ ok: false, error: `watchdog: no result after ${watchdogMs / 1000} s` }, 1);
    if (profile) fs.rmSync(profile, { recursive: true, force: true });
    process.exit(1);
  }, watchdogMs);
  watchdog.unref();

  (async () => {
    try {
      ({ ctx, profile } = await launch({ timeout: 30000 }));
      ctx.setDefaultTimeout(stepTimeoutMs);
      page = ctx.pages()[0] || (await ctx.newPage());
      const result = await main(page);
      report({ ok: true, ...result, seconds: seconds() }, 0);
    } catch (e) {
      const url = page ? page.url() : null;
      if (page && failed) await failed(page).catch(() => {});
      report({ ok: false, error: String((e && e.message) || e).split('\n')[0], url, seconds: seconds() }, 1);
    } finally {
      if (ctx) await ctx.close().catch(() => {});
      if (profile) fs.rmSync(profile, { recursive: true, force: true });
    }
  })();
}

module.exports = { check };
