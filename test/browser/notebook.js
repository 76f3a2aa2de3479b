'use strict';
// What the browser checks do in a classic Notebook: create a notebook, run a cell.

// newNotebook creates an empty notebook on the server at prefix (through its contents API, with the
// page's _xsrf cookie) and returns its path.
async function newNotebook(page, prefix) {
  return page.evaluate(async (prefix) => {
    const xsrf = (document.cookie.match(/(?:^|; )_xsrf=([^;]*)/) || [])[1] || '';
    const r = await fetch(prefix + 'api/contents', {
      method: 'POST', headers: { 'Content-Type': 'application/json', 'X-XSRFToken': decodeURIComponent(xsrf) },
      body: JSON.stringify({ type: 'notebook' }),
    });
    if (r.status !== 201) throw new Error(`create notebook: HTTP ${r.status}`);
    return (await r.json()).path;
  }, prefix);
}

// runCell types code into the open notebook's last cell, runs it and returns its output's text.
async function runCell(page, code) {
  const cells = page.locator('div.cell.code_cell');
  const cell = cells.nth((await cells.count()) - 1);
  await cell.locator('.CodeMirror').click();
  await page.keyboard.type(code);
  await page.keyboard.press('Shift+Enter');
  const out = cell.locator('.output_subarea').first();
  await out.waitFor({ state: 'visible' });
  return (await out.innerText()).trim();
}

module.exports = { newNotebook, runCell };
