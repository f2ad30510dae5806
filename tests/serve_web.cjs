// The web page of `moe serve` in headless Chromium (Debian's /usr/bin/chromium driven by npm puppeteer-core):
// type a message, see the reply stream in and the per-token expert view fill.
// Usage: node serve_web.cjs MOE_BINARY [NPM_DIR] [CHROMIUM]
'use strict';
const { npmRequire, startServer, check, defaultNpmDir } = require('./serve/server_process.cjs');

const [moe, npmDir = defaultNpmDir(), chromium = '/usr/bin/chromium'] = process.argv.slice(2);
const puppeteer = npmRequire(npmDir, 'puppeteer-core');

async function main() {
  const server = await startServer(moe, ['--parallel', '2', '--ctx', '256', '-t', '2']);
  let browser = null;
  try {
    browser = await puppeteer.launch({ executablePath: chromium, headless: true,
                                       args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
    const page = await browser.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`http://127.0.0.1:${server.port}/`, { waitUntil: 'load' });
    await page.waitForFunction(() => document.getElementById('model').textContent === 'default', { timeout: 10000 });
    await page.$eval('#max', (el) => { el.value = '24'; });
    await page.type('#input', 'Tell me about the sea.');
    await page.click('#send');
    // Text arrives while the request is still running (streaming), then the request ends.
    await page.waitForFunction(() => {
      const a = document.querySelector('.msg.assistant');
      return a && a.textContent.length > 0;
    }, { timeout: 30000 });
    await page.waitForFunction(() => document.getElementById('status').textContent.startsWith('done'), { timeout: 30000 });
    const view = await page.evaluate(() => ({
      reply: document.querySelector('.msg.assistant').textContent,
      user: document.querySelector('.msg.user').textContent,
      tokens: document.querySelectorAll('#tokens span.tok').length,
      rows: document.querySelectorAll('#grid tr').length,
      on: document.querySelectorAll('#grid td.on').length,
    }));
    check(view.user === 'Tell me about the sea.', 'user message shown');
    check(!view.reply.startsWith('error') && view.reply.length > 0, 'reply: ' + view.reply);
    check(view.tokens >= 2 && view.tokens <= 24, 'one box per generated token: ' + view.tokens);
    // The default model: 6 MoE layers, top-2 of 12 experts -> 6 rows, 12 cells lit for the selected token.
    check(view.rows === 6 && view.on === 12, `expert grid: ${view.rows} rows, ${view.on} experts on`);
    check(errors.length === 0, 'page errors: ' + errors.join('; '));
    console.log(`serve_web: ok (${view.tokens} tokens, reply ${JSON.stringify(view.reply.slice(0, 60))})`);
  } finally {
    if (browser) await browser.close();
    await server.stop();
  }
}

main().catch((e) => {
  console.error(e.stack || String(e));
  process.exit(1);
});
