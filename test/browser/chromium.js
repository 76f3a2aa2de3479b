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

module.exports = { launch };
