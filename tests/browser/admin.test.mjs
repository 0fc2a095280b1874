// Browser test of the admin page (web/admin.html, served at GET /admin) in headless Chromium.
//
//   node tests/browser/admin.test.mjs        (after `cargo build --release`)
//
// Env: CHAT_TEST_BIN (default target/release/wsloop), CHROMIUM (default /usr/bin/chromium).
// It starts `wsloop serve --api-key KEY` itself on a free loopback port and checks:
//   - without a key, and with a wrong key, the page shows the server's refusal, asks again,
//     and shows no data (no node, no room, no figures);
//   - with the key: the node and its status (as GET /api/info says), a room made by a test
//     client (a WebSocket opened from a second page) with its user and connection counts,
//     the connection count and a non-zero messages-in rate while the client chats;
//   - the key is in no storage, cookie or URL;
//   - disconnecting the client's user from the page closes its WebSocket with the code and
//     reason given, the result is shown, and the room goes away;
//   - "Forget key" clears everything; a 401 in the middle of polling (a key that stopped
//     working is simulated by a wrong key) asks again;
//   - every request the page made went to the server itself; no page error;
//   - with --internal-listen, /admin is served on the internal port only.
// A screenshot goes to target/browser/admin.png. Every wait has a timeout; the server is
// always killed.

import { chromium } from 'playwright-core';
import { spawn } from 'node:child_process';
import { access, constants, mkdir } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = process.env.CHAT_TEST_BIN || path.join(ROOT, 'target/release/wsloop');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const OUT = path.join(ROOT, 'target/browser');
const WAIT_MS = 15_000;        // any single UI wait
const TOTAL_MS = 180_000;      // the whole test
const KEY = 'admin-page-key-' + process.pid;

const servers = new Set();     // live server processes, killed whatever happens
let browser = null;
let passed = 0;
let failed = 0;
const serverLog = [];

// ---- reporting ---------------------------------------------------------------------------
async function check(name, fn) {
  const started = Date.now();
  try {
    await fn();
    passed++;
    console.log(`ok ${passed + failed} - ${name} (${Date.now() - started} ms)`);
  } catch (err) {
    failed++;
    console.log(`not ok ${passed + failed} - ${name}`);
    err.counted = true;
    throw err;
  }
}
function assert(cond, message) {
  if (!cond) throw new Error(`assertion failed: ${message}`);
}

// ---- the server --------------------------------------------------------------------------
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function exited(proc, ms) {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    proc.once('exit', () => { clearTimeout(timer); resolve(true); });
  });
}

async function startServer(port, extraArgs = []) {
  const deadline = Date.now() + 15_000;
  for (let attempt = 1; ; attempt++) {
    const proc = spawn(BIN, ['serve', '--listen', `127.0.0.1:${port}`, ...extraArgs], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'info' },
    });
    servers.add(proc);
    const tag = `[server pid ${proc.pid}] `;
    for (const stream of [proc.stdout, proc.stderr]) {
      stream.setEncoding('utf8');
      stream.on('data', (chunk) => {
        for (const line of chunk.split('\n')) if (line) serverLog.push(tag + line);
        if (serverLog.length > 400) serverLog.splice(0, serverLog.length - 400);
      });
    }
    proc.on('exit', () => servers.delete(proc));
    proc.on('error', (err) => serverLog.push(`${tag}spawn error: ${err.message}`));
    // Ready when /healthz answers.
    while (Date.now() < deadline && proc.exitCode === null && proc.signalCode === null) {
      try {
        const res = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(1000) });
        if (res.ok) return proc;
      } catch { /* not listening yet */ }
      await new Promise((r) => setTimeout(r, 50));
    }
    await stopServer(proc);
    // The port may still be held for a moment after a kill: try again until the deadline.
    if (Date.now() >= deadline) throw new Error(`server did not start on port ${port} (${attempt} attempts)`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function stopServer(proc, signal = 'SIGTERM') {
  if (!proc) return;
  proc.kill(signal);
  if (!(await exited(proc, 5_000))) {
    proc.kill('SIGKILL');
    await exited(proc, 5_000);
  }
}

function killAllNow() {
  for (const proc of servers) {
    try { proc.kill('SIGKILL'); } catch { /* already gone */ }
  }
}
process.on('exit', killAllNow);
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => { killAllNow(); process.exit(130); });
}

