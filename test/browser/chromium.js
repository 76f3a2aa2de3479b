'use strict';
// Launches Debian's Chromium headless on a fresh temporary profile, the one way every browser check here
// starts it. CHROMIUM overrides the browser path (default /usr/bin/chromium); Playwright's own browser
// downloads are never used.
const fs = require('fs');
const os = require('os');
const path = require('path');
const { chromium } = require('playwright-core');

// launch returns the context and its profile directory (remove it when done); extra is merged into the
// launch options (timeouts, signal handling).
async function launch(extra) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'hubd-chromium-'));
  // launch() refuses --user-data-dir; a persistent context on a fresh temp dir plays that part.
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 800 },
    ...extra,
  });
  return { ctx, profile };
}

// hubURLs splits a hub URL argument into base (origin and path, no trailing slash) and basePath (the
// path alone), the two forms the checks build URLs and expected paths from.
function hubURLs(arg) {
  const hub = new URL(arg);
  const basePath = hub.pathname.replace(/\/+$/, '');
  return { base: hub.origin + basePath, basePath };
}

// screenshotTo returns shot(page, name), which saves a full-page screenshot in dir; a screenshot that
// fails never fails the check.
function screenshotTo(dir) {
  return async (page, name) => {
    await page.screenshot({ path: path.join(dir, name), fullPage: true, timeout: 10000 }).catch(() => {});
  };
}

module.exports = { launch, hubURLs, screenshotTo };