// ---- the pages ---------------------------------------------------------------------------
const consoleErrors = [];
const pageErrors = [];

async function newPage(name, options = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, ...options });
  context.setDefaultTimeout(WAIT_MS);
  context.setDefaultNavigationTimeout(WAIT_MS);
  const page = await context.newPage();
  page.on('console', (msg) => {
    if (msg.type() === 'error') consoleErrors.push(`${name}: ${msg.text()}`);
  });
  page.on('pageerror', (err) => pageErrors.push(`${name}: ${err.message}`));
  return page;
}

async function shot(page, file) {
  await page.screenshot({ path: path.join(OUT, file), timeout: WAIT_MS, fullPage: true });
  console.log(`    screenshot: target/browser/${file}`);
}

/** The admin page at `base`, every request it makes recorded in `requests`. */
async function adminPage(name, base, requests) {
  const page = await newPage(name);
  page.on('request', (req) => requests.push(req.url()));
  await page.goto(`${base}/admin`);
  return page;
}

async function enterKey(page, key) {
  await page.getByTestId('key-input').fill(key);
  await page.getByTestId('key-submit').click();
}

/** Asserts the page asks for the key, shows `fragment` in its refusal, and shows no data. */
async function refusedWithoutData(page, fragment) {
  const error = page.getByTestId('login-error');
  await error.waitFor({ state: 'visible' });
  const text = await error.textContent();
  assert(text.includes(fragment), `the refusal names ${fragment} (got ${JSON.stringify(text)})`);
  assert(await page.getByTestId('key-input').isVisible(), 'the key is asked for again');
  assert(await page.getByTestId('dashboard').isHidden(), 'the dashboard is hidden');
  await assertNoData(page);
}

async function assertNoData(page) {
  const counts = await page.evaluate(() => ({
    nodes: document.querySelectorAll('[data-testid=node]').length,
    rooms: document.querySelectorAll('[data-testid=room]').length,
    summary: document.querySelector('[data-testid=summary]').textContent,
    connections: document.querySelector('[data-testid=stat-connections]').textContent,
  }));
  assert(counts.nodes === 0 && counts.rooms === 0, `no node or room shown: ${JSON.stringify(counts)}`);
  assert(counts.summary === '' && counts.connections === '–', `no figures shown: ${JSON.stringify(counts)}`);
}

/** A WebSocket from a page of the server's origin as `user`, joined to `room`. */
async function wsClient(base, user, room) {
  const page = await newPage(`client-${user}`);
  await page.goto(`${base}/healthz`);
  const url = base.replace('http://', 'ws://') + `/ws?user_id=${encodeURIComponent(user)}`;
  await page.evaluate(({ url, room }) => new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    window.ws = ws;
    window.wsClosed = null;
    ws.onmessage = (e) => {
      const m = JSON.parse(e.data);
      if (m.type === 'welcome') ws.send(JSON.stringify({ type: 'join', room }));
      if (m.type === 'joined') resolve();
    };
    ws.onclose = (e) => { window.wsClosed = { code: e.code, reason: e.reason }; reject(new Error(`closed ${e.code}`)); };
    setTimeout(() => reject(new Error('not joined within 10 s')), 10_000);
  }), { url, room });
  return page;
}

async function getJson(url, key) {
  const res = await fetch(url, { headers: key ? { Authorization: `Bearer ${key}` } : {} });
  assert(res.ok, `${url}: ${res.status}`);
  return res.json();
}

// ---- the test ----------------------------------------------------------------------------
async function main() {
  await mkdir(OUT, { recursive: true });
  await access(BIN, constants.X_OK).catch(() => {
    throw new Error(`${BIN} is not an executable: run cargo build --release first (or set CHAT_TEST_BIN)`);
  });
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  await startServer(port, ['--api-key', KEY]);
  console.log(`# wsloop serve on ${base} (${BIN})`);

  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
    timeout: 30_000,
  });
  console.log(`# chromium ${browser.version()}`);

  const room = `ops-${process.pid}`;
  const user = 'dave';
  const requests = [];
  const admin = await adminPage('admin', base, requests);

  await check('without a key the page asks for one, and an empty key is refused by the server', async () => {
    await admin.getByTestId('key-input').waitFor({ state: 'visible' });
    assert(await admin.getByTestId('dashboard').isHidden(), 'no dashboard before a key');
    await assertNoData(admin);
    await enterKey(admin, '');
    await refusedWithoutData(admin, 'unauthorized');
  });

  await check('a wrong key is refused: a clear message, asked again, no data', async () => {
    await enterKey(admin, 'not-the-key');
    await refusedWithoutData(admin, 'refused the key');
    // Half a second later still nothing: no polling started behind the form.
    await admin.waitForTimeout(1500);
    await assertNoData(admin);
  });

  const client = await wsClient(base, user, room);

  await check('with the key: the node and its status, as GET /api/info says', async () => {
    await enterKey(admin, KEY);
    await admin.getByTestId('dashboard').waitFor({ state: 'visible' });
    const info = await getJson(`${base}/api/info`, KEY);
    const node = info.nodes[0];
    const row = admin.locator(`[data-testid=node][data-node="${node.node}"]`);
    await row.waitFor();
    const status = await row.getByTestId('node-status').textContent();
    assert(status === 'ready' && node.status === 'ready', `status ready (page ${status}, api ${node.status})`);
    assert(await admin.getByTestId('login').isHidden(), 'the key form is gone');
    const summary = await admin.getByTestId('summary').textContent();
    assert(summary.includes(info.node) && summary.includes(info.version), `summary names node and version: ${summary}`);
  });

  await check("the test client's room shows with 1 user and 1 connection", async () => {
    const row = admin.locator(`[data-testid=room][data-room="${room}"]`);
    await row.waitFor();
    const [users, connections] = await Promise.all([row.getAttribute('data-users'), row.getAttribute('data-connections')]);
    assert(users === '1' && connections === '1', `users ${users}, connections ${connections}`);
    const text = await row.textContent();
    assert(text.includes(room), `the row shows the room name: ${text}`);
  });

  await check('connections and the messages-in rate follow the traffic', async () => {
    await admin.waitForFunction(() => Number(document.querySelector('[data-testid=stat-connections]').textContent) >= 1);
    // The client chats for 6 s, ten messages a second: the polls see the counters move.
    await client.evaluate((room) => {
      let n = 0;
      window.chatter = setInterval(() => {
        window.ws.send(JSON.stringify({ type: 'chat', room, payload: { n: n++ } }));
        if (n >= 60) clearInterval(window.chatter);
      }, 100);
    }, room);
    const moving = (id) => admin.waitForFunction((id) => {
      const chart = document.querySelector(`[data-testid=chart-${id}]`);
      return Number(document.querySelector(`[data-testid=stat-${id}]`).textContent) > 0 && Number(chart.dataset.samples) >= 3;
    }, id);
    await moving('in');
    await moving('out');
    // Something is drawn in the plot area (below the "max" label), not just the label.
    const drawn = await admin.evaluate(() => {
      const c = document.querySelector('[data-testid=chart-in]');
      const top = Math.ceil(16 * (window.devicePixelRatio || 1));
      const pixels = c.getContext('2d').getImageData(0, top, c.width, c.height - top).data;
      let inked = 0;
      for (let i = 3; i < pixels.length; i += 4) if (pixels[i] !== 0) inked++;
      return inked;
    });
    assert(drawn > 20, `the messages-in chart has a line drawn on it (${drawn} pixels)`);
    await shot(admin, 'admin.png');
  });

  await check('the key is kept in memory only: no storage, cookie or URL', async () => {
    const kept = await admin.evaluate(() => ({
      local: localStorage.length, session: sessionStorage.length, cookie: document.cookie, url: location.href,
    }));
    assert(kept.local === 0 && kept.session === 0 && kept.cookie === '', `nothing stored: ${JSON.stringify(kept)}`);
    assert(!kept.url.includes(KEY), `the key is not in the URL: ${kept.url}`);
    assert(!requests.some((u) => u.includes(KEY)), 'the key is in no request URL');
  });

  await check("disconnecting the user from the page closes the client's WebSocket with the code", async () => {
    await admin.getByTestId('disconnect-user').fill(user);
    await admin.getByTestId('disconnect-code').fill('4005');
    await admin.getByTestId('disconnect-reason').fill('maintenance');
    await admin.getByTestId('disconnect-button').click();
    const result = admin.locator('[data-testid=disconnect-result][data-state=ok]');
    await result.waitFor();
    const text = await result.textContent();
    assert(text.includes('1 connection') && text.includes(user), `result shown: ${text}`);
    await client.waitForFunction(() => window.wsClosed !== null);
    const closed = await client.evaluate(() => window.wsClosed);
    assert(closed.code === 4005 && closed.reason === 'maintenance', `client closed with ${JSON.stringify(closed)}`);
    await admin.locator(`[data-testid=room][data-room="${room}"]`).waitFor({ state: 'detached' });
  });

  await check('a refused disconnect shows the server\'s error', async () => {
    await admin.getByTestId('disconnect-user').fill('no spaces allowed');
    await admin.getByTestId('disconnect-code').fill('');
    await admin.getByTestId('disconnect-reason').fill('');
    await admin.getByTestId('disconnect-button').click();
    const result = admin.locator('[data-testid=disconnect-result][data-state=error]');
    await result.waitFor();
    const text = await result.textContent();
    assert(text.includes('bad_request'), `the error code is shown: ${text}`);
  });

  await check('"Forget key" clears every figure and asks again', async () => {
    await admin.getByTestId('forget-key').click();
    await admin.getByTestId('key-input').waitFor({ state: 'visible' });
    await admin.waitForTimeout(1500);
    await assertNoData(admin);
  });

  await check('every request went to the server itself; no page error', async () => {
    const outside = requests.filter((u) => !u.startsWith(base + '/'));
    assert(outside.length === 0, `requests outside the server: ${outside.join(', ')}`);
    assert(pageErrors.length === 0, `page errors: ${pageErrors.join('; ')}`);
    // On the admin pages, the only console errors allowed are the browser's own lines for
    // the refused keys (401) and the refused disconnect (400). (The test client's page is
    // /healthz, whose favicon is a 404: not the admin page's.)
    const other = consoleErrors.filter((l) => !l.startsWith('client-') && !/status of 40[01]/.test(l));
    assert(other.length === 0, `console errors: ${other.join('; ')}`);
  });

  await check('with --internal-listen, /admin is on the internal port only', async () => {
    const [pub, internal] = await Promise.all([freePort(), freePort()]);
    const proc = await startServer(pub, ['--api-key', KEY, '--internal-listen', `127.0.0.1:${internal}`]);
    try {
      const outside = await fetch(`http://127.0.0.1:${pub}/admin`);
      const inside = await fetch(`http://127.0.0.1:${internal}/admin`);
      assert(outside.status === 404, `public port: ${outside.status}`);
      assert(inside.status === 200 && (await inside.text()).includes('wsloop admin'), `internal port: ${inside.status}`);
      const page = await adminPage('internal', `http://127.0.0.1:${internal}`, []);
      await enterKey(page, KEY);
      await page.locator('[data-testid=node][data-status=ready]').waitFor();
    } finally {
      await stopServer(proc);
    }
  });
}

const watchdog = setTimeout(() => {
  console.log(`not ok - the whole test took longer than ${TOTAL_MS / 1000} s`);
  killAllNow();
  process.exit(1);
}, TOTAL_MS);

let code = 0;
try {
  await main();
} catch (err) {
  code = 1;
  if (!err.counted) {
    failed++;
    console.log(`not ok ${passed + failed} - setup or screenshot outside a check`);
  }
  console.log(`# ${err.stack || err}`);
  if (serverLog.length) console.log('# server log (last lines):\n' + serverLog.slice(-40).map((l) => '#   ' + l).join('\n'));
  if (consoleErrors.length) console.log('# console errors:\n' + consoleErrors.map((l) => '#   ' + l).join('\n'));
  if (pageErrors.length) console.log('# page errors:\n' + pageErrors.map((l) => '#   ' + l).join('\n'));
} finally {
  if (browser) await Promise.race([browser.close().catch(() => {}), new Promise((r) => setTimeout(r, 10_000))]);
  await Promise.all([...servers].map((p) => stopServer(p)));
  killAllNow();
  clearTimeout(watchdog);
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(code || (failed ? 1 : 0));
